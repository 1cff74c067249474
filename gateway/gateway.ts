/**
 * The gateway process, assembled: the registry's service map (plus the fixed
 * Objs of the routes file), the forwarder, and the gRPC front; routes from a
 * local file or from the config center (`gateway.yaml` of this server),
 * reloaded on reloadRoutes() (SIGHUP in `sgrid gateway`) and, for the config
 * center, every `routesPollMs` — a pushed change applies to the next call, and
 * open connections are never dropped. A routes file that does not pass the
 * schema is refused (CONFIG_INVALID naming the field) and the routes in use
 * stay.
 */
import * as fs from "node:fs";
import { Communicator, ConfigError, ConfigLoader, getLogger } from "sgridnext";
import { registryTokenFromEnv } from "sgridnext/internal/discovery/registry-client";
import { ChainedServiceResolver, Forwarder, StaticServiceResolver, type ServiceResolver } from "./forwarder";
import { GrpcFront } from "./grpc-front";
import { HttpFront } from "./http-front";
import { RegistryServiceResolver } from "./registry-services";
import { parseRoutes, routesFrom, Routes } from "./routes";

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
  /** Poll of the config-center file, ms. Default 5000; 0 turns it off. */
  routesPollMs?: number;
  /** See GrpcFront. */
  stallTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
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
  private readonly config: ConfigLoader | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private port = 0;
  private httpPort = 0;

  constructor(private readonly options: GatewayOptions) {
    const env = options.env ?? process.env;
    if (options.configFile && !options.registry) throw new ConfigError("--config needs a registry (--registry or SGRID_REGISTRY): the config center is the registry's");
    if (options.configFile && options.routesFile) throw new ConfigError("--routes and --config are two sources of the routes: give one");
    parseListen(options.listen);
    if (options.httpListen !== undefined) parseListen(options.httpListen);
    this.communicator = new Communicator({ registry: options.registry ?? "", env, keepWatching: true });
    const token = registryTokenFromEnv(env);
    this.registryServices = options.registry ? new RegistryServiceResolver({ registry: options.registry, communicator: this.communicator, token }) : undefined;
    const services = new ChainedServiceResolver(this.registryServices ? [this.fixed, this.registryServices] : [this.fixed]);
    this.forwarder = new Forwarder({ communicator: this.communicator, services });
    this.front = new GrpcFront({ forwarder: this.forwarder, stallTimeoutMs: options.stallTimeoutMs });
    this.http = options.httpListen !== undefined ? new HttpFront({ forwarder: this.forwarder, communicator: this.communicator }) : undefined;
    if (options.configFile) {
      this.config = new ConfigLoader({
        registry: options.registry, channels: (ep) => this.communicator.channel(ep),
        app: options.app ?? env.SGRID_APP, server: options.server ?? env.SGRID_SERVER, node: env.SGRID_NODE,
        confDir: env.SGRID_CONF_DIR, token,
      });
    }
  }

  /** Loads the routes and starts serving; resolves with the bound port. */
  async start(): Promise<number> {
    this.apply(await this.readRoutes());
    const { host, port } = parseListen(this.options.listen);
    this.port = await this.front.listen(host, port);
    if (this.http && this.options.httpListen !== undefined) {
      const h = parseListen(this.options.httpListen);
      this.httpPort = await this.http.listen(h.host, h.port);
    }
    const poll = this.options.routesPollMs ?? GATEWAY_DEFAULTS.routesPollMs;
    if (this.config && poll > 0) {
      this.pollTimer = setInterval(() => { this.reloadRoutes().catch((err: unknown) => log.warn({ err: (err as Error).message }, "gateway routes not reloaded; the routes in use stay")); }, poll);
      this.pollTimer.unref?.();
    }
    return this.port;
  }

  get boundPort(): number {
    return this.port;
  }

  /** The HTTP front's port (0 without one). */
  get boundHttpPort(): number {
    return this.httpPort;
  }

  routes(): Routes {
    return this.front.currentRoutes();
  }

  /** Reads the routes again; applies them when they changed. CONFIG_INVALID (the old routes kept) when they do not pass. */
  async reloadRoutes(): Promise<{ changed: boolean; version: string }> {
    const next = await this.readRoutes(true);
    const changed = next.version !== this.routes().version || next.version === "";
    if (changed) this.apply(next);
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
    if (this.config && this.options.configFile) {
      const file = this.options.configFile;
      const loaded = reload ? (await this.config.reload(file)).current : await this.config.load(file);
      return routesFrom(loaded.value ?? {}, loaded.version, file);
    }
    return new Routes();
  }

  async stop(graceMs = 2000): Promise<void> {
    if (this.pollTimer) clearInterval(this.pollTimer);
    await Promise.all([this.front.shutdown(graceMs), this.http?.shutdown(graceMs)]);
    this.forwarder.close();
    this.registryServices?.close();
    this.communicator.close();
  }
}
