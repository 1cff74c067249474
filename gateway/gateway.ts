/**
 * The gateway process, assembled: the registry's service map (plus the fixed
 * Objs of the routes file), the forwarder, and the gRPC front; routes from a
 * local file or from the config center (`gateway.yaml` of this server),
 * reloaded on reloadRoutes() (SIGHUP in `sgrid gateway`) and, for the config
 * center, on push or every `routesPollMs` — a change applies to the next
 * call, and open connections are never dropped. A routes file that does not
 * pass the schema is refused (CONFIG_INVALID naming the field) and the routes
 * in use stay.
 *
 * Deployed by a node agent (SGRID_AGENT, SGRID_INSTANCE_ID,
 * SGRID_AGENT_TOKEN) the gateway is an ordinary Sgrid server on the local
 * agent channel: it reports its Obj ready once listening, sends each
 * route's calls with its keepalives (the service monitor), and answers the
 * built-in admin commands — `sgrid.loadconfig gateway.yaml` is what a config
 * push sends, so a pushed routes file applies at once (no poll then by
 * default) — plus its own:
 *
 * | command | reply |
 * |---|---|
 * | `gateway.routes` | the routes in use: version, each route's service, Obj, auth kind (never a token), limits (JSON) |
 * | `gateway.stats` | per route calls, errors by code and latency, gRPC and HTTP fronts (JSON) |
 * | `gateway.services` | the registry's service -> Obj map as the gateway knows it (JSON) |
 * | `gateway.reload` | reads the routes again now, as SIGHUP does |
 */
import * as fs from "node:fs";
import { Communicator, ConfigError, ConfigLoader, getLogger, startMetricsServer, type MetricsServer } from "sgridnext";
import { agentChannelFromEnv, type AgentChannel } from "sgridnext/internal/agent/agent-channel";
import { metricsPortFromEnv } from "sgridnext/internal/metrics";
import { registerBuiltinCommands } from "sgridnext/internal/agent/builtin-commands";
import { CommandRegistry } from "sgridnext/internal/agent/commands";
import { frameworkVersion } from "sgridnext/internal/agent/version";
import { registryTokenFromEnv } from "sgridnext/internal/discovery/registry-client";
import { ChainedServiceResolver, Forwarder, StaticServiceResolver, type ServiceResolver } from "./forwarder";
import { GrpcFront } from "./grpc-front";
import { HttpFront } from "./http-front";
import { RegistryServiceResolver } from "./registry-services";
import { RateLimiter } from "./rate-limit";
import { parseRoutes, routesFrom, Routes, type RouteRule } from "./routes";

const log = getLogger("gateway");

export const GATEWAY_DEFAULTS = Object.freeze({ listen: "0.0.0.0:9600", routesPollMs: 5000 });

export interface GatewayOptions {
  /** gRPC address to serve, `host:port`. */
  listen: string;
  /** HTTP address (JSON, gRPC-Web, /metrics; gateway/http-front.ts), `host:port`; none when unset. */
  httpListen?: string;
  /** Registry endpoints (`host:port,...`); without one only the routes file's fixed Objs are served. */
  registry?: string;
  /** A local routes file (YAML/JSON). */
  routesFile?: string;
  /** A config-center file name (e.g. `gateway.yaml`) of `app`.`server`; needs `registry`. */
  configFile?: string;
  app?: string;
  server?: string;
  /** Poll of the config-center file, ms. Default 5000, or 0 (pushes only) on an agent channel; 0 turns it off. */
  routesPollMs?: number;
  /** See GrpcFront. */
  stallTimeoutMs?: number;
  /** The local agent's address; default SGRID_AGENT ("" = no agent channel). */
  agent?: string;
  /** Serve Prometheus `/metrics` (per route calls, errors, latency; process metrics) on this port, 0 = any. Default SGRID_METRICS_PORT; unset = off (the HTTP front serves /metrics too). */
  metricsPort?: number;
  /** The Obj this gateway serves as (for the agent's ready report). Default `<app>.<server>.GatewayObj`. */
  obj?: string;
  env?: NodeJS.ProcessEnv;
}

/** A route as `gateway.routes` shows it: the auth kind and token count, never a token. */
function describeRoute(r: RouteRule): Record<string, unknown> {
  return {
    service: r.service, ...(r.obj ? { obj: r.obj } : {}),
    auth: r.auth === "none" ? "none" : `bearer (${r.auth.bearer.length} token${r.auth.bearer.length === 1 ? "" : "s"})`,
    maxMessageBytes: r.maxMessageBytes, bodyIdleTimeoutMs: r.bodyIdleTimeoutMs,
    ...(r.rateLimit ? { rateLimit: r.rateLimit } : {}), ...(r.cors ? { cors: r.cors } : {}),
  };
}

/** `host:port` (port 0: any free port; `[v6]:port`) -> parts; CONFIG_INVALID naming the address otherwise. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:]+)):(\d{1,5})$/.exec(listen.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ConfigError(`listen address "${listen}" is not host:port (port 0-65535)`, { field: "listen" });
  return { host: m[1] ?? m[2]!, port };
}

/** The gateway's routes resolver: a routes file's fixed Objs first (swapped on reload), then the registry. */
class FixedObjs implements ServiceResolver {
  table = new StaticServiceResolver({});
  private readonly listeners = new Set<(s: readonly string[]) => void>();
  set(routes: Routes): void {
    this.table = new StaticServiceResolver(routes.fixedObjs());
    const all = routes.all().map((r) => r.service);
    for (const l of this.listeners) l(all);
  }
  find(service: string): Promise<string | undefined> {
    return this.table.find(service);
  }
  onChange(listener: (s: readonly string[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

export class Gateway {
  readonly communicator: Communicator;
  readonly forwarder: Forwarder;
  readonly front: GrpcFront;
  /** The HTTP front, when `httpListen` is set. */
  readonly http: HttpFront | undefined;
  private readonly fixed = new FixedObjs();
  private readonly registryServices: RegistryServiceResolver | undefined;
  /** Config files of this server (the routes' file when `configFile` is set). */
  readonly config: ConfigLoader;
  /** Admin commands answered over the agent channel (or runCommand). */
  readonly commands = new CommandRegistry();
  private agentChannelNow: AgentChannel | undefined;
  private metricsServer: MetricsServer | undefined;
  private readonly env: NodeJS.ProcessEnv;
  private pollTimer: NodeJS.Timeout | undefined;
  private port = 0;
  private httpPort = 0;

  constructor(private readonly options: GatewayOptions) {
    const env = options.env ?? process.env;
    this.env = env;
    if (options.configFile && !options.registry) throw new ConfigError("--config needs a registry (--registry or SGRID_REGISTRY): the config center is the registry's");
    if (options.configFile && options.routesFile) throw new ConfigError("--routes and --config are two sources of the routes: give one");
    parseListen(options.listen);
    if (options.httpListen !== undefined) parseListen(options.httpListen);
    this.communicator = new Communicator({ registry: options.registry ?? "", env, keepWatching: true });
    const token = registryTokenFromEnv(env);
    this.registryServices = options.registry ? new RegistryServiceResolver({ registry: options.registry, communicator: this.communicator, token }) : undefined;
    const services = new ChainedServiceResolver(this.registryServices ? [this.fixed, this.registryServices] : [this.fixed]);
    this.forwarder = new Forwarder({ communicator: this.communicator, services });
    // One limiter for both fronts: a client's rate is the same over gRPC and HTTP.
    const limiter = new RateLimiter();
    this.front = new GrpcFront({ forwarder: this.forwarder, stallTimeoutMs: options.stallTimeoutMs, limiter });
    // REST paths (google.api.http) are looked up in every service the gateway can reach.
    const known = (): string[] => [...Object.keys(this.registryServices?.snapshot() ?? {}), ...this.fixed.table.services()];
    this.http = options.httpListen !== undefined ? new HttpFront({ forwarder: this.forwarder, communicator: this.communicator, limiter, services: known }) : undefined;
    this.config = new ConfigLoader({
      registry: options.registry, channels: (ep) => this.communicator.channel(ep),
      app: options.app ?? env.SGRID_APP, server: options.server ?? env.SGRID_SERVER, node: env.SGRID_NODE,
      confDir: env.SGRID_CONF_DIR, token,
    });
    const file = options.configFile;
    if (file) {
      // A pushed routes file is checked before it is taken: one that does not pass is refused, the routes in use stay.
      this.config.validate(file, (value) => routesFrom(value ?? {}, "", file));
      this.config.on("change", (c) => {
        if (c.file === file && c.current.version !== this.routes().version) this.apply(routesFrom(c.current.value ?? {}, c.current.version, file));
      });
    }
    this.registerCommands();
  }

  private registerCommands(): void {
    const app = this.options.app ?? this.env.SGRID_APP;
    const server = this.options.server ?? this.env.SGRID_SERVER;
    registerBuiltinCommands(this.commands, {
      app, server, release: this.env.SGRID_VERSION, config: this.config,
      inflight: () => this.front.inflight(),
      adapters: () => this.port ? [{ obj: this.objName(), endpoint: { ...parseListen(this.options.listen), port: this.port, protocol: "grpc" } }] : [],
      connections: () => ({ outgoing: this.communicator.connections(), resolution: this.communicator.registry()?.status() ?? [] }),
    });
    this.commands.register("gateway.routes", () => {
      const r = this.routes();
      return { version: r.version, restricted: r.restricted, routes: r.all().map(describeRoute), ...(r.restricted ? {} : { default: describeRoute(r.match("*")!) }) };
    }, "the routes in use: services, Objs, auth kinds, limits");
    this.commands.register("gateway.stats", () => ({ grpc: this.forwarder.stats.toJSON(), http: this.http?.stats.toJSON() ?? {} }), "per route calls, errors by code, latency");
    this.commands.register("gateway.services", () => this.registryServices?.snapshot() ?? {}, "the service -> Obj map from the registry");
    this.commands.register("gateway.reload", async () => {
      const r = await this.reloadRoutes();
      return r.changed ? `routes ${r.version || "(unversioned)"} applied` : `routes ${r.version || "(unversioned)"} unchanged`;
    }, "read the routes again now (as SIGHUP)");
  }

  /** The Obj this gateway serves as. */
  objName(): string {
    const app = this.options.app ?? this.env.SGRID_APP;
    const server = this.options.server ?? this.env.SGRID_SERVER;
    return this.options.obj ?? (app && server ? `${app}.${server}.GatewayObj` : "GatewayObj");
  }

  /** The agent channel, when the gateway was started by a node agent. */
  get agentChannel(): AgentChannel | undefined {
    return this.agentChannelNow;
  }

  /** Loads the routes and starts serving; resolves with the bound port. */
  async start(): Promise<number> {
    this.agentChannelNow = agentChannelFromEnv(this.env, { agent: this.options.agent, version: frameworkVersion(), channels: (ep) => this.communicator.channel(ep), commands: this.commands });
    this.apply(await this.readRoutes());
    const { host, port } = parseListen(this.options.listen);
    this.port = await this.front.listen(host, port);
    if (this.http && this.options.httpListen !== undefined) {
      const h = parseListen(this.options.httpListen);
      this.httpPort = await this.http.listen(h.host, h.port);
    }
    const metricsPort = this.options.metricsPort ?? metricsPortFromEnv(this.env);
    if (metricsPort !== undefined) {
      this.metricsServer = await startMetricsServer({ port: metricsPort, host: this.env.SGRID_METRICS_HOST || undefined });
    }
    this.agentChannelNow?.ready([this.objName()]);
    const poll = this.options.routesPollMs ?? (this.agentChannelNow ? 0 : GATEWAY_DEFAULTS.routesPollMs);
    if (this.options.configFile && poll > 0) {
      this.pollTimer = setInterval(() => { this.reloadRoutes().catch((err: unknown) => log.warn({ err: (err as Error).message }, "gateway routes not reloaded; the routes in use stay")); }, poll);
      this.pollTimer.unref?.();
    }
    return this.port;
  }

  get boundPort(): number {
    return this.port;
  }

  /** The /metrics server, when one was asked for. */
  get metrics(): MetricsServer | undefined {
    return this.metricsServer;
  }

  /** The HTTP front's port (0 without one). */
  get boundHttpPort(): number {
    return this.httpPort;
  }

  routes(): Routes {
    return this.front.currentRoutes();
  }

  /** Runs an admin command in process. Never throws. */
  runCommand(name: string, args = ""): ReturnType<CommandRegistry["run"]> {
    return this.commands.run(name, args);
  }

  /** Reads the routes again; applies them when they changed. CONFIG_INVALID (the old routes kept) when they do not pass. */
  async reloadRoutes(): Promise<{ changed: boolean; version: string }> {
    const before = this.routes().version;
    const next = await this.readRoutes(true);
    // From the config center the loader's change event has applied a new version already.
    const changed = next.version !== before || next.version === "";
    if (changed && (next.version === "" || next.version !== this.routes().version)) this.apply(next);
    return { changed, version: next.version };
  }

  private apply(routes: Routes): void {
    this.front.setRoutes(routes);
    this.http?.setRoutes(routes);
    this.fixed.set(routes);
    log.info({ version: routes.version, routes: routes.all().length, restricted: routes.restricted }, "gateway routes applied");
  }

  private async readRoutes(reload = false): Promise<Routes> {
    if (this.options.routesFile) {
      let text: string;
      try {
        text = fs.readFileSync(this.options.routesFile, "utf8");
      } catch (err) {
        throw new ConfigError(`cannot read the routes file ${this.options.routesFile}: ${(err as Error).message}`);
      }
      return parseRoutes(text, "", this.options.routesFile);
    }
    if (this.options.configFile) {
      const file = this.options.configFile;
      const loaded = reload ? (await this.config.reload(file)).current : await this.config.load(file);
      return routesFrom(loaded.value ?? {}, loaded.version, file);
    }
    return new Routes();
  }

  async stop(graceMs = 2000): Promise<void> {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.agentChannelNow?.close();
    await Promise.all([this.front.shutdown(graceMs), this.http?.shutdown(graceMs), this.metricsServer?.close()]);
    this.forwarder.close();
    this.registryServices?.close();
    this.communicator.close();
  }
}
