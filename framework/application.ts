/**
 * Hosts servants: binds each Obj on its adapters (gRPC and/or native),
 * serves grpc.health.v1 everywhere, and shuts down gracefully on SIGTERM /
 * SIGINT (stop accepting, let in-flight calls finish up to a deadline, exit 0).
 *
 * Adapters come from, in order: `options.adapters`, `SGRID_ADAPTERS` (JSON:
 * Obj name, full or short, -> "host:port" | "sgrid://host:port" | an array of
 * those), or `SGRID_TARGET_HOST`/`SGRID_TARGET_PORT` when there is exactly one
 * servant.
 */
import { Communicator } from "./communicator";
import { endpointKey, parseHostPort, type Endpoint } from "./endpoint";
import { ConfigError, EndpointParseError } from "./errors";
import { getLogger } from "./logger";
import { bindServant } from "./servant/dispatch";
import { HealthService, ServingStatus } from "./servant/health-servant";
import type { Servant } from "./servant/servant";
import { serverStats } from "./stats";
import { resolveServer, type ServerTransport } from "./transport";

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
  /** The communicator for outgoing calls; one is created when absent. */
  communicator?: Communicator;
}

export const APPLICATION_DEFAULTS = Object.freeze({ shutdownGraceMs: 8000, handleSignals: true });

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
  private stopPromise: Promise<void> | undefined;
  private readonly signalHandler = (sig: NodeJS.Signals) => {
    log.info({ signal: sig }, "stopping on signal");
    void this.stop().then(() => process.exit(0), () => process.exit(1));
  };

  constructor(private readonly options: ApplicationOptions = {}) {
    this.env = options.env ?? process.env;
    this.app = options.app ?? this.env.SGRID_APP;
    this.server = options.server ?? this.env.SGRID_SERVER;
    this.communicator = options.communicator ?? new Communicator();
    if (options.shutdownGraceMs !== undefined && !(options.shutdownGraceMs >= 0)) throw new TypeError(`shutdownGraceMs must be >= 0`);
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
    const raw = this.env.SGRID_ADAPTERS;
    if (raw) {
      let parsed: Record<string, string | string[]>;
      try { parsed = JSON.parse(raw) as Record<string, string | string[]>; } catch (err) {
        throw new ConfigError(`SGRID_ADAPTERS is not valid JSON: ${(err as Error).message}`);
      }
      const v = pick(parsed);
      if (v) return v;
    }
    if (this.servants.size === 1 && this.env.SGRID_TARGET_PORT) {
      return [`${this.env.SGRID_TARGET_HOST ?? "0.0.0.0"}:${this.env.SGRID_TARGET_PORT}`];
    }
    throw new ConfigError(`no adapter for Obj ${full}: pass options.adapters, or set SGRID_ADAPTERS (or SGRID_TARGET_PORT for a single Obj)`);
  }

  /** Binds every adapter and starts serving. Rejects (and closes what it opened) if any adapter fails. */
  async start(): Promise<void> {
    if (this.state !== "new") throw new TypeError(`start() called twice`);
    if (this.servants.size === 0) throw new TypeError("no servant added: call addServant(obj, servant) first");
    this.state = "starting";
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
    try {
      for (const [key, { ep, objs }] of groups) {
        const transport = resolveServer(ep.protocol).createServer(this.options.transportOptions?.[ep.protocol]);
        for (const obj of objs) {
          const servant = this.servants.get(obj)!;
          transport.addService(bindServant(servant, {
            onCallEnd: (method, startedAt, error) => serverStats.get(this.fullObjName(obj), method).record(performance.now() - startedAt, error),
          }));
          this.health.set(servant.$service.fullName, ServingStatus.SERVING);
          this.health.set(this.fullObjName(obj), ServingStatus.SERVING);
        }
        transport.addService(bindServant(this.health));
        this.transports.set(key, transport);
        const port = await transport.listen(ep.host, ep.port);
        for (const obj of objs) this.bound.push({ obj: this.fullObjName(obj), endpoint: { ...ep, port } });
        log.info({ objs: objs.map((o) => this.fullObjName(o)), protocol: ep.protocol, host: ep.host, port }, "adapter listening");
      }
    } catch (err) {
      await this.closeTransports(0);
      this.state = "stopped";
      throw err;
    }
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
      this.communicator.close();
      this.state = "stopped";
      log.info("stopped");
    })();
    return this.stopPromise;
  }
}
