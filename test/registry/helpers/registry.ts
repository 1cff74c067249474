/**
 * Helpers for tests of the registry process: an in-process RegistryServer on
 * a fresh database, `sgrid registry` as a child process, a TCP forwarder
 * that can cut and restore a database connection, seeding of Objs, polling.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Communicator } from "sgridnext";
import { QueryProxy } from "sgridnext/gen/sgrid/registry/v1/query.sgrid";
import type { EndpointCache, QueryImpl } from "../../../registry/query";
import { RegistryServer, type RegistryServerOptions } from "../../../registry/server";
import type { DesiredState, InstanceRecord, ObservedState, RegistryStore } from "../../../registry/store";
import { trackOutput } from "../../helpers/output";
import { CLI } from "../../helpers/paths";
import { type DialectCase, type TestDatabase, uniq } from "./db";
import { pollUntil, type Check } from "../../helpers/wait";

/** Polls `check` until it returns a value other than undefined/false; fails after `timeoutMs` with `what`. */
export function waitFor<T>(what: string, check: Check<T>, timeoutMs = 20_000, everyMs = 25): Promise<T> {
  return pollUntil(what, check, { timeoutMs, everyMs, done: (v) => v !== undefined && v !== false });
}

/** A fresh temp dir, tracked like a run folder (helpers/output.ts): removed once what made it passed, even if nothing else removes it. */
export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  trackOutput(dir, "current");
  return dir;
}

export interface TestRegistry {
  server: RegistryServer;
  db: TestDatabase;
  dataDir: string;
  comm: Communicator;
  query: QueryProxy;
  target: string;
  cache: EndpointCache;
  querySvc: QueryImpl;
  /** Stops the server and drops the database. */
  cleanup(): Promise<void>;
}

/**
 * An in-process registry on 127.0.0.1:0 over a new private database of
 * dialect `d`. Nodes stay online for the test (long heartbeat timeout).
 */
export async function startTestRegistry(d: DialectCase, opts: RegistryServerOptions = {}, existing?: TestDatabase): Promise<TestRegistry> {
  const db = existing ?? (await d.create());
  const dataDir = opts.dataDir ?? tempDir("sgrid-reg-");
  const server = new RegistryServer({
    db: db.url, listen: "127.0.0.1:0", dataDir, heartbeatIntervalMs: 5000, heartbeatTimeoutMs: 600_000, adminPassword: "test-admin-pw", shutdownGraceMs: 2000, taskSettleMs: 600, ...opts,
  });
  try {
    await server.start();
  } catch (err) {
    if (!existing) await db.drop();
    throw err;
  }
  const comm = new Communicator();
  const target = `127.0.0.1:${server.address.port}`;
  const part = server.part<{ cache: EndpointCache; servant: QueryImpl }>("query")!;
  return {
    server, db, dataDir, comm, target,
    query: comm.stringToProxy(QueryProxy, target),
    cache: part.cache,
    querySvc: part.servant,
    async cleanup() {
      comm.close();
      await server.stop();
      if (!existing) await db.drop();
      if (!opts.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface SeededObj {
  app: string;
  server: string;
  obj: string;
  /** Full `App.Server.Obj`. */
  full: string;
  nodes: string[];
  instances: InstanceRecord[];
}

/**
 * Creates nodes (online), a server, and one instance per node declaring
 * `obj` on port base+i, with the given desired / observed states.
 */
export async function seedObj(
  store: RegistryStore,
  spec: { nodes?: number; obj?: string; desired?: DesiredState; observed?: ObservedState; basePort?: number; app?: string } = {},
): Promise<SeededObj> {
  const app = spec.app ?? uniq("App");
  const server = "Hello";
  const obj = spec.obj ?? "GreeterObj";
  await store.servers.create({ application: app, name: server, type: "node" });
  const nodes: string[] = [];
  const instances: InstanceRecord[] = [];
  const count = spec.nodes ?? 2;
  for (let i = 0; i < count; i++) {
    const node = uniq("node");
    await store.nodes.upsert({ name: node, address: `10.1.0.${i + 1}`, agentVersion: "test" });
    nodes.push(node);
    let inst = await store.instances.create({
      application: app, server, node, adapters: [{ obj, host: `10.1.0.${i + 1}`, port: (spec.basePort ?? 20000) + i }],
      desiredState: spec.desired ?? "active",
    });
    inst = await store.instances.reportObserved(inst.id, { state: spec.observed ?? "active", pid: 1000 + i });
    instances.push(inst);
  }
  return { app, server, obj, full: `${app}.${server}.${obj}`, nodes, instances };
}

export interface RegistryProcess {
  child: ChildProcess;
  /** `host:port` from the "serving on" line. */
  address: string;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then waits for the exit (SIGKILL after 15 s). */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Output of a `sgrid registry` child that exited (or was killed) before serving. */
export class RegistryExitedError extends Error {
  constructor(readonly code: number | null, readonly out: string, readonly err: string) {
    super(`sgrid registry exited with ${code} before serving: ${err}`);
  }
}

/** Runs `sgrid registry <args>` and waits for its "serving on" line (rejects with RegistryExitedError when it exits first). */
export function startRegistryProcess(args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<RegistryProcess> {
  const child = spawn(process.execPath, [CLI, "registry", ...args], {
    env: { ...process.env, SGRID_LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => { out += d; });
  child.stderr!.setEncoding("utf8").on("data", (d: string) => { err += d; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    const r = await exited;
    clearTimeout(timer);
    return r;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`sgrid registry not serving in ${timeoutMs} ms: ${err}`));
    }, timeoutMs);
    const onData = () => {
      const m = /serving on (?:grpcs:\/\/)?(\S+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.stdout!.off("data", onData);
      resolve({ child, address: m[1]!, stdout: () => out, stderr: () => err, exited, stop });
    };
    child.stdout!.on("data", onData);
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new RegistryExitedError(code, out, err));
    });
  });
}

/**
 * A TCP forwarder (test side of "the network"): listens on 127.0.0.1:0 and
 * pipes every connection to `target`. cut() drops every open connection and
 * refuses new ones (accepted, then reset at once); restore() forwards again.
 */
export class TcpForwarder {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private open = true;
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer((client) => this.accept(client));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(0, "127.0.0.1", () => resolve());
    });
    this.port = (this.server.address() as net.AddressInfo).port;
    return this.port;
  }

  private accept(client: net.Socket): void {
    if (!this.open) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(this.target.port, this.target.host);
    this.sockets.add(client);
    this.sockets.add(upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Drops every connection and refuses new ones. */
  cut(): void {
    this.open = false;
    for (const s of this.sockets) s.resetAndDestroy();
    this.sockets.clear();
  }

  restore(): void {
    this.open = true;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** The MySQL URL `url` with its host and port replaced (to go through a forwarder). */
export function viaPort(url: string, port: number): string {
  const u = new URL(url);
  u.hostname = "127.0.0.1";
  u.port = String(port);
  return u.toString();
}
