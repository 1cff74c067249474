/**
 * The read side of layered config files, without the access check: the
 * Config API (servants, behind the query token) and the Admin API (people,
 * role viewer on the file's application) both answer with these.
 *
 * Names are validated by the store (INVALID_ARGUMENT naming the name); an
 * unknown file is NOT_FOUND naming it. Load merges with {@link mergeConfig}.
 *
 * Cost per call: Load is one SELECT (the current version of the file at the
 * instance's three levels); ListFiles two (server check + files).
 */
import { InvalidArgumentError, NotFoundError, type DeepPartial } from "sgridnext";
import type {
  ConfigFile, ConfigScope as ScopeMessage, ConfigVersion, GetVersionRequest, HistoryReply, HistoryRequest, InstanceRef, ListFilesReply, ListFilesRequest, LoadConfigReply,
  LoadConfigRequest,
} from "sgridnext/gen/sgrid/registry/v1/config";
import { validate, type ConfigFileRecord, type ConfigLevel, type ConfigScope, type ConfigVersionRecord, type RegistryStore } from "../store";
import { mergeConfig } from "./config-merge";

/** Longest history answered in one call (the store's own cap). 0 in a request = the store's default, 100. */
export const MAX_HISTORY = 1000;

/** A wire scope as a store scope; INVALID_ARGUMENT for a missing scope or an unknown level (names are checked by the store). */
export function scopeFromMessage(scope: ScopeMessage | undefined): ConfigScope {
  if (!scope) throw new InvalidArgumentError("config scope is required", { kind: "config scope" });
  switch (scope.level) {
    case "application":
      return { level: "application", application: scope.application };
    case "server":
      return { level: "server", application: scope.application, server: scope.server };
    case "instance":
      return { level: "instance", application: scope.application, server: scope.server, node: scope.node };
    default:
      throw new InvalidArgumentError(`invalid config level ${JSON.stringify(scope.level)}: expected application, server or instance`, { kind: "config level", value: String(scope.level).slice(0, 80) });
  }
}

/** The wire scope of a stored level and scope key (`App`, `App.Server`, `App.Server@node`). */
export function scopeToMessage(level: ConfigLevel, key: string): ScopeMessage {
  const at = key.indexOf("@");
  const dotted = at >= 0 ? key.slice(0, at) : key;
  const dot = dotted.indexOf(".");
  return {
    level,
    application: dot >= 0 ? dotted.slice(0, dot) : dotted,
    server: dot >= 0 ? dotted.slice(dot + 1) : "",
    node: at >= 0 ? key.slice(at + 1) : "",
  };
}

export function configFileToMessage(f: ConfigFileRecord): ConfigFile {
  return { scope: scopeToMessage(f.level, f.scopeKey), fileName: f.fileName, currentVersion: f.currentVersion, updatedAt: f.updatedAt };
}

export function configVersionToMessage(v: ConfigVersionRecord): ConfigVersion {
  return {
    scope: scopeToMessage(v.level, v.scopeKey),
    fileName: v.fileName,
    version: v.version,
    content: v.content,
    author: v.author,
    comment: v.comment,
    rolledBackFrom: v.rolledBackFrom ?? 0,
    createdAt: v.createdAt,
  };
}


/** The instance of a request, its names checked. */
export function instanceOf(ref: InstanceRef | undefined): { application: string; server: string; node: string } {
  if (!ref) throw new InvalidArgumentError("instance (application, server, node) is required", { kind: "instance" });
  return {
    application: validate.validateApplication(ref.application),
    server: validate.validateServerName(ref.server),
    node: validate.validateNodeName(ref.node),
  };
}

export class ConfigReads {
  constructor(private readonly store: RegistryStore) {}

  /** The files the instance sees: application level first, then server, then instance; by name within a level. */
  async listFiles(request: ListFilesRequest): Promise<DeepPartial<ListFilesReply>> {
    const i = instanceOf(request.instance);
    // An unknown server is a typo worth reporting; an instance not (yet)
    // placed still sees its application's and server's files.
    if (!(await this.store.servers.find(i.application, i.server))) {
      throw new NotFoundError(`server ${i.application}.${i.server} not found`, { application: i.application, server: i.server });
    }
    const files = await this.store.configs.listForInstance(i.application, i.server, i.node);
    return { files: files.map(configFileToMessage) };
  }

  /** The merged file, its version string and the levels that went into it (general first). */
  async load(request: LoadConfigRequest): Promise<DeepPartial<LoadConfigReply>> {
    const i = instanceOf(request.instance);
    const fileName = validate.validateConfigFileName(request.fileName);
    const layers = await this.store.configs.layersForInstance(i.application, i.server, i.node, fileName);
    const { content, version } = mergeConfig(fileName, layers);
    const present = [layers.application, layers.server, layers.instance].filter((l): l is ConfigVersionRecord => l !== null);
    return { fileName, content, version, layers: present.map(configVersionToMessage) };
  }

  /** Versions of one file at one level, newest first; `limit` 0 = 100, at most 1000. */
  async history(request: HistoryRequest): Promise<DeepPartial<HistoryReply>> {
    const scope = scopeFromMessage(request.scope);
    const limit = request.limit > 0 ? Math.min(request.limit, MAX_HISTORY) : undefined;
    const versions = await this.store.configs.history(scope, request.fileName, { limit });
    return { versions: versions.map(configVersionToMessage) };
  }

  /** One version of one file at one level; version 0 = the current one. */
  async getVersion(request: GetVersionRequest): Promise<DeepPartial<ConfigVersion>> {
    const scope = scopeFromMessage(request.scope);
    const v = await this.store.configs.get(scope, request.fileName, request.version > 0 ? request.version : undefined);
    return configVersionToMessage(v);
  }
}
