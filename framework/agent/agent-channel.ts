/**
 * The servant's end of the local agent channel (`SGRID_AGENT`): one
 * bidirectional stream to the node agent that runs this process.
 *
 * ```
 *   connect ──> hello(instance id, token, pid, version) [+ AdaptersReady if known]
 *      ^            │
 *      │            v
 *      │        settings(interval) ──> keepalive every interval (+ the calls since the last one)
 *      │        command ──> run ──> CommandResult(request id)
 *      │            │ stream broke / refused
 *      └── backoff ─┘ (0.5 s doubling to 10 s, ±25% jitter)
 * ```
 *
 * Contract: nothing here ever throws into the application or stops it
 * serving; a lost channel is logged and reopened. Keepalives go at the
 * interval the agent sends (5 s until it says otherwise).
 */
import { EventEmitter } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { parseProxyTarget } from "../endpoint";
import { ConfigError, SgridError } from "../errors";
import { getLogger } from "../logger";
import { StaticEndpointSource } from "../proxy/endpoint-source";
import { Invoker, type ChannelProvider } from "../proxy/invoker";
import type { DeepPartial } from "../transport/base";
import type { AgentMessage, ServantMessage } from "../gen/sgrid/agent/v1/agent";
import { AgentProxy } from "../gen/sgrid/agent/v1/agent.sgrid";
import type { CommandRegistry } from "./commands";
import { AsyncQueue, Backoff, PeriodicTask } from "../primitives";
import { StatsReporter } from "../stats-report";
import { ENV } from "../contract/env";

const log = getLogger("agent.channel");

export interface AgentChannelOptions {
  /** The agent's address, `host:port` (SGRID_AGENT). Required. */
  agent: string;
  /** SGRID_INSTANCE_ID. */
  instanceId: string;
  /** SGRID_AGENT_TOKEN. Never logged. */
  token: string;
  /** Framework version sent in the hello. */
  version: string;
  channels: ChannelProvider;
  commands: CommandRegistry;
  /** First reconnect delay, ms. Default 500. */
  reconnectMs?: number;
  /** Longest reconnect delay, ms. Default 10000. */
  maxReconnectMs?: number;
  /** Keepalive interval until the agent sends its own, ms. Default 5000. */
  keepaliveMs?: number;
}

export const AGENT_CHANNEL_DEFAULTS = Object.freeze({ reconnectMs: 500, maxReconnectMs: 10_000, keepaliveMs: 5_000 });

type Outgoing = AsyncQueue<DeepPartial<ServantMessage>>;

/**
 * The channel the node agent asked for through the environment (SGRID_AGENT,
 * SGRID_INSTANCE_ID, SGRID_AGENT_TOKEN), started; undefined when the process
 * was not started by an agent (no SGRID_AGENT, or `agent` ""), with a warning
 * when only part of it is set.
 */
export function agentChannelFromEnv(env: NodeJS.ProcessEnv, options: { agent?: string; version: string; channels: ChannelProvider; commands: CommandRegistry }): AgentChannel | undefined {
  const agent = options.agent ?? env[ENV.AGENT];
  if (!agent) return undefined;
  const instanceId = env[ENV.INSTANCE_ID];
  const token = env[ENV.AGENT_TOKEN];
  if (!instanceId || !token) {
    log.warn({ agent }, "SGRID_AGENT is set but SGRID_INSTANCE_ID or SGRID_AGENT_TOKEN is not: no agent channel");
    return undefined;
  }
  const channel = new AgentChannel({ agent, instanceId, token, version: options.version, channels: options.channels, commands: options.commands });
  channel.start();
  return channel;
}

export class AgentChannel extends EventEmitter<{ connected: []; disconnected: [string]; command: [string] }> {
  private readonly proxy: AgentProxy;
  private readonly opts: Readonly<Required<Pick<AgentChannelOptions, "reconnectMs" | "maxReconnectMs" | "keepaliveMs">>>;
  private readyObjs: string[] | undefined;
  private out: Outgoing | undefined;
  private keepalive: PeriodicTask | undefined;
  private readonly abort = new AbortController();
  private connectedNow = false;
  private started = false;
  /** Keepalives sent since start (for tests and viewstatus). */
  keepalivesSent = 0;
  private readonly stats = new StatsReporter();

  /** Throws ConfigError when the agent address does not parse. */
  constructor(private readonly options: AgentChannelOptions) {
    super();
    let parsed;
    try {
      parsed = parseProxyTarget(options.agent);
    } catch (err) {
      throw new ConfigError(`SGRID_AGENT "${options.agent}" does not parse: ${(err as Error).message}`);
    }
    if (parsed.endpoints.length === 0) throw new ConfigError(`SGRID_AGENT "${options.agent}" is not host:port`);
    this.opts = Object.freeze({ ...AGENT_CHANNEL_DEFAULTS, ...Object.fromEntries(Object.entries({ reconnectMs: options.reconnectMs, maxReconnectMs: options.maxReconnectMs, keepaliveMs: options.keepaliveMs }).filter(([, v]) => v !== undefined)) });
    this.proxy = new AgentProxy(new Invoker(new StaticEndpointSource(parsed.endpoints, `agent ${options.agent}`), options.channels, "sgrid.agent.v1.Agent", { maxAttempts: 1, inheritCallContext: false }));
  }

  /** True while a stream is open and the agent has answered. */
  get connected(): boolean {
    return this.connectedNow;
  }

  /** Opens the channel (and keeps it open). Idempotent. */
  start(): void {
    if (this.started) return;
    this.started = true;
    void this.loop();
  }

  /** Reports the Objs now listening (sent now, and again after every reconnect). */
  ready(objs: string[]): void {
    this.readyObjs = [...objs];
    this.out?.push({ kind: { $case: "ready", value: { objs: this.readyObjs } } });
  }

  /** Ends the stream and stops reconnecting. Idempotent; never throws. */
  close(): void {
    if (this.abort.signal.aborted) return;
    this.out?.close();
    this.abort.abort();
    this.stopKeepalive();
    this.connectedNow = false;
  }

  private startKeepalive(intervalMs: number): void {
    this.stopKeepalive();
    const out = this.out;
    this.keepalive = new PeriodicTask(() => {
      out?.push({ kind: { $case: "keepalive", value: {} } });
      this.keepalivesSent++;
      // The calls since the last keepalive, for the service monitor (nothing when there were none).
      const stats = this.stats.delta();
      if (stats.length > 0) out?.push({ kind: { $case: "stats", value: { at: Date.now(), stats } } });
    }, { intervalMs }).start();
  }

  private stopKeepalive(): void {
    void this.keepalive?.stop();
    this.keepalive = undefined;
  }

  private handle(msg: AgentMessage, out: Outgoing): void {
    const kind = msg.kind;
    if (!kind) return;
    if (kind.$case === "settings") {
      const ms = kind.value.intervalMs > 0 ? kind.value.intervalMs : this.opts.keepaliveMs;
      this.startKeepalive(ms);
      return;
    }
    const { requestId, command, args } = kind.value;
    this.emit("command", command);
    void this.options.commands.run(command, args).then((r) => {
      out.push({ kind: { $case: "result", value: { requestId, ok: r.ok, output: r.output, error: r.error } } });
    });
  }

  private async loop(): Promise<void> {
    const signal = this.abort.signal;
    const backoff = new Backoff({ initialMs: this.opts.reconnectMs, maxMs: Math.max(this.opts.reconnectMs, this.opts.maxReconnectMs), jitter: 0.25 });
    let lastError = "";
    while (!signal.aborted) {
      const out: Outgoing = new AsyncQueue();
      this.out = out;
      out.push({ kind: { $case: "hello", value: { instanceId: this.options.instanceId, token: this.options.token, pid: process.pid, version: this.options.version } } });
      if (this.readyObjs) out.push({ kind: { $case: "ready", value: { objs: this.readyObjs } } });
      this.startKeepalive(this.opts.keepaliveMs);
      let why = "stream ended";
      try {
        for await (const msg of this.proxy.channel(out, { signal })) {
          if (!this.connectedNow) {
            this.connectedNow = true;
            backoff.reset();
            lastError = "";
            log.info({ agent: this.options.agent }, "agent channel open");
            this.emit("connected");
          }
          this.handle(msg, out);
        }
      } catch (err) {
        why = err instanceof SgridError ? `${err.code}: ${err.message}` : String(err);
      }
      out.close();
      this.stopKeepalive();
      const was = this.connectedNow;
      this.connectedNow = false;
      if (signal.aborted) return;
      if (was) this.emit("disconnected", why);
      if (why !== lastError) log.warn({ agent: this.options.agent, err: why }, "agent channel lost; reconnecting");
      lastError = why;
      try { await sleep(backoff.next(), undefined, { signal }); } catch { return; }
    }
  }
}
