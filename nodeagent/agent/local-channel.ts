/**
 * The agent side of the local channel (`sgrid.agent.v1.Agent`, ARCHITECTURE.md
 * "The environment contract"): servants built on the framework open one Channel
 * stream to SGRID_AGENT at start, say hello with SGRID_INSTANCE_ID and
 * SGRID_AGENT_TOKEN, then send keepalives and "adapters ready"; the agent
 * sends them admin commands and gets their results back.
 *
 * Contracts:
 * - The first message must be a hello whose token matches the one the
 *   agent put in that instance's environment (compared in constant time);
 *   anything else ends the stream with UNAUTHENTICATED
 *   (AGENT_CHANNEL_UNAUTHENTICATED) and nothing is recorded.
 * - The hello counts as a keepalive; each Keepalive is handed to
 *   `onKeepalive` (the supervisor's keepalive timeout).
 * - One channel per instance: a new authenticated hello for the same
 *   instance replaces the old stream (a servant restarted in place, or a
 *   reconnect after a network blip), whose pending commands fail.
 * - sendCommand() resolves with the servant's result, or rejects with
 *   AGENT_NO_CHANNEL (no channel open), AGENT_COMMAND_TIMEOUT (no result in
 *   time) or UNAVAILABLE (the channel closed before answering).
 * - Listens on loopback only unless told otherwise: the channel carries
 *   admin commands, and a token is only as good as the port's reach.
 */
import * as crypto from "node:crypto";
import { EventEmitter } from "node:events";
import { Application, AsyncQueue, UnavailableError, formatHostPort, getLogger, type DeepPartial, type ServerContext } from "sgridnext";
import { AgentServant } from "sgridnext/gen/sgrid/agent/v1/agent.sgrid";
import type { AgentMessage, ServantHello, ServantMessage, StatsReport } from "sgridnext/gen/sgrid/agent/v1/agent";
import { ChannelAuthError, NoServantChannelError, ServantCommandTimeoutError } from "./errors";

const log = getLogger("agent.channel");

export interface LocalChannelOptions {
  /** host:port to listen on; port 0 picks a free one. Required. */
  listen: string;
  /** The token given to an instance; undefined for an instance this agent does not run. */
  tokenOf(instanceId: string): string | undefined;
  /** A hello or keepalive from an authenticated servant. */
  onKeepalive(instanceId: string): void;
  /** How often the servant should send keepalives, ms. Default: 10000 for every instance. */
  keepaliveIntervalMs?(instanceId: string): number;
}

/** Framework servants send a keepalive every 10 s unless told otherwise (see supervisor/options.ts). */
export const LOCAL_CHANNEL_DEFAULTS = Object.freeze({ keepaliveIntervalMs: 10_000, commandTimeoutMs: 5000 });

/** The servant's answer to an admin command. */
export interface CommandOutcome {
  ok: boolean;
  output: string;
  error: string;
}

interface Pending {
  resolve(r: CommandOutcome): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

interface Conn {
  instanceId: string;
  pid: number;
  version: string;
  out: AsyncQueue<DeepPartial<AgentMessage>>;
  pending: Map<number, Pending>;
  readyObjs: string[];
  since: number;
}

/** Constant-time string equality (hashing first makes unequal lengths take the same time). */
export function tokensEqual(a: string, b: string): boolean {
  const ha = crypto.createHash("sha256").update(a).digest();
  const hb = crypto.createHash("sha256").update(b).digest();
  return crypto.timingSafeEqual(ha, hb) && a.length === b.length;
}

class ChannelServant extends AgentServant {
  constructor(private readonly owner: LocalChannelServer) {
    super();
  }

  channel(requests: AsyncIterable<ServantMessage>, ctx: ServerContext): AsyncIterable<DeepPartial<AgentMessage>> {
    return this.owner.serve(requests, ctx);
  }
}

/** Events: "connected" (instanceId, pid), "disconnected" (instanceId), "ready" (instanceId, objs). */
export class LocalChannelServer extends EventEmitter<{ connected: [string, number]; disconnected: [string]; ready: [string, string[]]; stats: [string, StatsReport] }> {
  private readonly options: LocalChannelOptions;
  private readonly conns = new Map<string, Conn>();
  private app: Application | undefined;
  private boundAddress: string | undefined;
  private nextRequestId = 1;

  constructor(options: LocalChannelOptions) {
    super();
    if (typeof options?.listen !== "string" || options.listen === "") throw new TypeError("LocalChannelServer: listen (host:port) is required");
    if (typeof options.tokenOf !== "function" || typeof options.onKeepalive !== "function") throw new TypeError("LocalChannelServer: tokenOf and onKeepalive are required");
    this.options = options;
  }

  /** Binds and serves; resolves with the bound `host:port` (what goes into SGRID_AGENT). Rejects with BindError. */
  async start(): Promise<string> {
    if (this.boundAddress) return this.boundAddress;
    const app = new Application({ app: "Sgrid", server: "Agent", adapters: { AgentObj: this.options.listen }, handleSignals: false, env: {} });
    app.addServant("AgentObj", new ChannelServant(this));
    await app.start();
    this.app = app;
    const ep = app.adapters()[0]!.endpoint;
    this.boundAddress = formatHostPort(ep.host, ep.port);
    log.info({ address: this.boundAddress }, "local channel listening");
    return this.boundAddress;
  }

  /** The bound `host:port` (after start()). */
  get address(): string {
    if (!this.boundAddress) throw new Error("LocalChannelServer.start() has not completed");
    return this.boundAddress;
  }

  /** True when the instance's servant has a channel open. */
  connected(instanceId: string): boolean {
    return this.conns.has(instanceId);
  }

  /** Obj names the servant reported as listening (AdaptersReady), [] when none or not connected. */
  readyObjs(instanceId: string): string[] {
    return this.conns.get(instanceId)?.readyObjs ?? [];
  }

  /** Instances with a channel open. */
  instances(): string[] {
    return [...this.conns.keys()];
  }

  /**
   * Sends an admin command to one servant and waits for its result.
   * `timeoutMs` 0 or absent = LOCAL_CHANNEL_DEFAULTS.commandTimeoutMs.
   */
  sendCommand(instanceId: string, command: string, args: string, timeoutMs?: number): Promise<CommandOutcome> {
    const conn = this.conns.get(instanceId);
    if (!conn) {
      return Promise.reject(new NoServantChannelError(
        `instance ${instanceId} has no local channel open (its servant is not running, not built on the Sgrid framework, or not connected yet); cannot deliver "${command}"`,
        { instanceId, command }));
    }
    const ms = timeoutMs && timeoutMs > 0 ? timeoutMs : LOCAL_CHANNEL_DEFAULTS.commandTimeoutMs;
    const requestId = this.nextRequestId++;
    return new Promise<CommandOutcome>((resolve, reject) => {
      const timer = setTimeout(() => {
        conn.pending.delete(requestId);
        reject(new ServantCommandTimeoutError(`instance ${instanceId} did not answer "${command}" within ${ms} ms`, { instanceId, command, timeoutMs: ms }));
      }, ms);
      conn.pending.set(requestId, { resolve, reject, timer });
      conn.out.push({ kind: { $case: "command", value: { requestId, command, args } } });
    });
  }

  /** Closes one instance's channel (the instance was removed). Idempotent. */
  disconnect(instanceId: string): void {
    const conn = this.conns.get(instanceId);
    if (conn) this.drop(conn, "instance removed from this node");
  }

  /** Closes every channel and the port. Idempotent. */
  async stop(): Promise<void> {
    for (const conn of [...this.conns.values()]) this.drop(conn, "agent shutting down");
    const app = this.app;
    this.app = undefined;
    this.boundAddress = undefined;
    if (app) await app.stop(500);
  }

  /** The Channel call. Never throws synchronously; a failed hello ends the stream with UNAUTHENTICATED. */
  serve(requests: AsyncIterable<ServantMessage>, ctx: ServerContext): AsyncIterable<DeepPartial<AgentMessage>> {
    const out = new AsyncQueue<DeepPartial<AgentMessage>>();
    let conn: Conn | undefined;
    const read = async (): Promise<void> => {
      for await (const msg of requests) {
        const kind = msg.kind;
        if (!conn) {
          if (kind?.$case !== "hello") throw new ChannelAuthError(`the first message on the local channel must be hello, got ${kind?.$case ?? "nothing"}`);
          conn = this.authenticate(kind.value, out, ctx);
          continue;
        }
        switch (kind?.$case) {
          case "keepalive":
            this.options.onKeepalive(conn.instanceId);
            break;
          case "stats":
            // The servant's calls since its last report: the agent passes them up its session.
            this.emit("stats", conn.instanceId, kind.value);
            break;
          case "ready":
            conn.readyObjs = [...kind.value.objs];
            log.info({ instanceId: conn.instanceId, objs: conn.readyObjs }, "servant adapters ready");
            this.emit("ready", conn.instanceId, conn.readyObjs);
            break;
          case "result": {
            const p = conn.pending.get(kind.value.requestId);
            if (!p) break; // timed out already
            conn.pending.delete(kind.value.requestId);
            clearTimeout(p.timer);
            p.resolve({ ok: kind.value.ok, output: kind.value.output, error: kind.value.error });
            break;
          }
          default:
            break; // a second hello or an unknown kind: ignored
        }
      }
    };
    ctx.signal.addEventListener("abort", () => out.close(), { once: true });
    read().then(
      () => out.close(),
      (err: unknown) => {
        if (err instanceof ChannelAuthError) log.warn({ peer: ctx.peer, err: err.message }, "local channel refused");
        out.fail(err);
      },
    ).finally(() => {
      if (conn && this.conns.get(conn.instanceId) === conn) this.drop(conn, "channel closed");
    });
    return out;
  }

  private authenticate(hello: ServantHello, out: AsyncQueue<DeepPartial<AgentMessage>>, ctx: ServerContext): Conn {
    const id = hello.instanceId;
    const expected = id === "" ? undefined : this.options.tokenOf(id);
    // The same message for an unknown instance and a wrong token: the answer tells a prober nothing.
    if (expected === undefined || hello.token === "" || !tokensEqual(hello.token, expected)) {
      throw new ChannelAuthError(`local channel hello refused for instance ${JSON.stringify(id)}: unknown instance or wrong token`, { instanceId: id });
    }
    const old = this.conns.get(id);
    if (old) this.drop(old, "replaced by a new channel from the same instance");
    const conn: Conn = { instanceId: id, pid: hello.pid, version: hello.version, out, pending: new Map(), readyObjs: [], since: Date.now() };
    this.conns.set(id, conn);
    const interval = this.options.keepaliveIntervalMs?.(id) ?? LOCAL_CHANNEL_DEFAULTS.keepaliveIntervalMs;
    out.push({ kind: { $case: "settings", value: { intervalMs: interval } } });
    this.options.onKeepalive(id);
    log.info({ instanceId: id, pid: hello.pid, framework: hello.version, peer: ctx.peer }, "servant connected");
    this.emit("connected", id, hello.pid);
    return conn;
  }

  private drop(conn: Conn, why: string): void {
    if (this.conns.get(conn.instanceId) === conn) this.conns.delete(conn.instanceId);
    for (const p of conn.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new UnavailableError(`the local channel of instance ${conn.instanceId} closed before it answered (${why})`));
    }
    conn.pending.clear();
    conn.out.close();
    this.emit("disconnected", conn.instanceId);
  }
}
