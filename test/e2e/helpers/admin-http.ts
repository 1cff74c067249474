/**
 * The admin app's JSON API as a script or CI job would use it: log in
 * (session cookie + CSRF token), then plain HTTP requests. Every call that
 * does not answer 2xx rejects with the status and the body's message.
 */
import * as fs from "node:fs";

export class AdminHttpError extends Error {
  constructor(readonly status: number, readonly body: unknown, what: string) {
    super(`${what}: HTTP ${status} ${JSON.stringify(body)}`);
  }
}

/** The fields of an instance the tests read (camelCase, as the API sends them). */
export interface InstanceView {
  id: number;
  application: string;
  server: string;
  node: string;
  adapters: Array<{ obj: string; host: string; port: number }>;
  desiredState: string;
  desiredVersion: number;
  observedState: string;
  observedVersion: number;
  pid: number;
  restarts: number;
  lastExitReason: string;
  [key: string]: unknown;
}

export interface TaskView {
  id: number;
  status: string;
  items: Array<{ instanceId: number; status: string; reason?: string; [key: string]: unknown }>;
  [key: string]: unknown;
}

export class AdminHttp {
  private cookie = "";
  private csrf = "";

  constructor(readonly base: string) {}

  async login(user: string, password: string): Promise<void> {
    const body = await this.request("POST", "/api/login", { user, password }) as { csrfToken: string };
    this.csrf = body.csrfToken;
  }

  async request(method: string, urlPath: string, json?: unknown, raw?: { data: Buffer; headers?: Record<string, string> }): Promise<unknown> {
    const headers: Record<string, string> = { ...raw?.headers };
    if (this.cookie) headers.cookie = this.cookie;
    if (method !== "GET") headers["x-csrf-token"] = this.csrf;
    let body: Buffer | string | undefined;
    if (raw) {
      body = raw.data;
      headers["content-type"] ??= "application/gzip";
    } else if (json !== undefined) {
      body = JSON.stringify(json);
      headers["content-type"] = "application/json";
    }
    const res = await fetch(this.base + urlPath, { method, headers, body, redirect: "manual" });
    for (const c of res.headers.getSetCookie()) {
      const pair = c.split(";")[0]!;
      if (pair.startsWith("sgrid_admin_sid=")) this.cookie = pair.endsWith("=") ? "" : pair;
    }
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON
    }
    if (res.status < 200 || res.status >= 300) throw new AdminHttpError(res.status, parsed, `${method} ${urlPath}`);
    return parsed;
  }

  get<T = unknown>(p: string): Promise<T> {
    return this.request("GET", p) as Promise<T>;
  }

  post<T = unknown>(p: string, body: unknown = {}): Promise<T> {
    return this.request("POST", p, body) as Promise<T>;
  }

  put<T = unknown>(p: string, body: unknown = {}): Promise<T> {
    return this.request("PUT", p, body) as Promise<T>;
  }

  /** Nodes the registry knows, with `online`. */
  async nodes(): Promise<Array<{ name: string; online: boolean; [key: string]: unknown }>> {
    return ((await this.get<{ nodes: Array<{ name: string; online: boolean }> }>("/api/nodes")).nodes) ?? [];
  }

  /** Creates `App.Server` with one gRPC adapter per Obj (port assigned by the registry) on `nodes`. */
  async deploy(application: string, server: string, nodes: string[], objs: string[]): Promise<unknown> {
    return this.post("/api/servers", { application, server, type: "node", nodes, adapters: objs.map((obj) => ({ obj })) });
  }

  async instances(application: string, server: string): Promise<InstanceView[]> {
    const r = await this.get<{ instances: InstanceView[] }>(`/api/instances?application=${application}&server=${server}`);
    return r.instances ?? [];
  }

  /** Uploads a package file (raw body, sha256 declared); resolves with the new patch's version number. */
  async upload(application: string, server: string, file: string, sha256: string, comment: string): Promise<number> {
    const r = await this.request("POST", `/api/patches/${application}/${server}?comment=${encodeURIComponent(comment)}`, undefined,
      { data: fs.readFileSync(file), headers: { "x-sha256": sha256 } }) as { version: number };
    return r.version;
  }

  async publish(instanceIds: number[], version: number, batchSize: number): Promise<TaskView> {
    return this.post<TaskView>("/api/tasks", { kind: "publish", instanceIds, version, batchSize });
  }

  async task(id: number): Promise<TaskView> {
    return this.get<TaskView>(`/api/tasks/${id}`);
  }

  /** Polls a task until it is over; rejects unless it ends `success` (with the items' reasons). */
  async waitTask(id: number, timeoutMs = 150_000): Promise<TaskView> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const t = await this.task(id);
      if (t.status === "success") return t;
      if (t.status === "failed" || t.status === "partial") throw new Error(`task ${id} ended ${t.status}: ${JSON.stringify(t.items)}`);
      if (Date.now() > end) throw new Error(`task ${id} not over after ${timeoutMs} ms: ${JSON.stringify(t)}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  }

  async rollback(taskId: number): Promise<TaskView> {
    return this.post<TaskView>(`/api/tasks/${taskId}/rollback`);
  }

  /** Sets a server-level config file. */
  async putServerConfig(application: string, server: string, fileName: string, content: string, comment = ""): Promise<unknown> {
    return this.put("/api/configs/file", { scope: { level: "server", application, server }, fileName, content, comment });
  }

  /** Tells every instance that sees the file to reload it. */
  async pushConfig(fileName: string, instanceIds: number[] = []): Promise<unknown> {
    return this.post("/api/configs/push", { fileName, instanceIds });
  }
}
