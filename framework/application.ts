/**
 * Hosts servants: binds each Obj on its adapters (gRPC and/or native),
 * serves grpc.health.v1 everywhere, and shuts down gracefully on SIGTERM /
 * SIGINT (stop accepting, let in-flight calls finish up to a deadline, exit 0).
 *
 * Adapters come from, in order: `options.adapters`, `SGRID_ADAPTERS` (JSON:
 * Obj name, full or short, -> "host:port" | "sgrid://host:port" | an array of
 * those), or `SGRID_TARGET_HOST`/`SGRID_TARGET_PORT` when there is exactly one
 * servant.
 *
 * Around the servants (each optional, driven by the environment the node
 * agent sets):
 * - `config`: config files from the registry (SGRID_REGISTRY, SGRID_CONF_DIR);
 * - the local agent channel (SGRID_AGENT, SGRID_INSTANCE_ID, SGRID_AGENT_TOKEN):
 *   hello at start, AdaptersReady once listening, keepalives, admin commands;
 * - admin commands: the built-ins (framework/agent/builtin-commands.ts) and
 *   the servant's own (`registerCommand`);
 * - Prometheus `/metrics` (SGRID_METRICS_PORT or `metricsPort`).
 */
import { performance } from "node:perf_hooks";
import { agentChannelFromEnv, type AgentChannel } from "./agent/agent-channel";
import { registerBuiltinCommands } from "./agent/builtin-commands";
import { CommandRegistry, type CommandHandler, type CommandReply } from "./agent/commands";
import { frameworkVersion } from "./agent/version";
import { Communicator } from "./communicator";
import { endpointKey, parseHostPort, type Endpoint } from "./endpoint";
import { ConfigError, EndpointParseError } from "./errors";
import { getLogger, useHostingLogLevel } from "./logger";
import { metricsPortFromEnv, startMetricsServer, type MetricsServer } from "./metrics";
import { reflectionServants } from "./reflection";
import { ConfigLoader } from "./config/config-loader";
import { registryTokenFromEnv } from "./discovery/registry-client";
import { bindServant } from "./servant/dispatch";
import { HealthService, ServingStatus } from "./servant/health-servant";
import type { Servant } from "./servant/servant";
import { serverStats, type MethodStats } from "./stats";
import { resolveServer, type ServerTransport } from "./transport";
import { ENV } from "./contract/env";

export interface ApplicationOptions {
  /** Application name (`Demo`). Default `SGRID_APP`. */
  app?: string;
  /** Server name (`HelloServer`). Default `SGRID_SERVER`. */
  server?: string;
  /** Obj name -> address(es). Overrides the environment. */
  adapters?: Record<string, string | string[]>;
  /** How long in-flight calls may take to finish at shutdown, ms. Default 8000 (under the agent's 10 s grace). */
  shutdownGraceMs?: number;
  /** Install SIGTERM/SIGINT handlers that stop and exit 0. Default true. */
  handleSignals?: boolean;
  /** Options for server transports by protocol (TLS, limits). */
  transportOptions?: Record<string, Record<string, unknown>>;
  /** Environment to read; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** The communicator for outgoing calls; one is created when absent (resolving Obj names through `registry`). */
  communicator?: Communicator;
  /** Registry endpoints, for Obj names and config. Default `SGRID_REGISTRY`. */
  registry?: string;
  /** Directory of last good config copies. Default `SGRID_CONF_DIR`. */
  confDir?: string;
  /** Local agent address. Default `SGRID_AGENT`; "" = no agent channel. */
  agent?: string;
  /** Serve Prometheus `/metrics` on this port (0 = any). Default `SGRID_METRICS_PORT`; unset = off. */
  metricsPort?: number;
  /** Serve gRPC server reflection (grpc.reflection.v1 and v1alpha) on every adapter, gRPC and native. Default true. */
  reflection?: boolean;
}

export const APPLICATION_DEFAULTS = Object.freeze({ shutdownGraceMs: 8000, handleSignals: true, reflection: true });

export interface BoundAdapter {
  obj: string;
  endpoint: Endpoint;
}

const log = getLogger("app");

export class Application {
  readonly communicator: Communicator;
  readonly health = new HealthService();
  readonly app: string | undefined;
  readonly server: string | undefined;
  private readonly servants = new Map<string, Servant>();
  private readonly transports = new Map<string, ServerTransport>();
  private readonly bound: BoundAdapter[] = [];
  private readonly env: NodeJS.ProcessEnv;
  private state: "new" | "starting" | "running" | "stopping" | "stopped" = "new";
  /** Config files from the registry: `await app.config.load("app.json")`. */
  readonly config: ConfigLoader;
  /** Admin commands answered by this process. */
  readonly commands = new CommandRegistry();
  private agentChannelNow: AgentChannel | undefined;
  private metricsServer: MetricsServer | undefined;
  private stopPromise: Promise<void> | undefined;
  private readonly signalHandler = (sig: NodeJS.Signals) => {
    log.info({ signal: sig }, "stopping on signal");
    void this.stop().then(() => process.exit(0), () => process.exit(1));
  };

  constructor(private readonly options: ApplicationOptions = {}) {
    this.env = options.env ?? process.env;
    useHostingLogLevel();
    this.app = options.app ?? this.env[ENV.APP];
    this.server = options.server ?? this.env[ENV.SERVER];
    this.communicator = options.communicator ?? new Communicator({ env: this.env, ...(options.registry !== undefined ? { registry: options.registry } : {}) });
    // A hosting process stays up for its servers: its proxies' endpoint lists are kept current between calls.
    this.communicator.keepWatching();
    if (options.shutdownGraceMs !== undefined && !(options.shutdownGraceMs >= 0)) throw new TypeError(`shutdownGraceMs must be >= 0`);
    if (options.metricsPort !== undefined && !(Number.isInteger(options.metricsPort) && options.metricsPort >= 0 && options.metricsPort <= 65535)) {
      throw new TypeError(`metricsPort must be 0-65535, got ${options.metricsPort}`);
    }
    this.config = new ConfigLoader({
      registry: this.communicator.registryAddress() ?? options.registry ?? this.env[ENV.REGISTRY],
      channels: (ep) => this.communicator.channel(ep),
      app: this.app, server: this.server, node: this.env[ENV.NODE],
      confDir: options.confDir ?? this.env[ENV.CONF_DIR],
      token: registryTokenFromEnv(this.env),
    });
    registerBuiltinCommands(this.commands, {
      app: this.app, server: this.server, release: this.env[ENV.VERSION], config: this.config,
      inflight: () => this.inflight(),
      adapters: () => this.adapters(),
      connections: () => ({ incoming: this.connections(), outgoing: this.communicator.connections(), resolution: this.communicator.registry()?.status() ?? [] }),
    });
  }

  /**
   * Registers an admin command answered by this process (over the agent
   * channel, or `runCommand`). The handler gets the argument string and
   * returns text or a JSON-able value; a throw becomes an error reply.
   * Throws TypeError for a bad, taken or reserved (`sgrid.`) name.
   */
  registerCommand(name: string, handler: CommandHandler, help = ""): this {
    this.commands.register(name, handler, help);
    return this;
  }

  /** Runs an admin command in process. Never throws. */
  runCommand(name: string, args = ""): Promise<CommandReply> {
    return this.commands.run(name, args);
  }

  /** The agent channel, when SGRID_AGENT is set and the application started. */
  get agentChannel(): AgentChannel | undefined {
    return this.agentChannelNow;
  }

  /** The metrics endpoint, when enabled and started. */
  get metrics(): MetricsServer | undefined {
    return this.metricsServer;
  }

  private openAgentChannel(): void {
    this.agentChannelNow = agentChannelFromEnv(this.env, { agent: this.options.agent, version: frameworkVersion(), channels: (ep) => this.communicator.channel(ep), commands: this.commands });
  }

  private metricsPort(): number | undefined {
    return this.options.metricsPort ?? metricsPortFromEnv(this.env);
  }

  /** Full Obj name (`App.Server.Obj`) when app and server are known. */
  fullObjName(obj: string): string {
    if (obj.split(".").length === 3) return obj;
    return this.app && this.server ? `${this.app}.${this.server}.${obj}` : obj;
  }

  /** Adds a servant as an Obj. Call before start(). */
  addServant(obj: string, servant: Servant): this {
    if (this.state !== "new") throw new TypeError("addServant must be called before start()");
    if (!/^[A-Za-z_][\w.-]*$/.test(obj)) throw new TypeError(`bad Obj name "${obj}"`);
    if (this.servants.has(obj)) throw new TypeError(`Obj ${obj} is already added`);
    this.servants.set(obj, servant);
    return this;
  }

  private addressesFor(obj: string): string[] {
    const full = this.fullObjName(obj);
    const short = full.split(".").pop()!;
    const pick = (map: Record<string, string | string[]> | undefined) => {
      const v = map?.[full] ?? map?.[obj] ?? map?.[short];
      return v === undefined ? undefined : (Array.isArray(v) ? v : [v]);
    };
    const fromOptions = pick(this.options.adapters);
    if (fromOptions) return fromOptions;
    const raw = this.env[ENV.ADAPTERS];
    if (raw) {
      let parsed: Record<string, string | string[]>;
      try { parsed = JSON.parse(raw) as Record<string, string | string[]>; } catch (err) {
        throw new ConfigError(`SGRID_ADAPTERS is not valid JSON: ${(err as Error).message}`);
      }
      const v = pick(parsed);
      if (v) return v;
    }
    if (this.servants.size === 1 && this.env[ENV.TARGET_PORT]) {
      return [`${this.env[ENV.TARGET_HOST] ?? "0.0.0.0"}:${this.env[ENV.TARGET_PORT]}`];
    }
    throw new ConfigError(`no adapter for Obj ${full}: pass options.adapters, or set SGRID_ADAPTERS (or SGRID_TARGET_PORT for a single Obj)`);
  }

  /** Binds every adapter and starts serving. Rejects (and closes what it opened) if any adapter fails. */
  async start(): Promise<void> {
    if (this.state !== "new") throw new TypeError(`start() called twice`);
    if (this.servants.size === 0) throw new TypeError("no servant added: call addServant(obj, servant) first");
    this.state = "starting";
    const metricsPort = this.metricsPort();
    this.openAgentChannel();
    // Group Objs by listening address: Objs sharing an address share one server.
    const groups = new Map<string, { ep: Endpoint; objs: string[] }>();
    for (const obj of this.servants.keys()) {
      for (const addr of this.addressesFor(obj)) {
        let ep: Endpoint;
        try { ep = parseHostPort(addr, "grpc", true); } catch (err) {
          throw new EndpointParseError(`adapter of ${this.fullObjName(obj)}: ${(err as Error).message}`);
        }
        const key = endpointKey(ep);
        const g = groups.get(key) ?? { ep, objs: [] };
        g.objs.push(obj);
        groups.set(key, g);
      }
    }
    // The process-wide server stats are keyed by Obj name: an Application starting an Obj counts its calls from
    // zero, not on top of those of an Application that served the same Obj in this process before (and stopped).
    for (const obj of this.servants.keys()) serverStats.drop(this.fullObjName(obj));
    try {
      for (const [key, { ep, objs }] of groups) {
        const transport = resolveServer(ep.protocol).createServer(this.options.transportOptions?.[ep.protocol]);
        for (const obj of objs) {
          const servant = this.servants.get(obj)!;
          // Stats objects looked up once per method, not per call.
          const fullName = this.fullObjName(obj);
          const perMethod = new Map<string, MethodStats>();
          transport.addService(bindServant(servant, {
            onCallEnd: (method, startedAt, error) => {
              let stats = perMethod.get(method);
              if (!stats) { stats = serverStats.get(fullName, method); perMethod.set(method, stats); }
              stats.record(performance.now() - startedAt, error);
            },
          }));
          this.health.set(servant.$service.fullName, ServingStatus.SERVING);
          this.health.set(this.fullObjName(obj), ServingStatus.SERVING);
        }
        transport.addService(bindServant(this.health, undefined, { trace: false }));
        // On native adapters too: how a gateway (and the registry's service map) learns a native-only Obj's methods and their kinds.
        if (this.options.reflection ?? APPLICATION_DEFAULTS.reflection) {
          const hosted = [...objs.map((o) => this.servants.get(o)!.$service), this.health.$service];
          for (const r of reflectionServants(hosted)) transport.addService(bindServant(r, undefined, { trace: false }));
        }
        this.transports.set(key, transport);
        const port = await transport.listen(ep.host, ep.port);
        for (const obj of objs) this.bound.push({ obj: this.fullObjName(obj), endpoint: { ...ep, port } });
        log.info({ objs: objs.map((o) => this.fullObjName(o)), protocol: ep.protocol, host: ep.host, port }, "adapter listening");
      }
      if (metricsPort !== undefined) this.metricsServer = await startMetricsServer({ port: metricsPort, host: this.env[ENV.METRICS_HOST] || undefined });
    } catch (err) {
      await this.closeTransports(0);
      this.agentChannelNow?.close();
      await this.metricsServer?.close();
      this.state = "stopped";
      throw err;
    }
    this.agentChannelNow?.ready([...new Set(this.bound.map((b) => b.obj))]);
    this.health.set("", ServingStatus.SERVING);
    if (this.options.handleSignals ?? APPLICATION_DEFAULTS.handleSignals) {
      process.once("SIGTERM", this.signalHandler);
      process.once("SIGINT", this.signalHandler);
    }
    this.state = "running";
  }

  /** Where each Obj is listening (ports resolved when 0 was asked). */
  adapters(): readonly BoundAdapter[] {
    return this.bound;
  }

  /** Calls in flight across all adapters. */
  inflight(): number {
    let n = 0;
    for (const t of this.transports.values()) n += t.inflight();
    return n;
  }

  /** Incoming connections on every adapter. */
  connections(): Array<{ peer: string; protocol: string; since: number }> {
    return [...this.transports.values()].flatMap((t) => t.connections());
  }

  private async closeTransports(graceMs: number): Promise<void> {
    await Promise.all([...this.transports.values()].map((t) => t.shutdown(graceMs)));
  }

  /** Stops accepting, waits for in-flight calls up to the grace period, closes proxies. Idempotent. */
  stop(graceMs = this.options.shutdownGraceMs ?? APPLICATION_DEFAULTS.shutdownGraceMs): Promise<void> {
    this.stopPromise ??= (async () => {
      this.state = "stopping";
      process.removeListener("SIGTERM", this.signalHandler);
      process.removeListener("SIGINT", this.signalHandler);
      this.health.setAll(ServingStatus.NOT_SERVING);
      await this.closeTransports(graceMs);
      this.agentChannelNow?.close();
      await this.metricsServer?.close();
      this.communicator.close();
      this.state = "stopped";
      log.info("stopped");
    })();
    return this.stopPromise;
  }
}
