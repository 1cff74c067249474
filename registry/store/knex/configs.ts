/**
 * Config files at three levels, every version kept.
 *
 * `config_files` holds one row per (level, scope key, file name) with the
 * number of its current version; `config_versions` holds every version's
 * content. Versions are numbered like patches: the file row's counter is
 * incremented in the writing transaction, so concurrent writers get distinct,
 * gapless numbers. The current version is always the latest: a rollback
 * writes a new version with the old content (and `rolledBackFrom` set), so
 * history stays linear and a rollback can itself be rolled back.
 */
import { CONFIG_FILE_MAX_BYTES, InvalidArgumentError, NotFoundError } from "sgridnext";
import type { ConfigLayers, ConfigRepo, ConfigWrite } from "../base";
import type { ConfigFileRecord, ConfigScope, ConfigVersionRecord } from "../records";
import { describeConfig, instanceScopes, scopeKey } from "../scope";
import { checkConfigSyntax } from "../config-syntax";
import { validateConfigFileName, validateId, validateText, validateUserName } from "../validate";
import { type Db, type StoreContext, num } from "./context";
import { requireNodeRow, requireServerRow, toConfigFile, toConfigVersion } from "./rows";

/** Largest config content, in UTF-8 bytes: the contract's one limit (fits MySQL MEDIUMTEXT with room to spare). */
export const MAX_CONFIG_BYTES = CONFIG_FILE_MAX_BYTES;

const LEVEL_ORDER = { application: 0, server: 1, instance: 2 } as const;

function versionQuery(db: Db) {
  return db("config_versions as v")
    .join("config_files as f", "f.id", "v.file_id")
    .select("v.*", "f.level as level", "f.scope_key as scope_key", "f.file_name as file_name");
}

function validateContent(content: unknown): string {
  if (typeof content !== "string") throw new InvalidArgumentError("invalid config content: expected a string", { kind: "config content" });
  const bytes = Buffer.byteLength(content, "utf8");
  if (bytes > MAX_CONFIG_BYTES) {
    throw new InvalidArgumentError(`config file too large: ${bytes} bytes is over the limit of ${MAX_CONFIG_BYTES} bytes (1 MiB)`, { kind: "config content", field: "content", bytes, maxBytes: MAX_CONFIG_BYTES });
  }
  return content;
}

/** Refuses writes to the config of a server or instance that does not exist. */
async function requireScopeOwner(db: Db, scope: ConfigScope): Promise<void> {
  if (scope.level === "application") return;
  const server = await requireServerRow(db, scope.application, scope.server);
  if (scope.level === "instance") {
    const node = await requireNodeRow(db, scope.node);
    const inst = await db("instances").where({ server_id: server.id, node_id: node.id }).first("id");
    if (!inst) throw new NotFoundError(`instance of ${scope.application}.${scope.server} on node "${scope.node}" not found`, { server: `${scope.application}.${scope.server}`, node: scope.node });
  }
}

export class KnexConfigRepo implements ConfigRepo {
  constructor(private readonly ctx: StoreContext) {}

  async put(scope: ConfigScope, fileName: string, write: ConfigWrite): Promise<ConfigVersionRecord> {
    const key = scopeKey(scope);
    validateConfigFileName(fileName);
    const content = validateContent(write.content);
    checkConfigSyntax(fileName, content);
    const author = validateUserName(write.author);
    const comment = validateText("config comment", write.comment ?? "", 4096);
    return this.ctx.write(async (trx, touch) => {
      await requireScopeOwner(trx, scope);
      return this.addVersion(trx, scope, key, fileName, { content, author, comment, rolledBackFrom: null }, touch);
    });
  }

  async get(scope: ConfigScope, fileName: string, version?: number): Promise<ConfigVersionRecord> {
    const key = scopeKey(scope);
    validateConfigFileName(fileName);
    if (version !== undefined) validateId("config version", version);
    return this.ctx.read((db) => this.getVersion(db, scope, key, fileName, version));
  }

  async listFiles(scope: ConfigScope): Promise<ConfigFileRecord[]> {
    const key = scopeKey(scope);
    return this.ctx.read(async (db) => (await db("config_files").where({ level: scope.level, scope_key: key }).orderBy("file_name")).map(toConfigFile));
  }

  async listForInstance(application: string, server: string, node: string): Promise<ConfigFileRecord[]> {
    const scopes = instanceScopes(application, server, node);
    const keys = scopes.map(scopeKey);
    return this.ctx.read(async (db) => {
      const rows = await db("config_files").where((w) => {
        scopes.forEach((s, i) => { w.orWhere({ level: s.level, scope_key: keys[i] }); });
      });
      return rows.map(toConfigFile).sort((a, b) => LEVEL_ORDER[a.level] - LEVEL_ORDER[b.level] || (a.fileName < b.fileName ? -1 : a.fileName > b.fileName ? 1 : 0));
    });
  }

  async layersForInstance(application: string, server: string, node: string, fileName: string): Promise<ConfigLayers> {
    const scopes = instanceScopes(application, server, node);
    const keys = scopes.map(scopeKey);
    validateConfigFileName(fileName);
    return this.ctx.read(async (db) => {
      const rows = await versionQuery(db)
        .whereRaw("v.version = f.current_version")
        .where("f.file_name", fileName)
        .where((w) => {
          scopes.forEach((s, i) => { w.orWhere({ "f.level": s.level, "f.scope_key": keys[i] }); });
        });
      const byLevel = new Map(rows.map((r: any) => [r.level, toConfigVersion(r)]));
      const layers: ConfigLayers = {
        application: byLevel.get("application") ?? null,
        server: byLevel.get("server") ?? null,
        instance: byLevel.get("instance") ?? null,
      };
      if (!layers.application && !layers.server && !layers.instance) {
        throw new NotFoundError(`config file "${fileName}" not found for ${keys[2]} (at application, server or instance level)`, { fileName, instance: keys[2] });
      }
      return layers;
    });
  }

  async history(scope: ConfigScope, fileName: string, opts: { limit?: number } = {}): Promise<ConfigVersionRecord[]> {
    const key = scopeKey(scope);
    validateConfigFileName(fileName);
    const limit = Math.min(validateId("history limit", opts.limit ?? 100), 1000);
    return this.ctx.read(async (db) => {
      const file = await this.requireFile(db, scope, key, fileName);
      return (await versionQuery(db).where("v.file_id", file.id).orderBy("v.version", "desc").limit(limit)).map(toConfigVersion);
    });
  }

  async rollback(scope: ConfigScope, fileName: string, version: number, write: { author: string; comment?: string }): Promise<ConfigVersionRecord> {
    const key = scopeKey(scope);
    validateConfigFileName(fileName);
    validateId("config version", version);
    const author = validateUserName(write.author);
    const comment = validateText("config comment", write.comment ?? `rollback to version ${version}`, 4096);
    return this.ctx.write(async (trx, touch) => {
      const old = await this.getVersion(trx, scope, key, fileName, version);
      // A version stored before the syntax check existed may not parse: never bring it back.
      checkConfigSyntax(fileName, old.content);
      return this.addVersion(trx, scope, key, fileName, { content: old.content, author, comment, rolledBackFrom: version }, touch);
    });
  }

  async remove(scope: ConfigScope, fileName: string): Promise<void> {
    const key = scopeKey(scope);
    validateConfigFileName(fileName);
    await this.ctx.write(async (trx, touch) => {
      const file = await this.requireFile(trx, scope, key, fileName);
      await trx("config_versions").where({ file_id: file.id }).del();
      await trx("config_files").where({ id: file.id }).del();
      touch("configs");
    });
  }

  // ---- internals --------------------------------------------------------------------------
  private async addVersion(
    trx: Db, scope: ConfigScope, key: string, fileName: string,
    v: { content: string; author: string; comment: string; rolledBackFrom: number | null }, touch: (t: "configs") => void,
  ): Promise<ConfigVersionRecord> {
    const now = this.ctx.now();
    await trx("config_files")
      .insert({ level: scope.level, scope_key: key, file_name: fileName, current_version: 0, created_at: now, updated_at: now })
      .onConflict(["level", "scope_key", "file_name"]).ignore();
    const file = await this.requireFile(trx, scope, key, fileName);
    await trx("config_files").where({ id: file.id }).update({ current_version: trx.raw("?? + 1", ["current_version"]), updated_at: now });
    const version = num((await trx("config_files").where({ id: file.id }).first("current_version")).current_version);
    await trx("config_versions").insert({
      file_id: file.id, version, content: v.content, author: v.author, comment: v.comment, rolled_back_from: v.rolledBackFrom, created_at: now,
    });
    touch("configs");
    return toConfigVersion(await versionQuery(trx).where({ "v.file_id": file.id, "v.version": version }).first());
  }

  private async requireFile(db: Db, scope: ConfigScope, key: string, fileName: string): Promise<any> {
    const file = await db("config_files").where({ level: scope.level, scope_key: key, file_name: fileName }).first();
    if (!file) throw new NotFoundError(`${describeConfig(scope, fileName)} not found`, { level: scope.level, scope: key, fileName });
    return file;
  }

  private async getVersion(db: Db, scope: ConfigScope, key: string, fileName: string, version?: number): Promise<ConfigVersionRecord> {
    const file = await this.requireFile(db, scope, key, fileName);
    const wanted = version ?? num(file.current_version);
    const row = await versionQuery(db).where({ "v.file_id": file.id, "v.version": wanted }).first();
    if (!row) throw new NotFoundError(`version ${wanted} of ${describeConfig(scope, fileName)} not found`, { level: scope.level, scope: key, fileName, version: wanted });
    return toConfigVersion(row);
  }
}
