/**
 * The client side of the node session (`sgrid.registry.v1.NodeSession`):
 * one long-lived bidi stream to a registry, opened by the agent, so nodes
 * need no inbound port.
 *
 * On every (re)connect: hello (node name, address, version, host facts),
 * then the full observed state; the registry answers with the full desired
 * state (again on every change) and sends admin commands. Heartbeats go at
 * the interval the last desired state named (default 5 s). When the stream
 * fails or ends, the session reconnects after an exponential, jittered
 * delay (sgridnext's Backoff), trying the next registry endpoint each time an
 * attempt fails before a desired state arrived; the delay resets once a
 * desired state is received. Nothing here stops supervision: the agent
 * supervises on from its last desired state while disconnected.
 *
 * Authentication: the cluster token as metadata `authorization: Bearer`.
 * The token is never logged.
 */
import { EventEmitter } from "node:events";
import { AsyncQueue, Backoff, Communicator, getLogger, PeriodicTask, type BackoffPolicy, type DeepPartial } from "sgridnext";
import { NodeSessionProxy } from "sgridnext/gen/sgrid/registry/v1/node.sgrid";
import type {
  AgentMessage, DesiredState, Heartbeat, InstanceCommand, InstanceObserved, NodeHello,
} from "sgridnext/gen/sgrid/registry/v1/node";
import type { PackageFetcher } from "../install";
import { REGISTRY_ENDPOINT, REGISTRY_ENDPOINT_FORMS } from "./options";

const log = getLogger("agent.session");

/** A patch download with no chunk for this long is cancelled (and resumed by the next attempt), ms. */
export const DOWNLOAD_IDLE_TIMEOUT_MS = 15_000;

export interface RegistrySessionOptions {
  /** Registry endpoints, `host:port` each; tried in turn. Required, at least one. */
  endpoints: string[];
  /** Cluster token (sent as `authorization: Bearer <token>`). Default "" (no header). */
  token?: string;
  /** Builds the hello of a new connection. */
  hello(): Promise<NodeHello>;
  /** The observed state of every instance, sent after hello. */
  fullObserved(): InstanceObserved[];
  /**
   * Builds one heartbeat. `withFacts`: whether it carries the host facts
   * JSON. False only when the registry named a facts interval in its
   * desired state (it reads the HostSample of every heartbeat) and the facts
   * are not due: they go about that often, jittered.
   */
  heartbeat(withFacts: boolean): Promise<Heartbeat>;
  /** Reconnect delays. Defaults: RECONNECT_BACKOFF (250 ms doubling to 3 s, +-50 %). */
  backoff?: Partial<BackoffPolicy>;
  /** Heartbeat interval until the registry names one, ms. Default 5000. */
  heartbeatIntervalMs?: number;
  /** A patch download with no chunk for this long is cancelled and resumed later, ms. Default DOWNLOAD_IDLE_TIMEOUT_MS. */
  downloadIdleTimeoutMs?: number;
  /**
   * The communicator (connections) to use; stop() leaves it open. Default:
   * one of its own, closed by stop(). The heartbeat benchmark shares one
   * among many simulated agents.
   */
  communicator?: Communicator;
}

export const SESSION_DEFAULTS = Object.freeze({ heartbeatIntervalMs: 5000 });

/** `ms` give or take a quarter (so that the agents of a connect storm do not all send their facts in the same second). */
function jittered(ms: number): number {
  return Math.round(ms * (0.75 + 0.5 * Math.random()));
}

/**
 * Reconnect delays of the node session: 250 ms doubling to a cap of 3 s,
 * each drawn from +-50 % (so 1.5 to 4.5 s once capped).
 *
 * Why a cap of a few seconds: while its session is down an agent cannot be
 * managed, and a registry that came back cannot tell a node that is away
 * from one that waits out its backoff (the old 30 s cap kept nodes offline,
 * and their endpoints suspect, for up to 30 s after every registry restart).
 * Why it still fits 10,000 nodes: an attempt against a registry that is down
 * is one refused TCP connect; capped, 10,000 agents make at most ~3,300 of
 * them a second (spread by the jitter), the same order as the steady
 * heartbeat load the registry is sized for (10,000 nodes at the default 5 s
 * interval: 2,000 messages a second), and much cheaper than one. Once the
 * registry answers, each agent holds one stream and retries stop; the
 * reconnect storm is then bounded by the registry accepting hellos (1,000
 * agents connected in 5.1 s on SQLite, `npm run bench registry-heartbeat`),
 * not by the agents' delays, and the jitter spreads the hellos over seconds
 * instead of one burst. Backoff beyond that would only delay recovery.
 */
export const RECONNECT_BACKOFF: Readonly<BackoffPolicy> = Object.freeze({ initialMs: 250, maxMs: 3000, multiplier: 2, jitter: 0.5 });

/**
 * Events: "desired" (every DesiredState), "command", "connected" (endpoint),
 * "disconnected" (reason), "refused" (the registry refused this agent's
 * hello for good reason, e.g. NODE_NAME_IN_USE: message; retried at the
 * capped backoff, so the agent takes over once the other one is gone).
 */
export class RegistrySession extends EventEmitter<{
  desired: [DesiredState]; command: [InstanceCommand]; connected: [string]; disconnected: [string]; refused: [string];
}> {
  private readonly options: RegistrySessionOptions;
  private readonly endpoints: string[];
  private readonly comm: Communicator;
  private readonly ownComm: boolean;
  private readonly backoff: Backoff;
  private index = 0;
  private out: AsyncQueue<DeepPartial<AgentMessage>> | undefined;
  private established = false;
  private current: string | undefined;
  private abort: AbortController | undefined;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private stopped = false;
  private heartbeatMs: number;
  private heartbeatTask: PeriodicTask | undefined;
  /** The registry's facts interval (ms; 0 = facts with every heartbeat) and when facts are next due. */
  private factsIntervalMs = 0;
  private nextFactsAt = 0;
  /** Completed sessions (a desired state was received), for tests and stats. */
  sessions = 0;

  constructor(options: RegistrySessionOptions) {
    super();
    const eps = (options?.endpoints ?? []).map((e) => e.trim()).filter(Boolean);
    if (eps.length === 0) throw new TypeError("RegistrySession: at least one registry endpoint (host:port) is required");
    for (const e of eps) {
      if (!REGISTRY_ENDPOINT.test(e)) throw new TypeError(`RegistrySession: registry endpoint "${e}" is not ${REGISTRY_ENDPOINT_FORMS}`);
    }
    this.options = options;
    this.endpoints = eps;
    this.ownComm = options.communicator === undefined;
    this.comm = options.communicator ?? new Communicator();
    this.backoff = new Backoff({ ...RECONNECT_BACKOFF, ...options.backoff });
    this.heartbeatMs = options.heartbeatIntervalMs ?? SESSION_DEFAULTS.heartbeatIntervalMs;
  }

  /** Starts connecting (in the background; never rejects). Idempotent. */
  start(): void {
    this.loop ??= this.run();
  }

  /** True while a session is established (a desired state was received on the current stream). */
  get connected(): boolean {
    return this.established;
  }

  /** The endpoint of the established session, if any. */
  get endpoint(): string | undefined {
    return this.established ? this.current : undefined;
  }

  /** Queues a message on the current stream; false when there is none (it is not kept: the next hello resends full state). */
  send(msg: DeepPartial<AgentMessage>): boolean {
    const out = this.out;
    if (!out || !this.established) return false;
    return out.push(msg);
  }

  /** Sets the heartbeat interval (from the registry's desired state), ms; 0 keeps the current one. */
  setHeartbeatInterval(ms: number): void {
    if (!(ms > 0) || ms === this.heartbeatMs) return;
    this.heartbeatMs = ms;
    if (this.heartbeatTask) this.armHeartbeat();
  }

  /** Sets the facts interval from the registry's desired state (0 = facts with every heartbeat); the first facts are due one jittered interval from now. */
  private setFactsInterval(ms: number): void {
    if (ms === this.factsIntervalMs) return;
    this.factsIntervalMs = ms;
    this.nextFactsAt = Date.now() + jittered(ms);
  }

  /** Whether the heartbeat built now carries the facts JSON; when it does, the next ones are due a jittered interval later. */
  private factsDue(now: number): boolean {
    if (this.factsIntervalMs === 0) return true;
    if (now < this.nextFactsAt) return false;
    this.nextFactsAt = now + jittered(this.factsIntervalMs);
    return true;
  }

  /**
   * A fetch function for the package cache that streams patch `patchId`
   * from the registry this agent is connected to (or the first one),
   * resuming at the offset asked for. Checks that chunks arrive in order.
   */
  fetcher(patchId: number): PackageFetcher {
    return (_sha256: string, offset: number) => this.download(patchId, offset);
  }

  /**
   * Streams a patch from the registry of the session, and, when that one
   * answers NOT_FOUND before any byte (several registries on one database,
   * each storing packages on its own disk, and the package was uploaded
   * through another one), from the other registries of `endpoints` in turn.
   */
  private async *download(patchId: number, offset: number): AsyncIterable<Uint8Array> {
    const first = this.current ?? this.endpoints[0]!;
    const order = [first, ...this.endpoints.filter((e) => e !== first)];
    let lastErr: unknown;
    for (const ep of order) {
      let started = false;
      try {
        for await (const data of this.downloadFrom(ep, patchId, offset)) {
          started = true;
          yield data;
        }
        return;
      } catch (err) {
        if (started || (err as { code?: string }).code !== "NOT_FOUND") throw err;
        log.warn({ registry: ep, patchId }, "patch not stored on this registry; trying the next one");
        lastErr = err;
      }
    }
    throw lastErr;
  }

  private async *downloadFrom(ep: string, patchId: number, offset: number): AsyncIterable<Uint8Array> {
    const proxy = this.comm.stringToProxy(NodeSessionProxy, ep);
    let at = offset;
    // A registry that stops sending mid-download must not hold the install:
    // no chunk for DOWNLOAD_IDLE_TIMEOUT_MS cancels the call; the package
    // cache resumes from `at` on the next attempt.
    const idleMs = this.options.downloadIdleTimeoutMs ?? DOWNLOAD_IDLE_TIMEOUT_MS;
    const idle = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => idle.abort(new Error(`patch ${patchId}: no data from the registry for ${idleMs} ms`)), idleMs);
      timer.unref();
    };
    arm();
    try {
      for await (const chunk of proxy.downloadPatch({ patchId, offset }, { metadata: this.metadata(), signal: idle.signal })) {
        arm();
        if (chunk.data.length === 0) continue;
        if (chunk.offset !== at) throw new Error(`patch ${patchId}: chunk at offset ${chunk.offset}, expected ${at}`);
        at += chunk.data.length;
        yield chunk.data;
      }
    } catch (err) {
      if (idle.signal.aborted) throw idle.signal.reason as Error;
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops reconnecting and closes the stream. Resolves when the loop has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopHeartbeat();
    this.abort?.abort();
    this.out?.close();
    this.wake?.();
    await this.loop;
    if (this.ownComm) this.comm.close();
  }

  private metadata(): Record<string, string> {
    return this.options.token ? { authorization: `Bearer ${this.options.token}` } : {};
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const ep = this.endpoints[this.index % this.endpoints.length]!;
      let reason = "stream ended";
      let refused = false;
      try {
        await this.connectOnce(ep);
      } catch (err) {
        reason = (err as Error)?.message ?? String(err);
        refused = (err as { code?: string })?.code === "NODE_NAME_IN_USE";
      }
      const wasEstablished = this.established;
      this.established = false;
      this.stopHeartbeat();
      if (this.stopped) break;
      if (refused) {
        log.error({ registry: ep, reason }, "the registry refused this agent");
        this.emit("refused", reason);
      } else if (wasEstablished) log.warn({ registry: ep, reason }, "registry session lost; supervising on from the last desired state");
      else {
        log.warn({ registry: ep, reason, attempt: this.backoff.attempts + 1 }, "cannot open the registry session");
        this.index++;
      }
      this.emit("disconnected", reason);
      await this.sleep(this.backoff.next());
    }
  }

  private async connectOnce(ep: string): Promise<void> {
    const out = new AsyncQueue<DeepPartial<AgentMessage>>();
    const ac = new AbortController();
    this.out = out;
    this.abort = ac;
    this.current = ep;
    try {
      out.push({ kind: { $case: "hello", value: await this.options.hello() } });
      out.push({ kind: { $case: "observed", value: { instances: this.options.fullObserved(), full: true } } });
      if (this.stopped) return;
      const proxy = this.comm.stringToProxy(NodeSessionProxy, ep);
      for await (const msg of proxy.session(out, { metadata: this.metadata(), signal: ac.signal })) {
        const kind = msg.kind;
        if (kind?.$case === "desired") {
          if (!this.established) {
            this.established = true;
            this.sessions++;
            this.backoff.reset();
            log.info({ registry: ep }, "registry session established");
            // The hello carried the facts; this registry's desired state says how often it wants them again.
            this.factsIntervalMs = -1;
            this.setFactsInterval(kind.value.factsIntervalMs);
            this.emit("connected", ep);
            this.armHeartbeat();
          }
          this.setHeartbeatInterval(kind.value.heartbeatIntervalMs);
          this.setFactsInterval(kind.value.factsIntervalMs);
          this.emit("desired", kind.value);
        } else if (kind?.$case === "command") {
          this.emit("command", kind.value);
        }
      }
    } finally {
      out.close();
      if (this.out === out) this.out = undefined;
    }
  }

  private armHeartbeat(): void {
    this.stopHeartbeat();
    // Never overlapping: a heartbeat still being built (facts, cgroup reads) delays the next one.
    this.heartbeatTask = new PeriodicTask(async () => {
      if (!this.established) return;
      this.send({ kind: { $case: "heartbeat", value: await this.options.heartbeat(this.factsDue(Date.now())) } });
    }, { intervalMs: this.heartbeatMs, onError: (err) => log.warn({ err: (err as Error).message }, "cannot build a heartbeat") }).start();
  }

  private stopHeartbeat(): void {
    void this.heartbeatTask?.stop();
    this.heartbeatTask = undefined;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = undefined;
        resolve();
      };
    });
  }
}
