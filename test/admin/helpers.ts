/**
 * Test helpers for the admin app: a real registry (RegistryServer on SQLite)
 * with a real AdminServer in front, an HTTP client with a cookie jar, fake
 * agents that hold real node sessions and report what they are told, and
 * .tgz packages.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tar from "tar";
import { AsyncQueue, Communicator } from "sgridnext";
import type { AgentMessage, DesiredState, RegistryMessage } from "sgridnext/gen/sgrid/registry/v1/node";
import type { StatsReport } from "sgridnext/gen/sgrid/agent/v1/agent";
import { NodeSessionProxy } from "sgridnext/gen/sgrid/registry/v1/node.sgrid";
import { RegistryServer } from "../../registry";
import type { RegistryServerOptions } from "../../registry/server/options";
import { AdminServer, type AdminOptions } from "../../admin";
import { pollUntil, type Check } from "../helpers/wait";

export const ADMIN_PASSWORD = "admin-pass-for-tests";
export const CLUSTER_TOKEN = "cluster-token-for-tests";

export interface Stack {
  registry: RegistryServer;
  admin: AdminServer;
  /** `http://127.0.0.1:<port>` of the admin app. */
  url: string;
  /** `127.0.0.1:<port>` of the registry. */
  registryTarget: string;
  dir: string;
  stop(): Promise<void>;
}

/** A registry on a fresh SQLite file and an admin app in front of it, both on loopback port 0. */
export async function startStack(adminOptions: Partial<AdminOptions> = {}, registryOptions: Partial<RegistryServerOptions> = {}): Promise<Stack> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sgrid-admin-test-"));
  const registry = new RegistryServer({
    db: `sqlite:${path.join(dir, "registry.db")}`,
    listen: "127.0.0.1:0",
    dataDir: dir,
    adminPassword: ADMIN_PASSWORD,
    clusterToken: CLUSTER_TOKEN,
    heartbeatIntervalMs: 1000,
    heartbeatTimeoutMs: 600_000,
    ...registryOptions,
  });
  const addr = await registry.start();
  const registryTarget = `127.0.0.1:${addr.port}`;
  const admin = new AdminServer({ registry: registryTarget, listen: "127.0.0.1:0", ...adminOptions });
  const { url } = await admin.start();
  return {
    registry, admin, url, registryTarget, dir,
    async stop() {
      await admin.stop();
      await registry.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Reply<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

/** An HTTP client of the admin API that keeps the session cookie and the CSRF token, as the page does. */
export class Client {
  cookie = "";
  csrf = "";

  constructor(readonly base: string) {}

  async login(user: string, password: string): Promise<Reply> {
    const r = await this.request("POST", "/api/login", { body: { user, password } });
    if (r.status === 200) this.csrf = r.body.csrfToken;
    return r;
  }

  /**
   * One request. `csrf: false` leaves the CSRF header out; a string sends that
   * instead. `raw` sends bytes as they are (uploads).
   */
  async request(method: string, urlPath: string, opts: {
    body?: unknown;
    raw?: Buffer;
    headers?: Record<string, string>;
    csrf?: boolean | string;
  } = {}): Promise<Reply> {
    const headers: Record<string, string> = { ...opts.headers };
    if (this.cookie) headers.cookie = this.cookie;
    const mutating = method !== "GET" && method !== "HEAD";
    if (mutating && opts.csrf !== false) headers["x-csrf-token"] = typeof opts.csrf === "string" ? opts.csrf : this.csrf;
    let body: Buffer | string | undefined;
    if (opts.raw) {
      body = opts.raw;
      headers["content-type"] ??= "application/gzip";
    } else if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers["content-type"] ??= "application/json";
    }
    const res = await fetch(this.base + urlPath, { method, headers, body, redirect: "manual" });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      if (pair!.startsWith("sgrid_admin_sid=")) this.cookie = pair!.endsWith("=") ? "" : pair!;
    }
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON (pages, SSE)
    }
    return { status: res.status, body: parsed, headers: res.headers };
  }

  get(p: string, opts?: Parameters<Client["request"]>[2]): Promise<Reply> {
    return this.request("GET", p, opts);
  }
  post(p: string, body?: unknown, opts: Parameters<Client["request"]>[2] = {}): Promise<Reply> {
    return this.request("POST", p, { body: body ?? {}, ...opts });
  }
  put(p: string, body?: unknown, opts: Parameters<Client["request"]>[2] = {}): Promise<Reply> {
    return this.request("PUT", p, { body: body ?? {}, ...opts });
  }
  patch(p: string, body?: unknown, opts: Parameters<Client["request"]>[2] = {}): Promise<Reply> {
    return this.request("PATCH", p, { body: body ?? {}, ...opts });
  }
  del(p: string, opts?: Parameters<Client["request"]>[2]): Promise<Reply> {
    return this.request("DELETE", p, opts);
  }
}

/** Polls `check` until it returns a truthy value; fails naming `what` after `timeoutMs`. */
export function waitFor<T>(what: string, check: Check<T>, timeoutMs = 30_000): Promise<T> {
  return pollUntil(what, check, { timeoutMs, everyMs: 50 });
}

/**
 * A node agent's side of a real node session: says hello, sends heartbeats
 * with host facts, and answers every desired state by reporting each
 * instance exactly as desired (active with the desired patch version, or
 * inactive). Commands: `agent.tail_log` answers log lines; anything else echoes.
 * `failVersions` makes instances desired at those versions report `failed`.
 */
export class FakeAgent {
  /** What the fake agent sends, in order; closing it ends the request side. */
  private readonly queue = new AsyncQueue<AgentMessage>();
  private readonly comm = new Communicator();
  private readonly abort = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private readonly pids = new Map<number, number>();
  readonly failVersions = new Set<number>();
  lastDesired: DesiredState | undefined;
  readonly done: Promise<void>;

  constructor(registryTarget: string, readonly node: string) {
    const proxy = this.comm.stringToProxy(NodeSessionProxy, registryTarget);
    this.queue.push({ kind: { $case: "hello", value: { node, address: "127.0.0.1", agentVersion: "fake-1", hostInfoJson: JSON.stringify(this.facts()) } } } as AgentMessage);
    const stream = proxy.session(this.queue, { metadata: { authorization: `Bearer ${CLUSTER_TOKEN}` }, signal: this.abort.signal });
    this.done = (async () => {
      try {
        for await (const msg of stream) this.onMessage(msg);
      } catch {
        // closed
      }
    })();
    this.heartbeat();
    this.timer = setInterval(() => this.heartbeat(), 500);
  }

  private facts(): Record<string, unknown> {
    const gib = 1024 ** 3;
    return {
      cpuCount: 2,
      memory: { totalBytes: 8 * gib, availableBytes: (5 + Math.random()) * gib },
      disks: [{ mount: "/", totalBytes: 100 * gib, availableBytes: 60 * gib }],
    };
  }

  private heartbeat(): void {
    this.send({ kind: { $case: "heartbeat", value: { load1: 0.2 + Math.random(), factsJson: JSON.stringify(this.facts()), usage: [], sample: undefined } } } as AgentMessage);
  }

  private onMessage(msg: RegistryMessage): void {
    if (msg.kind?.$case === "desired") {
      this.lastDesired = msg.kind.value;
      const instances = msg.kind.value.instances.map((i) => {
        const version = i.patch?.version ?? 0;
        const active = i.state === "active" && version > 0;
        const failed = active && this.failVersions.has(version);
        if (active && !this.pids.has(i.instanceId)) this.pids.set(i.instanceId, 10000 + Math.floor(Math.random() * 50000));
        if (!active) this.pids.delete(i.instanceId);
        return {
          instanceId: i.instanceId,
          state: failed ? "failed" : active ? "active" : "inactive",
          pid: active && !failed ? this.pids.get(i.instanceId)! : 0,
          version: active ? version : 0,
          restarts: 0,
          lastExitReason: failed ? "exited with code 1" : "",
          event: "",
          startedAt: active ? Date.now() : 0,
        };
      });
      this.send({ kind: { $case: "observed", value: { instances, full: true } } } as AgentMessage);
    } else if (msg.kind?.$case === "command") {
      const cmd = msg.kind.value;
      const output = cmd.command === "agent.tail_log" ? fakeLog(cmd.instanceId, cmd.args) : `echo ${cmd.command} ${cmd.args}`;
      this.send({ kind: { $case: "reply", value: { requestId: cmd.requestId, ok: true, output, error: "" } } } as AgentMessage);
    }
  }

  /**
   * Reports one instance's event (`oom`, `crash`... after the process died and
   * was restarted; `pids_limit`, `cpu_throttled` with their `detail`), as a real agent does.
   */
  reportEvent(instanceId: number, event: string, reason: string, detail = ""): void {
    const version = this.lastDesired?.instances.find((i) => i.instanceId === instanceId)?.patch?.version ?? 0;
    this.send({ kind: { $case: "observed", value: { instances: [{
      instanceId, state: "active", pid: this.pids.get(instanceId) ?? 0, version, restarts: 1, lastExitReason: reason, event, eventDetail: detail, startedAt: Date.now(),
    }], full: false } } } as AgentMessage);
  }

  /** Passes a servant's stats report up the session, as NodeAgent does with its local channel's reports. */
  sendStats(instanceId: number, report: StatsReport): void {
    this.send({ kind: { $case: "stats", value: { instanceId, report } } } as AgentMessage);
  }

  private send(msg: AgentMessage): void {
    this.queue.push(msg);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.queue.close();
    this.abort.abort();
    await this.done;
    this.comm.close();
  }
}

/** What the fake agent answers to agent.tail_log: three lines per stream, filtered like the real agent (JSON arguments, or a line count for stdout). */
function fakeLog(instanceId: number, args: string): string {
  const q = args.trim().startsWith("{") ? (JSON.parse(args) as { lines?: number; stream?: string; grep?: string }) : { lines: Number(args) || 3 };
  const stream = q.stream ?? "stdout";
  const all = Array.from({ length: 3 }, (_, k) => `${stream} line ${k + 1} of instance ${instanceId}${k === 1 ? " WARN slow call" : ""}`);
  const hits = q.grep ? all.filter((l) => l.toLowerCase().includes(q.grep!.toLowerCase())) : all;
  return hits.slice(-Math.max(1, q.lines ?? 3)).join("\n");
}

/** A small valid .tgz package of a node server (sgrid.json + main.js); `tag` makes its bytes differ; `version`: the package's own (sgrid.json `version`). */
export async function makePackage(dir: string, tag: string, app = "Demo", server = "HelloServer", version?: string): Promise<Buffer> {
  const src = fs.mkdtempSync(path.join(dir, "pkg-"));
  fs.writeFileSync(path.join(src, "sgrid.json"), JSON.stringify({ app, server, type: "node", entry: "main.js", ...(version ? { version } : {}) }));
  fs.writeFileSync(path.join(src, "main.js"), `// ${tag}\nsetInterval(() => {}, 1000);\n`);
  const file = path.join(dir, `pkg-${tag}.tgz`);
  await tar.c({ gzip: true, cwd: src, file, portable: true }, ["sgrid.json", "main.js"]);
  return fs.readFileSync(file);
}
