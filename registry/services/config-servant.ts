/**
 * Config API (Sgrid.Registry.ConfigObj): the read side of layered config
 * files. Writes (put, rollback, delete, push) are in the Admin API.
 *
 * Every call first passes `auth.requireQuery` (open unless a query token is
 * configured), then answers with {@link ConfigReads}. People read through the
 * Admin API instead (the same reads, role-checked per application).
 */
import type { DeepPartial, ServerContext } from "sgridnext";
import {
  ConfigServant as ConfigServantBase,
} from "sgridnext/gen/sgrid/registry/v1/config.sgrid";
import type {
  ConfigVersion, GetVersionRequest, HistoryReply, HistoryRequest, ListFilesReply, ListFilesRequest, LoadConfigReply, LoadConfigRequest,
} from "sgridnext/gen/sgrid/registry/v1/config";
import type { RegistryContext } from "../server/context";
import { ConfigReads, MAX_HISTORY, configFileToMessage, configVersionToMessage, instanceOf, scopeFromMessage, scopeToMessage } from "./config-reads";
import { ConfigLayerInvalidError } from "./errors";

export { MAX_HISTORY, configFileToMessage, configVersionToMessage, scopeFromMessage, scopeToMessage };

/** One `config.invalid` event per instance, file and problem within this time, ms (a crash-looping servant asks again and again). */
export const INVALID_EVENT_EVERY_MS = 60_000;

export class ConfigServant extends ConfigServantBase {
  /** Last `config.invalid` event per instance, file and message: time, ms. */
  private readonly reported = new Map<string, number>();

  private readonly reads: ConfigReads;

  constructor(private readonly ctx: RegistryContext) {
    super();
    this.reads = new ConfigReads(ctx.store);
  }

  /**
   * Logs a `config.invalid` event: an instance asked for a merged view that
   * cannot be built (a level stored before the write-time syntax check, or
   * levels that are not all objects). The servant falls back to its last good
   * copy; the operator sees why in the event log. Never throws.
   */
  private async reportInvalid(i: { application: string; server: string; node: string }, fileName: string, err: ConfigLayerInvalidError): Promise<void> {
    const target = `${i.application}.${i.server}${i.node ? `@${i.node}` : ""}`;
    const key = `${target}/${fileName}/${err.message}`;
    const now = Date.now();
    if ((this.reported.get(key) ?? 0) > now - INVALID_EVENT_EVERY_MS) return;
    if (this.reported.size >= 1000) this.reported.clear();
    this.reported.set(key, now);
    try {
      await this.ctx.store.events.append({
        actor: "registry", kind: "config.invalid", target,
        message: `${err.message}: the merged view of "${fileName}" for ${target} cannot be served; the servant keeps its last good copy if it has one`,
        data: { fileName, ...(err.data ?? {}) },
      });
      this.ctx.changes.kick();
    } catch (e) {
      this.ctx.log.warn({ err: (e as Error).message, fileName, target }, "could not log a config.invalid event");
    }
  }

  async listFiles(request: ListFilesRequest, call: ServerContext): Promise<DeepPartial<ListFilesReply>> {
    this.ctx.auth.requireQuery(call);
    return this.reads.listFiles(request);
  }

  async load(request: LoadConfigRequest, call: ServerContext): Promise<DeepPartial<LoadConfigReply>> {
    this.ctx.auth.requireQuery(call);
    try {
      return await this.reads.load(request);
    } catch (err) {
      if (err instanceof ConfigLayerInvalidError) await this.reportInvalid(instanceOf(request.instance), request.fileName, err);
      throw err;
    }
  }

  async history(request: HistoryRequest, call: ServerContext): Promise<DeepPartial<HistoryReply>> {
    this.ctx.auth.requireQuery(call);
    return this.reads.history(request);
  }

  async getVersion(request: GetVersionRequest, call: ServerContext): Promise<DeepPartial<ConfigVersion>> {
    this.ctx.auth.requireQuery(call);
    return this.reads.getVersion(request);
  }
}
