/**
 * Servers: `App.Server`, unique per application, with the defaults new
 * instances start from. `patch_seq` (not exposed) numbers the server's
 * patches; see patches.ts.
 */
import { AlreadyExistsError, FailedPreconditionError, NotFoundError } from "sgridnext";
import type { ServerInput, ServerRepo, ServerUpdate } from "../base";
import { isUniqueViolation } from "../db-errors";
import { scopeKey } from "../scope";
import { SERVER_TYPES, type ServerRecord } from "../records";
import { validateApplication, validateId, validateJsonObject, validateOneOf, validateServerName } from "../validate";
import { type Db, type StoreContext, num, toJson } from "./context";
import { findServerRow, requirePatchOfServer, requireServerRow, toServer } from "./rows";

export class KnexServerRepo implements ServerRepo {
  constructor(private readonly ctx: StoreContext) {}

  async create(input: ServerInput): Promise<ServerRecord> {
    const application = validateApplication(input.application);
    const name = validateServerName(input.name);
    const type = validateOneOf("server type", input.type, SERVER_TYPES);
    const defaults = toJson(validateJsonObject("server defaults", input.defaults));
    return this.ctx.write(async (trx, touch) => {
      if (await findServerRow(trx, application, name)) throw duplicate(application, name);
      const now = this.ctx.now();
      try {
        await trx("servers").insert({ application, name, type, default_patch_id: null, defaults, patch_seq: 0, created_at: now, updated_at: now });
      } catch (err) {
        if (isUniqueViolation(err)) throw duplicate(application, name);
        throw err;
      }
      touch("servers");
      return toServer(await requireServerRow(trx, application, name));
    });
  }

  async get(application: string, name: string): Promise<ServerRecord> {
    validateApplication(application);
    validateServerName(name);
    return this.ctx.read(async (db) => toServer(await requireServerRow(db, application, name)));
  }

  async find(application: string, name: string): Promise<ServerRecord | undefined> {
    validateApplication(application);
    validateServerName(name);
    return this.ctx.read(async (db) => {
      const row = await findServerRow(db, application, name);
      return row ? toServer(row) : undefined;
    });
  }

  async getById(id: number): Promise<ServerRecord> {
    validateId("server id", id);
    return this.ctx.read(async (db) => {
      const row = await db("servers").where({ id }).first();
      if (!row) throw new NotFoundError(`server ${id} not found`, { serverId: id });
      return toServer(row);
    });
  }

  async list(filter: { application?: string } = {}): Promise<ServerRecord[]> {
    if (filter.application !== undefined) validateApplication(filter.application);
    return this.ctx.read(async (db) => {
      const q = db("servers").orderBy([{ column: "application" }, { column: "name" }]);
      if (filter.application !== undefined) q.where({ application: filter.application });
      return (await q).map(toServer);
    });
  }

  async listApplications(): Promise<string[]> {
    return this.ctx.read(async (db) => (await db("servers").distinct("application").orderBy("application")).map((r: any) => String(r.application)));
  }

  async update(application: string, name: string, update: ServerUpdate): Promise<ServerRecord> {
    validateApplication(application);
    validateServerName(name);
    const fields: Record<string, unknown> = {};
    if (update.type !== undefined) fields.type = validateOneOf("server type", update.type, SERVER_TYPES);
    if (update.defaults !== undefined) fields.defaults = toJson(validateJsonObject("server defaults", update.defaults));
    if (update.defaultPatchId != null) validateId("default patch id", update.defaultPatchId);
    return this.ctx.write(async (trx, touch) => {
      const row = await requireServerRow(trx, application, name);
      if (update.defaultPatchId !== undefined) {
        if (update.defaultPatchId !== null) await requirePatchOfServer(trx, update.defaultPatchId, num(row.id), `${application}.${name}`);
        fields.default_patch_id = update.defaultPatchId;
      }
      await trx("servers").where({ id: row.id }).update({ ...fields, updated_at: this.ctx.now() });
      touch("servers");
      return toServer(await requireServerRow(trx, application, name));
    });
  }

  async remove(application: string, name: string): Promise<{ orphanedStorageKeys: string[] }> {
    validateApplication(application);
    validateServerName(name);
    return this.ctx.write(async (trx, touch) => {
      const row = await requireServerRow(trx, application, name);
      const placed = await trx("instances as i").join("nodes as n", "n.id", "i.node_id").where("i.server_id", row.id).select("n.name");
      if (placed.length > 0) {
        const nodes = placed.map((r: any) => String(r.name)).sort();
        throw new FailedPreconditionError(
          `server "${application}.${name}" still has instances on node(s) ${nodes.join(", ")}; undeploy them first`,
          { application, server: name, nodes },
        );
      }
      const keys = (await trx("patches").where({ server_id: row.id }).distinct("storage_key")).map((r: any) => String(r.storage_key));
      const patchCount = num((await trx("patches").where({ server_id: row.id }).count({ n: "*" }))[0]?.n ?? 0);
      await trx("patches").where({ server_id: row.id }).del();
      const removedConfigs = await removeConfigsOfServer(trx, application, name);
      await trx("placements").where({ server_id: row.id }).del();
      await trx("servers").where({ id: row.id }).del();
      const orphaned: string[] = [];
      for (const key of keys) {
        if (!(await trx("patches").where({ storage_key: key }).first())) orphaned.push(key);
      }
      touch("servers");
      if (patchCount > 0) touch("patches");
      if (removedConfigs > 0) touch("configs");
      return { orphanedStorageKeys: orphaned.sort() };
    });
  }
}

/** Server-level config files of a removed server go with it (instance-level ones went with the instances). */
async function removeConfigsOfServer(trx: Db, application: string, name: string): Promise<number> {
  const key = scopeKey({ level: "server", application, server: name });
  const ids = (await trx("config_files").where({ level: "server", scope_key: key }).select("id")).map((r: any) => r.id);
  if (ids.length === 0) return 0;
  await trx("config_versions").whereIn("file_id", ids).del();
  await trx("config_files").whereIn("id", ids).del();
  return ids.length;
}

function duplicate(application: string, name: string): AlreadyExistsError {
  return new AlreadyExistsError(`server "${application}.${name}" already exists`, { application, server: name });
}
