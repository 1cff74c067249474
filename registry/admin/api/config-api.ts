/**
 * Admin API: config files for people. Reads (files, merged view, history,
 * versions) need viewer on the file's application, writes (put, rollback,
 * delete, push) operator. Contents may hold secrets: events carry names and
 * versions only.
 */
import { InvalidArgumentError, NotFoundError, type DeepPartial, type ServerContext } from "sgridnext";
import type {
  DeleteConfigRequest, ListScopeFilesRequest, PushConfigReply, PushConfigRequest, PutConfigRequest, RollbackConfigRequest,
} from "sgridnext/gen/sgrid/registry/v1/admin";
import type {
  ConfigVersion, GetVersionRequest, HistoryReply, HistoryRequest, ListFilesReply, ListFilesRequest, LoadConfigReply, LoadConfigRequest,
} from "sgridnext/gen/sgrid/registry/v1/config";
import type { Empty } from "sgridnext/gen/sgrid/registry/v1/types";
import type { AuthUser } from "../../server/context";
import { ConfigReads, instanceOf, scopeFromMessage } from "../../services/config-reads";
import { scopeKey } from "../../store";
import type { ConfigScope, InstanceRecord, Role } from "../../store/records";
import { hasRole } from "../auth";
import { configFileToMsg, configVersionToMsg, scopeFromMsg } from "../mapping";
import { ADMIN_API_DEFAULTS, type AdminApiContext } from "./context";

export class ConfigApi {
  constructor(private readonly c: AdminApiContext) {}

  private async configScope(user: AuthUser, scope: ConfigScope, role: Role): Promise<void> {
    this.c.requireApps(user, role, [scope.application]);
  }

  async listConfigFiles(request: ListScopeFilesRequest, call: ServerContext): Promise<DeepPartial<ListFilesReply>> {
    const user = await this.c.user(call);
    const scope = scopeFromMsg(request.scope);
    await this.configScope(user, scope, "viewer");
    return { files: (await this.c.store.configs.listFiles(scope)).map(configFileToMsg) };
  }

  // The Config API's reads, for people: viewer on the file's application.
  private async readConfig(call: ServerContext, application: string): Promise<ConfigReads> {
    this.c.requireApps(await this.c.user(call), "viewer", [application]);
    return new ConfigReads(this.c.store);
  }

  async listInstanceConfigFiles(request: ListFilesRequest, call: ServerContext): Promise<DeepPartial<ListFilesReply>> {
    return (await this.readConfig(call, instanceOf(request.instance).application)).listFiles(request);
  }

  async loadConfig(request: LoadConfigRequest, call: ServerContext): Promise<DeepPartial<LoadConfigReply>> {
    return (await this.readConfig(call, instanceOf(request.instance).application)).load(request);
  }

  async configHistory(request: HistoryRequest, call: ServerContext): Promise<DeepPartial<HistoryReply>> {
    return (await this.readConfig(call, scopeFromMessage(request.scope).application)).history(request);
  }

  async getConfigVersion(request: GetVersionRequest, call: ServerContext): Promise<DeepPartial<ConfigVersion>> {
    return (await this.readConfig(call, scopeFromMessage(request.scope).application)).getVersion(request);
  }

  async putConfig(request: PutConfigRequest, call: ServerContext): Promise<DeepPartial<ConfigVersion>> {
    const user = await this.c.user(call);
    const scope = scopeFromMsg(request.scope);
    await this.configScope(user, scope, "operator");
    const v = await this.c.store.configs.put(scope, request.fileName, { content: request.content, author: user.name, comment: request.comment });
    // Content may hold secrets: the event has the name and version only.
    await this.c.event(user.name, "config.put", v.scopeKey, `config file "${v.fileName}" at ${v.level} ${v.scopeKey}: version ${v.version}`, { fileName: v.fileName, level: v.level, version: v.version });
    this.c.changed();
    return configVersionToMsg(v);
  }

  async rollbackConfig(request: RollbackConfigRequest, call: ServerContext): Promise<DeepPartial<ConfigVersion>> {
    const user = await this.c.user(call);
    const scope = scopeFromMsg(request.scope);
    await this.configScope(user, scope, "operator");
    const v = await this.c.store.configs.rollback(scope, request.fileName, request.version, { author: user.name, comment: request.comment });
    await this.c.event(user.name, "config.rollback", v.scopeKey, `config file "${v.fileName}" at ${v.level} ${v.scopeKey} rolled back to version ${request.version} (now version ${v.version})`, { fileName: v.fileName, level: v.level, version: v.version, from: request.version });
    this.c.changed();
    return configVersionToMsg(v);
  }

  async deleteConfig(request: DeleteConfigRequest, call: ServerContext): Promise<DeepPartial<Empty>> {
    const user = await this.c.user(call);
    const scope = scopeFromMsg(request.scope);
    await this.configScope(user, scope, "operator");
    await this.c.store.configs.remove(scope, request.fileName);
    await this.c.event(user.name, "config.delete", scopeKey(scope), `config file "${request.fileName}" at ${scope.level} ${scopeKey(scope)} deleted`, { fileName: request.fileName, level: scope.level });
    this.c.changed();
    return {};
  }

  async pushConfig(request: PushConfigRequest, call: ServerContext): Promise<DeepPartial<PushConfigReply>> {
    const user = await this.c.user(call);
    if (!request.fileName) throw new InvalidArgumentError("missing file_name to push", { kind: "file name" });
    let targets: InstanceRecord[];
    if (request.instanceIds.length > 0) {
      targets = [];
      for (const id of request.instanceIds) targets.push(await this.c.store.instances.get(id));
      this.c.requireApps(user, "operator", targets.map((i) => i.application));
      for (const i of targets) {
        const files = await this.c.store.configs.listForInstance(i.application, i.server, i.node);
        if (!files.some((f) => f.fileName === request.fileName)) {
          throw new NotFoundError(`config file "${request.fileName}" is not visible to instance ${i.id} (${i.application}.${i.server}@${i.node})`, { instanceId: i.id, fileName: request.fileName });
        }
      }
    } else {
      const all = (await this.c.store.instances.list()).filter((i) => hasRole(user, "operator", i.application));
      targets = [];
      for (const i of all) {
        const files = await this.c.store.configs.listForInstance(i.application, i.server, i.node);
        if (files.some((f) => f.fileName === request.fileName)) targets.push(i);
      }
      if (targets.length === 0) throw new NotFoundError(`no instance you operate sees config file "${request.fileName}"`, { fileName: request.fileName });
    }
    const results = new Array<{ instanceId: number; ok: boolean; message: string }>(targets.length);
    let next = 0;
    const worker = async () => {
      while (next < targets.length) {
        const idx = next++;
        const inst = targets[idx]!;
        try {
          const out = await this.c.ctx.sessions.sendCommand(inst.id, "sgrid.loadconfig", request.fileName, ADMIN_API_DEFAULTS.commandTimeoutMs);
          results[idx] = { instanceId: inst.id, ok: true, message: out };
        } catch (err) {
          results[idx] = { instanceId: inst.id, ok: false, message: (err as Error).message };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(ADMIN_API_DEFAULTS.pushConcurrency, targets.length) }, worker));
    const ok = results.filter((r) => r.ok).length;
    const apps = [...new Set(targets.map((i) => i.application))];
    await this.c.event(user.name, "config.push", apps.length === 1 ? apps[0]! : "*", `config file "${request.fileName}" pushed to ${targets.length} instance(s): ${ok} ok`, {
      fileName: request.fileName, instanceIds: targets.map((i) => i.id), ok,
    });
    return { results };
  }
}
