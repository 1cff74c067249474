/**
 * Patches: uploaded packages of a server. The per-server version number is
 * taken from `servers.patch_seq`, incremented in the inserting transaction:
 * the UPDATE holds the server row's lock (MySQL) or the database's write lock
 * (SQLite) until commit, so concurrent uploads to one server, from one or
 * several registry processes, get 1, 2, 3... without gaps or duplicates, and
 * a deleted version's number is never handed out again.
 */
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from "sgridnext";
import type { PatchInput, PatchRepo } from "../base";
import type { PatchRecord } from "../records";
import {
  validateApplication, validateCount, validateId, validateServerName, validateSha256, validateText, validateUserName,
} from "../validate";
import { type StoreContext, num } from "./context";
import { patchQuery, requirePatch, requireServerRow, toPatch } from "./rows";

export class KnexPatchRepo implements PatchRepo {
  constructor(private readonly ctx: StoreContext) {}

  async create(input: PatchInput): Promise<PatchRecord> {
    const application = validateApplication(input.application);
    const server = validateServerName(input.server);
    const sha256 = validateSha256(input.sha256);
    const size = validateCount("patch size", input.size);
    const comment = validateText("patch comment", input.comment ?? "", 4096);
    const uploader = validateUserName(input.uploader);
    const storageKey = validateText("storage key", input.storageKey, 255);
    const packageVersion = validateText("package version", input.packageVersion ?? "", 128);
    if (storageKey.length === 0) throw new InvalidArgumentError("invalid storage key: must not be empty", { kind: "storage key" });
    return this.ctx.write(async (trx, touch) => {
      const row = await requireServerRow(trx, application, server);
      await trx("servers").where({ id: row.id }).increment("patch_seq", 1);
      const seq = await trx("servers").where({ id: row.id }).first("patch_seq");
      const version = num(seq.patch_seq);
      await trx("patches").insert({
        server_id: row.id,
        version,
        sha256,
        size,
        comment,
        uploader,
        storage_key: storageKey,
        package_version: packageVersion,
        created_at: this.ctx.now(),
      });
      touch("patches");
      return toPatch(await patchQuery(trx).where({ "p.server_id": row.id, "p.version": version }).first());
    });
  }

  async get(id: number): Promise<PatchRecord> {
    validateId("patch id", id);
    return this.ctx.read((db) => requirePatch(db, id));
  }

  async getByVersion(application: string, server: string, version: number): Promise<PatchRecord> {
    validateApplication(application);
    validateServerName(server);
    validateId("patch version", version);
    return this.ctx.read(async (db) => {
      const row = await patchQuery(db).where({ "s.application": application, "s.name": server, "p.version": version }).first();
      if (!row) {
        await requireServerRow(db, application, server);
        throw new NotFoundError(`patch version ${version} of server "${application}.${server}" not found`, { application, server, version });
      }
      return toPatch(row);
    });
  }

  async list(application: string, server: string): Promise<PatchRecord[]> {
    validateApplication(application);
    validateServerName(server);
    return this.ctx.read(async (db) => {
      const row = await requireServerRow(db, application, server);
      return (await patchQuery(db).where("p.server_id", row.id).orderBy("p.version", "desc")).map(toPatch);
    });
  }

  async storageKeyInUse(storageKey: string): Promise<boolean> {
    return this.ctx.read(async (db) => (await db("patches").where({ storage_key: storageKey }).first("id")) !== undefined);
  }

  async remove(id: number): Promise<{ patch: PatchRecord; storageKeyInUse: boolean }> {
    validateId("patch id", id);
    return this.ctx.write(async (trx, touch) => {
      const patch = await requirePatch(trx, id);
      const users = await trx("instances as i")
        .join("nodes as n", "n.id", "i.node_id")
        .where((w) => { w.where("i.desired_patch_id", id).orWhere("i.observed_patch_id", id); })
        .select("n.name", "i.desired_patch_id", "i.observed_patch_id");
      const name = `${patch.application}.${patch.server}`;
      if (users.length > 0) {
        const list = users.map((u: any) => `${name}@${u.name} (${num(u.desired_patch_id) === id ? "desired" : "running"})`).sort();
        throw new FailedPreconditionError(`patch ${id} (version ${patch.version} of ${name}) is in use by ${list.join(", ")}`, { patchId: id, usedBy: list });
      }
      const server = await trx("servers").where({ id: patch.serverId }).first("default_patch_id");
      if (server && num(server.default_patch_id) === id) {
        throw new FailedPreconditionError(`patch ${id} (version ${patch.version} of ${name}) is the server's default patch`, { patchId: id });
      }
      await trx("patches").where({ id }).del();
      const other = await trx("patches").where({ storage_key: patch.storageKey }).first("id");
      touch("patches");
      return { patch, storageKeyInUse: other !== undefined };
    });
  }
}
