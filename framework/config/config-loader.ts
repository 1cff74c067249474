/**
 * Config files at startup and on push: `await app.config.load("app.json")`.
 *
 * - Fetches the file merged across levels (application < server < instance)
 *   for this instance (SGRID_APP, SGRID_SERVER, SGRID_NODE) from the
 *   registry's Config API (SGRID_REGISTRY).
 * - Parses by extension: `.json` (JSON), `.yaml` / `.yml` (YAML), anything else
 *   is returned as text.
 * - Keeps the last good copy in SGRID_CONF_DIR: the content as `<file>`
 *   (readable by people and by programs that read the file directly) and its
 *   version in `.sgrid/<file>.version`, both written atomically.
 * - When the registry cannot be reached (UNAVAILABLE, DEADLINE_EXCEEDED, no
 *   registry configured) within `timeoutMs` (5 s, retrying every 0.1-1 s),
 *   uses that copy and logs a warning; `source` is then
 *   "cache". The same when the registry answers with a view that cannot be
 *   used (CONFIG_LAYER_INVALID: levels that do not merge; or content that
 *   does not parse): a servant starts on its last good copy instead of
 *   crash-looping (the registry logs a `config.invalid` event); with no copy
 *   the error is thrown. Any other registry answer (NOT_FOUND, PERMISSION_DENIED) is
 *   thrown as it is: a wrong name must not silently run on an old copy.
 * - `reload(file)` (what `sgrid.loadconfig <file>` runs when an operator
 *   pushes a version) fetches again and emits `change` with the previous and
 *   the new copy when the version differs. A new version that does not parse
 *   is refused: the old one stays in use and the command reports the error.
 * - `validate(file, check)`: the service's own check of a file's value (a
 *   schema); a version it refuses is handled as one that does not parse.
 */
import { EventEmitter } from "node:events";
import * as path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ConfigError, SgridError, UnavailableError } from "../errors";
import { getLogger } from "../logger";
import type { ChannelProvider } from "../proxy/invoker";
import { Status } from "../status";
import { nameProblem } from "../contract/names";
import { ConfigProxy } from "../gen/sgrid/registry/v1/config.sgrid";
import { Backoff, readFileIfExistsSync, writeFileAtomic } from "../primitives";
import { registryEndpoints, registryMetadata, registryProxy } from "../discovery/registry-client";

const log = getLogger("config");

/** One loaded config file. */
export interface LoadedConfig<T = unknown> {
  readonly file: string;
  /** Parsed content: an object/array/scalar for .json/.yaml/.yml, the text otherwise. */
  readonly value: T;
  /** The raw merged text. */
  readonly text: string;
  /** The registry's version string of the merged file (`a<n>.s<n>.i<n>`); "" when unknown. */
  readonly version: string;
  /** "registry": fetched now; "cache": the last good copy in the conf dir (registry unreachable). */
  readonly source: "registry" | "cache";
  readonly loadedAt: number;
}

export interface ConfigChange {
  readonly file: string;
  readonly previous: LoadedConfig | undefined;
  readonly current: LoadedConfig;
}

export interface ConfigLoaderOptions {
  /** Registry endpoints; default none (then only the conf dir copy can be used). */
  registry?: string;
  /** Supplies channels for the registry proxy. Required when `registry` is set. */
  channels?: ChannelProvider;
  /** Instance identity. */
  app?: string;
  server?: string;
  node?: string;
  /** Where the last good copies live (SGRID_CONF_DIR). Default none: no fallback. */
  confDir?: string;
  /** Bearer token for the Config API, when the registry requires one (SGRID_REGISTRY_TOKEN). */
  token?: string;
  /** Timeout of one Load call, ms. Default 5000 (a servant's start waits on it). */
  timeoutMs?: number;
}

export const CONFIG_LOADER_DEFAULTS = Object.freeze({ timeoutMs: 5_000 });

/** Throws TypeError (caller misuse) for a name that is not a config file name of the contract: one that could leave the conf dir, a hidden file, too long. */
export function checkConfigFileName(file: string): void {
  const problem = nameProblem("config file", file);
  if (problem !== undefined) throw new TypeError(`bad config file name ${JSON.stringify(file)}: ${problem}`);
}

/** Parses a config text by the file's extension. Throws ConfigError naming the file and version. */
export function parseConfig(file: string, text: string, version: string): unknown {
  const ext = path.extname(file).toLowerCase();
  try {
    // Blank structured content is an empty object, as in the registry's merge rule.
    if ((ext === ".json" || ext === ".yaml" || ext === ".yml") && text.trim() === "") return {};
    if (ext === ".json") return JSON.parse(text);
    // Loaded on the first YAML file: a servant without one never loads the parser.
    if (ext === ".yaml" || ext === ".yml") return (require("yaml") as typeof import("yaml")).parse(text);
  } catch (err) {
    throw new ConfigError(`config ${file}${version ? ` version ${version}` : ""} does not parse as ${ext.slice(1).toUpperCase()}: ${(err as Error).message}`, { file, version });
  }
  return text;
}

/**
 * The registry answered, but with a view no servant can use: its levels do
 * not merge (CONFIG_LAYER_INVALID) or the content does not parse here.
 */
function invalidView(err: unknown): boolean {
  return err instanceof ConfigError || (err instanceof SgridError && err.code === "CONFIG_LAYER_INVALID");
}

function unreachable(err: unknown): boolean {
  return err instanceof SgridError && (err.status === Status.UNAVAILABLE || err.status === Status.DEADLINE_EXCEEDED);
}

export class ConfigLoader extends EventEmitter<{ change: [ConfigChange] }> {
  private readonly loaded = new Map<string, LoadedConfig>();
  private readonly validators = new Map<string, (value: unknown) => void>();
  private proxy: ConfigProxy | undefined;
  private readonly timeoutMs: number;

  constructor(private readonly options: ConfigLoaderOptions = {}) {
    super();
    if (options.timeoutMs !== undefined && !(options.timeoutMs > 0)) throw new TypeError(`timeoutMs must be > 0, got ${options.timeoutMs}`);
    this.timeoutMs = options.timeoutMs ?? CONFIG_LOADER_DEFAULTS.timeoutMs;
  }

  /**
   * Loads `file` for this instance (see the file comment). Resolves with the
   * loaded copy; rejects with ConfigError (does not parse, no identity),
   * UnavailableError (registry unreachable and no last good copy), or the
   * registry's own error (NotFoundError for an unknown file).
   */
  async load<T = unknown>(file: string): Promise<LoadedConfig<T>> {
    return this.loadFile<T>(file, true);
  }

  private async loadFile<T>(file: string, fallbackOnInvalid: boolean): Promise<LoadedConfig<T>> {
    checkConfigFileName(file);
    const fresh = await this.fetch(file, fallbackOnInvalid);
    const previous = this.loaded.get(file);
    this.loaded.set(file, fresh);
    if (previous && previous.version !== fresh.version && fresh.source === "registry") this.emit("change", { file, previous, current: fresh });
    return fresh as LoadedConfig<T>;
  }

  /**
   * Fetches `file` again (the `sgrid.loadconfig` command). Emits `change` and
   * returns `changed: true` when the version differs from the one in use.
   */
  async reload(file: string): Promise<{ changed: boolean; previous: LoadedConfig | undefined; current: LoadedConfig }> {
    checkConfigFileName(file);
    const previous = this.loaded.get(file);
    // A pushed version that cannot be used is refused (the command reports it); the copy in use stays.
    const current = await this.loadFile(file, false);
    return { changed: !previous || previous.version !== current.version || previous.text !== current.text, previous, current };
  }

  /**
   * Checks every version of `file` before it is taken: `check` gets the parsed
   * value and throws (a ConfigError naming the field, say) when the service
   * cannot use it. A refused version is treated as one that does not parse: a
   * pushed one is refused (`sgrid.loadconfig` reports why, the copy in use
   * stays, no `change`), and at startup the last good copy is used.
   */
  validate(file: string, check: (value: unknown) => void): this {
    checkConfigFileName(file);
    this.validators.set(file, check);
    return this;
  }

  private checked(file: string, text: string, version: string): unknown {
    const value = parseConfig(file, text, version);
    const check = this.validators.get(file);
    if (check) {
      try {
        check(value);
      } catch (err) {
        if (err instanceof ConfigError) throw err;
        throw new ConfigError(`config ${file}${version ? ` version ${version}` : ""} is refused: ${(err as Error).message}`, { file, version });
      }
    }
    return value;
  }

  /** The copy in use, or undefined when `file` was never loaded. */
  get<T = unknown>(file: string): LoadedConfig<T> | undefined {
    return this.loaded.get(file) as LoadedConfig<T> | undefined;
  }

  /** The version in use of `file`, or undefined. */
  version(file: string): string | undefined {
    return this.loaded.get(file)?.version;
  }

  /** Every loaded file with its version and source (for `sgrid.viewversion`). */
  files(): Array<{ file: string; version: string; source: string }> {
    return [...this.loaded.values()].map((c) => ({ file: c.file, version: c.version, source: c.source }));
  }

  private registryProxy(): ConfigProxy | undefined {
    if (!this.options.registry) return undefined;
    if (!this.options.channels) throw new TypeError("ConfigLoader needs `channels` when a registry is set");
    this.proxy ??= registryProxy(ConfigProxy, registryEndpoints(this.options.registry), this.options.channels, this.timeoutMs);
    return this.proxy;
  }

  private paths(file: string): { content: string; version: string } | undefined {
    const dir = this.options.confDir;
    return dir ? { content: path.join(dir, file), version: path.join(dir, ".sgrid", `${file}.version`) } : undefined;
  }

  private async fetch(file: string, fallbackOnInvalid: boolean): Promise<LoadedConfig> {
    const { app, server, node } = this.options;
    let reason: unknown;
    const proxy = this.registryProxy();
    if (proxy) {
      if (!app || !server) throw new ConfigError(`cannot load config ${file}: application and server are unknown (set SGRID_APP and SGRID_SERVER)`);
      // Unreachable answers are retried until timeoutMs has passed: a registry that has just come
      // back is often still behind grpc's reconnect backoff for a second or two.
      const until = Date.now() + this.timeoutMs;
      const backoff = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0.2 });
      for (;;) {
        try {
          const reply = await proxy.load({ instance: { application: app, server, node: node ?? "" }, fileName: file }, { metadata: registryMetadata(this.options.token), timeoutMs: Math.max(1, until - Date.now()) });
          const value = this.checked(file, reply.content, reply.version);
          const loaded: LoadedConfig = Object.freeze({ file, value, text: reply.content, version: reply.version, source: "registry", loadedAt: Date.now() });
          await this.keep(file, loaded);
          return loaded;
        } catch (err) {
          if (invalidView(err)) {
            if (!fallbackOnInvalid) throw err;
            const cached = this.fromConfDir(file);
            if (!cached) throw err;
            log.warn({ file, version: cached.version, err: (err as Error).message }, "the registry's view of the config file cannot be used: starting on the last good copy");
            return cached;
          }
          if (!unreachable(err)) throw err;
          reason = err;
        }
        const delay = backoff.next();
        if (Date.now() + delay >= until) break;
        await sleep(delay);
      }
    } else {
      reason = new UnavailableError("no registry configured (SGRID_REGISTRY)");
    }
    const cached = this.fromConfDir(file);
    if (!cached) {
      const why = reason instanceof Error ? reason.message : String(reason);
      throw new UnavailableError(`cannot load config ${file}: ${why}, and there is no last good copy${this.options.confDir ? ` in ${this.options.confDir}` : " (SGRID_CONF_DIR is not set)"}`, { file });
    }
    log.warn({ file, version: cached.version, err: reason instanceof Error ? reason.message : String(reason) }, "registry unreachable: using the last good copy of the config file");
    return cached;
  }

  private fromConfDir(file: string): LoadedConfig | undefined {
    const p = this.paths(file);
    if (!p) return undefined;
    const text = readFileIfExistsSync(p.content);
    if (text === undefined) return undefined;
    const version = (readFileIfExistsSync(p.version) ?? "").trim();
    return Object.freeze({ file, value: this.checked(file, text, version), text, version, source: "cache", loadedAt: Date.now() });
  }

  /** Writes the last good copy; a failure is logged, never fatal (the copy in memory is good). */
  private async keep(file: string, loaded: LoadedConfig): Promise<void> {
    const p = this.paths(file);
    if (!p) return;
    try {
      await writeFileAtomic(p.content, loaded.text);
      await writeFileAtomic(p.version, `${loaded.version}\n`);
    } catch (err) {
      log.warn({ file, err: (err as Error).message }, "cannot keep the last good copy of the config file");
    }
  }
}
