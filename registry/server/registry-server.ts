/**
 * One registry process: opens (and migrates) the database, builds the shared
 * RegistryContext, builds every part of REGISTRY_PARTS, mounts their servants
 * as `Sgrid.Registry.<Obj>` on one gRPC port (and on a native `sgrid://` port
 * too when `nativeListen` is set), and stops it all gracefully.
 *
 * Lifecycle:
 *
 *   new ──start()──> starting ──ok──> running ──stop()──> stopping ──> stopped
 *                        └──error (everything opened is closed)──> stopped
 *
 * start(): data dir -> store (migrations, race-safe) -> change feed -> auth,
 * storage, session hub -> parts' start() in order -> the port(s) open.
 * stop(): parts' drain() (end long-lived streams) -> port closes (in-flight
 * unary calls finish up to the grace period) -> parts' stop() in reverse ->
 * hub, auth, change feed -> store closes.
 *
 * The registry is stateless over its database: several processes may serve
 * one MySQL database; each notices the others' writes through the change feed.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Application, ConfigError, formatHostPort, getLogger, type Logger, type Servant } from "sgridnext";
import { createAuthenticator, type RegistryAuthenticator } from "../admin";
import { NodeSessionHub } from "../node";
import { DatabaseStorage, importDiskPackages } from "../services";
import { openStore, type KnexStore } from "../store";
import { PollingChangeFeed } from "./change-feed";
import type { RegistryContext, RegistrySettings } from "./context";
import { describeOptions, resolveRegistryOptions, type RegistryServerOptions, type ResolvedRegistryOptions } from "./options";
import { REGISTRY_PARTS, type RegistryPart } from "./parts";

/** Application and server name of the registry's own Objs: `Sgrid.Registry.QueryObj`... */
export const REGISTRY_APP = "Sgrid";
export const REGISTRY_SERVER = "Registry";

/** Full Obj name of a registry servant. */
export function registryObj(short: string): string {
  return `${REGISTRY_APP}.${REGISTRY_SERVER}.${short}`;
}

/** Where a started registry serves. */
export interface RegistryAddress {
  host: string;
  port: number;
  /** `host:port` as bound (`0.0.0.0:9500`). */
  address: string;
  /** What agents and servants are told (SGRID_REGISTRY). */
  advertise: string;
  tls: boolean;
  /** The native port as bound, `sgrid://host:port` (`sgrids://` with TLS), when one is configured (`nativeListen`). */
  native?: string;
}

/** The advertised address when none is configured: the bound port on a reachable host. */
function defaultAdvertise(host: string, port: number): string {
  if (host !== "0.0.0.0" && host !== "::" && host !== "") return formatHostPort(host, port);
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return `${a.address}:${port}`;
  }
  return `127.0.0.1:${port}`;
}

/**
 * With TLS on, every advertised endpoint without a scheme gets `grpcs://`:
 * agents and servants take the advertised list as SGRID_REGISTRY and must
 * dial it over TLS.
 */
function withScheme(advertise: string, tls: boolean): string {
  if (!tls) return advertise;
  return advertise.split(",").map((e) => e.trim()).filter(Boolean).map((e) => (e.includes("://") ? e : `grpcs://${e}`)).join(",");
}

function readPem(v: string | Buffer, what: string): Buffer {
  if (Buffer.isBuffer(v)) return v;
  try {
    return fs.readFileSync(v);
  } catch (err) {
    throw new ConfigError(`cannot read TLS ${what} ${v}: ${(err as Error).message}`, { file: v });
  }
}

export class RegistryServer {
  readonly options: Readonly<ResolvedRegistryOptions>;
  private readonly log: Logger;
  private state: "new" | "starting" | "running" | "stopping" | "stopped" = "new";
  private app: Application | undefined;
  private storeRef: KnexStore | undefined;
  private feed: PollingChangeFeed | undefined;
  private auth: RegistryAuthenticator | undefined;
  private hub: NodeSessionHub | undefined;
  private ctx: RegistryContext | undefined;
  private readonly builtParts: Array<{ name: string; part: RegistryPart }> = [];
  private startedParts: Array<{ name: string; part: RegistryPart }> = [];
  private bound: RegistryAddress | undefined;
  private stopPromise: Promise<void> | undefined;

  /** Validates the options at once (ConfigError naming the bad one); opens nothing until start(). */
  constructor(options: RegistryServerOptions = {}) {
    this.options = resolveRegistryOptions(options);
    this.log = getLogger("registry");
  }

  /** The shared context (after start()). */
  get context(): RegistryContext {
    if (!this.ctx) throw new TypeError("RegistryServer.context is available after start()");
    return this.ctx;
  }

  /** The store (after start()). */
  get store(): KnexStore {
    if (!this.storeRef) throw new TypeError("RegistryServer.store is available after start()");
    return this.storeRef;
  }

  /** The change feed (after start()). */
  get changes(): PollingChangeFeed {
    if (!this.feed) throw new TypeError("RegistryServer.changes is available after start()");
    return this.feed;
  }

  /** A built part by name (after start()), e.g. `query`. */
  part<T = RegistryPart>(name: string): T | undefined {
    return this.builtParts.find((p) => p.name === name)?.part as T | undefined;
  }

  /** Where it serves (after start()). */
  get address(): RegistryAddress {
    if (!this.bound) throw new TypeError("RegistryServer.address is available after start()");
    return this.bound;
  }

  /**
   * Opens the database, starts every part and the port. Rejects (closing
   * whatever it opened) with: DatabaseUrlError, DatabaseUnavailableError
   * (naming the URL without its password), MigrationLockedError /
   * MigrationFailedError, BindError (port in use), or a part's error.
   */
  async start(): Promise<RegistryAddress> {
    if (this.state !== "new") throw new TypeError("RegistryServer.start() can be called once");
    this.state = "starting";
    const o = this.options;
    try {
      fs.mkdirSync(o.dataDir, { recursive: true });
      this.storeRef = await openStore(o.db, { poolMax: o.dbPoolMax });
      const store = this.storeRef;
      this.log.info(describeOptions(o, store.safeUrl), "registry starting");

      this.feed = new PollingChangeFeed(store, { intervalMs: o.changePollMs, log: this.log.child({ part: "changes" }) });
      await this.feed.start();

      const listenHost = o.listen.host;
      // The port is not known before it is bound; the advertised address is
      // completed in place once it is (parts read settings at call time).
      const settings: RegistrySettings = {
        advertise: withScheme(o.advertise ?? defaultAdvertise(listenHost, o.listen.port), o.tls !== undefined),
        heartbeatIntervalMs: o.heartbeatIntervalMs,
        heartbeatTimeoutMs: o.heartbeatTimeoutMs,
        maxPatchBytes: o.maxPatchBytes,
        batchTimeoutMs: o.batchTimeoutMs,
        taskSettleMs: o.taskSettleMs,
        placementGraceMs: o.placementGraceMs,
        processId: o.processId,
      };
      this.auth = createAuthenticator({
        store, settings, log: this.log.child({ part: "auth" }),
        clusterToken: o.clusterToken, queryToken: o.queryToken, adminAppToken: o.adminAppToken, adminPassword: o.adminPassword,
      });
      await this.auth.init();
      // Started by the node part; closed here last (idempotent).
      this.hub = new NodeSessionHub({ store, changes: this.feed, settings, log: this.log.child({ part: "node" }) });
      const storage = new DatabaseStorage(store);
      // Packages an older registry kept in <data-dir>/packages move into the database once.
      await importDiskPackages(storage, path.join(o.dataDir, "packages"), this.log.child({ part: "patch" }));
      this.ctx = {
        store,
        settings,
        changes: this.feed,
        sessions: this.hub,
        storage,
        auth: this.auth,
        log: this.log,
      };

      const servants = new Map<string, Servant>();
      for (const [name, factory] of Object.entries(REGISTRY_PARTS)) {
        const part = factory(this.ctx);
        this.builtParts.push({ name, part });
        for (const [obj, servant] of Object.entries(part.servants ?? {})) {
          const full = registryObj(obj);
          if (servants.has(full)) throw new TypeError(`registry part "${name}" serves ${full}, which another part serves already`);
          servants.set(full, servant);
        }
      }
      for (const entry of this.builtParts) {
        await entry.part.start?.();
        this.startedParts.push(entry);
      }

      const listen = formatHostPort(listenHost, o.listen.port);
      const tls = o.tls ? { cert: readPem(o.tls.cert, "certificate"), key: readPem(o.tls.key, "key") } : undefined;
      // The native port serves every Obj the gRPC port does, with the same certificate: a
      // servant's ctx (metadata, peer, signal) is the same on both, and so are the tokens' checks.
      const native = o.nativeListen && `sgrid://${formatHostPort(o.nativeListen.host, o.nativeListen.port)}`;
      this.app = new Application({
        app: REGISTRY_APP,
        server: REGISTRY_SERVER,
        adapters: Object.fromEntries([...servants.keys()].map((obj) => [obj, native ? [listen, native] : listen])),
        handleSignals: false,
        shutdownGraceMs: o.shutdownGraceMs,
        transportOptions: tls ? { grpc: { tls }, sgrid: { tls } } : undefined,
      });
      for (const [obj, servant] of servants) this.app.addServant(obj, servant);
      await this.app.start();
      const bound = (protocol: "grpc" | "sgrid") => this.app!.adapters().find((a) => a.endpoint.protocol === protocol)!.endpoint.port;
      const port = bound("grpc");
      if (o.advertise === undefined) settings.advertise = withScheme(defaultAdvertise(listenHost, port), tls !== undefined);
      this.bound = {
        host: listenHost,
        port,
        address: formatHostPort(listenHost, port),
        advertise: settings.advertise,
        tls: tls !== undefined,
        ...(o.nativeListen ? { native: `sgrid${tls ? "s" : ""}://${formatHostPort(o.nativeListen.host, bound("sgrid"))}` } : {}),
      };
      this.state = "running";
      this.log.info({ address: this.bound.address, native: this.bound.native, advertise: this.bound.advertise, tls: this.bound.tls, objs: [...servants.keys()], processId: o.processId }, "registry serving");
      return this.bound;
    } catch (err) {
      await this.teardown(0).catch((e) => this.log.warn({ err: e }, "cleanup after a failed start failed"));
      this.state = "stopped";
      throw err;
    }
  }

  /** Stops gracefully (see the file comment). Idempotent; never rejects. */
  stop(graceMs = this.options.shutdownGraceMs): Promise<void> {
    this.stopPromise ??= (async () => {
      if (this.state === "new") {
        this.state = "stopped";
        return;
      }
      this.state = "stopping";
      await this.teardown(graceMs);
      this.state = "stopped";
      this.log.info("registry stopped");
    })();
    return this.stopPromise;
  }

  private async teardown(graceMs: number): Promise<void> {
    const safe = async (what: string, fn: () => unknown) => {
      try {
        await fn();
      } catch (err) {
        this.log.warn({ err, step: what }, "error while stopping the registry");
      }
    };
    for (const { name, part } of this.startedParts) if (part.drain) await safe(`drain ${name}`, () => part.drain!());
    if (this.app) await safe("close port", () => this.app!.stop(graceMs));
    for (const { name, part } of [...this.startedParts].reverse()) if (part.stop) await safe(`stop ${name}`, () => part.stop!());
    this.startedParts = [];
    if (this.hub) await safe("close session hub", () => this.hub!.close());
    if (this.auth) await safe("close auth", () => this.auth!.close());
    if (this.feed) await safe("stop change feed", () => this.feed!.stop());
    if (this.storeRef) await safe("close store", () => this.storeRef!.close());
  }
}
