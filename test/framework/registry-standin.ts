/**
 * A registry stand-in for framework tests: the generated Query and Config
 * servants, implemented over in-memory maps and served on a real loopback
 * gRPC port by a real Application. Lets a test change an Obj's endpoints or
 * push a config version and observe what proxies and config loaders do.
 * (The real RegistryServer is used where it is available; see the tests.)
 */
import { EventEmitter, once } from "node:events";
import { Application, NotFoundError, UnimplementedError, type DeepPartial, type ServerContext } from "sgridnext";
import { QueryServant } from "sgridnext/gen/sgrid/registry/v1/query.sgrid";
import { ConfigServant } from "sgridnext/gen/sgrid/registry/v1/config.sgrid";
import type { FindObjectReply, FindObjectRequest, FindServiceReply, ServiceMap } from "sgridnext/gen/sgrid/registry/v1/query";
import type { ConfigVersion, HistoryReply, ListFilesReply, LoadConfigReply, LoadConfigRequest } from "sgridnext/gen/sgrid/registry/v1/config";
import type { Endpoint as RegistryEndpoint } from "sgridnext/gen/sgrid/registry/v1/types";

export interface StandInEndpoint {
  host?: string;
  port: number;
  protocol?: string;
  weight?: number;
  node?: string;
}

export class StandInQuery extends QueryServant {
  private readonly objs = new Map<string, RegistryEndpoint[]>();
  private readonly changes = new EventEmitter();
  revision = 1;
  findCalls = 0;
  watchCalls = 0;
  openWatches = 0;
  /** When true, open watches send nothing more (a watch stuck without breaking). New watches still answer. */
  frozen = false;

  constructor() {
    super();
    this.changes.setMaxListeners(0);
  }

  /** Sets the active endpoints of an Obj, and the inactive ones with their reasons (watchers see it at once). */
  set(obj: string, endpoints: StandInEndpoint[], inactive: Array<StandInEndpoint & { reason: string }> = []): void {
    const wire = (e: StandInEndpoint, reason: string): RegistryEndpoint => ({
      obj, host: e.host ?? "127.0.0.1", port: e.port, protocol: e.protocol ?? "grpc", weight: e.weight ?? 100,
      node: e.node ?? "node1", instanceId: 0, active: reason === "", inactiveReason: reason,
    });
    this.objs.set(obj, [...endpoints.map((e) => wire(e, "")), ...inactive.map((e) => wire(e, e.reason))]);
    this.revision++;
    this.changes.emit("change");
  }

  private reply(obj: string): DeepPartial<FindObjectReply> {
    const all = this.objs.get(obj);
    if (!all) throw new NotFoundError(`unknown Obj ${obj}`);
    return { obj, active: all.filter((e) => e.active), inactive: all.filter((e) => !e.active), revision: this.revision };
  }

  async findObject(request: FindObjectRequest): Promise<DeepPartial<FindObjectReply>> {
    this.findCalls++;
    return this.reply(request.obj);
  }

  async *watchObject(request: FindObjectRequest, ctx: ServerContext): AsyncIterable<DeepPartial<FindObjectReply>> {
    this.watchCalls++;
    this.openWatches++;
    try {
      let sent = -1;
      while (!ctx.signal.aborted) {
        if (sent !== this.revision && !(this.frozen && sent !== -1)) {
          sent = this.revision;
          yield this.reply(request.obj);
        }
        try { await once(this.changes, "change", { signal: ctx.signal }); } catch { return; }
      }
    } finally {
      this.openWatches--;
    }
  }

  async findService(): Promise<DeepPartial<FindServiceReply>> {
    throw new UnimplementedError("the stand-in registry keeps no service map");
  }

  // eslint-disable-next-line require-yield
  async *watchServices(): AsyncIterable<DeepPartial<ServiceMap>> {
    throw new UnimplementedError("the stand-in registry keeps no service map");
  }
}

export class StandInConfig extends ConfigServant {
  /** file -> merged content and version. */
  readonly files = new Map<string, { content: string; version: string }>();
  loads: LoadConfigRequest[] = [];

  /** file -> the error Load answers with (as the registry does for levels that do not merge). */
  readonly failing = new Map<string, Error>();

  push(file: string, content: string, version: string): void {
    this.files.set(file, { content, version });
  }

  async load(request: LoadConfigRequest): Promise<DeepPartial<LoadConfigReply>> {
    this.loads.push(request);
    const failure = this.failing.get(request.fileName);
    if (failure) throw failure;
    const f = this.files.get(request.fileName);
    if (!f) throw new NotFoundError(`no config file ${request.fileName} for ${request.instance?.application}.${request.instance?.server}`);
    return { fileName: request.fileName, content: f.content, version: f.version, layers: [] };
  }

  async listFiles(): Promise<DeepPartial<ListFilesReply>> { throw new UnimplementedError("stand-in"); }
  async history(): Promise<DeepPartial<HistoryReply>> { throw new UnimplementedError("stand-in"); }
  async getVersion(): Promise<DeepPartial<ConfigVersion>> { throw new UnimplementedError("stand-in"); }
}

export class StandInRegistry {
  readonly query = new StandInQuery();
  readonly config = new StandInConfig();
  private app: Application | undefined;
  port = 0;

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Starts serving (on the same port as before after a stop). */
  async start(): Promise<void> {
    const app = new Application({ app: "Sgrid", server: "Registry", handleSignals: false, agent: "", registry: "", adapters: { QueryObj: `127.0.0.1:${this.port}`, ConfigObj: `127.0.0.1:${this.port}` } });
    app.addServant("QueryObj", this.query).addServant("ConfigObj", this.config);
    await app.start();
    this.port = app.adapters()[0]!.endpoint.port;
    this.app = app;
  }

  async stop(): Promise<void> {
    await this.app?.stop(200);
    this.app = undefined;
  }
}
