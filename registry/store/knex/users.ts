/**
 * Users and their roles. The store keeps an opaque password hash (the
 * registry's auth code chooses scrypt or argon2 and its encoding); it never
 * sees, logs or compares passwords.
 */
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from "sgridnext";
import type { UserRepo } from "../base";
import { isUniqueViolation } from "../db-errors";
import { ROLES, type Role, type RoleGrant, type UserRecord } from "../records";
import { validateApplication, validateOneOf, validateUserName } from "../validate";
import { type Db, type StoreContext, num } from "./context";

function validateHash(hash: unknown): string {
  if (typeof hash !== "string" || hash.length === 0 || hash.length > 512) {
    throw new InvalidArgumentError("invalid password hash: expected a non-empty string of at most 512 characters", { kind: "password hash" });
  }
  return hash;
}

/** `*` (every application) or an application name. */
function validateRoleScope(application: unknown): string {
  return application === "*" ? "*" : validateApplication(application);
}

async function requireUserRow(db: Db, name: string): Promise<any> {
  const row = await db("users").where({ name }).first();
  if (!row) throw new NotFoundError(`user "${name}" not found`, { user: name });
  return row;
}

async function grantsOf(db: Db, userIds: number[]): Promise<Map<number, RoleGrant[]>> {
  const out = new Map<number, RoleGrant[]>(userIds.map((id) => [id, []]));
  if (userIds.length === 0) return out;
  for (const r of await db("user_roles").whereIn("user_id", userIds).orderBy("application")) {
    out.get(num(r.user_id))?.push({ application: r.application, role: r.role as Role });
  }
  return out;
}

function toUser(r: any, roles: RoleGrant[]): UserRecord {
  return { id: num(r.id), name: r.name, passwordHash: r.password_hash, roles, createdAt: num(r.created_at), updatedAt: num(r.updated_at) };
}

async function loadUser(db: Db, name: string): Promise<UserRecord> {
  const row = await requireUserRow(db, name);
  return toUser(row, (await grantsOf(db, [num(row.id)])).get(num(row.id)) ?? []);
}

export class KnexUserRepo implements UserRepo {
  constructor(private readonly ctx: StoreContext) {}

  async create(input: { name: string; passwordHash: string }): Promise<UserRecord> {
    const name = validateUserName(input.name);
    const hash = validateHash(input.passwordHash);
    return this.ctx.write(async (trx, touch) => {
      const exists = () => new AlreadyExistsError(`user "${name}" already exists`, { user: name });
      if (await trx("users").where({ name }).first("id")) throw exists();
      const now = this.ctx.now();
      try {
        await trx("users").insert({ name, password_hash: hash, created_at: now, updated_at: now });
      } catch (err) {
        if (isUniqueViolation(err)) throw exists();
        throw err;
      }
      touch("users");
      return loadUser(trx, name);
    });
  }

  async get(name: string): Promise<UserRecord> {
    validateUserName(name);
    return this.ctx.read((db) => loadUser(db, name));
  }

  async find(name: string): Promise<UserRecord | undefined> {
    validateUserName(name);
    return this.ctx.read(async (db) => ((await db("users").where({ name }).first("id")) ? loadUser(db, name) : undefined));
  }

  async list(): Promise<UserRecord[]> {
    return this.ctx.read(async (db) => {
      const rows = await db("users").orderBy("name");
      const grants = await grantsOf(db, rows.map((r: any) => num(r.id)));
      return rows.map((r: any) => toUser(r, grants.get(num(r.id)) ?? []));
    });
  }

  async setPasswordHash(name: string, passwordHash: string): Promise<void> {
    validateUserName(name);
    const hash = validateHash(passwordHash);
    await this.ctx.write(async (trx, touch) => {
      await requireUserRow(trx, name);
      await trx("users").where({ name }).update({ password_hash: hash, updated_at: this.ctx.now() });
      touch("users");
    });
  }

  async remove(name: string): Promise<void> {
    validateUserName(name);
    await this.ctx.write(async (trx, touch) => {
      const row = await requireUserRow(trx, name);
      await trx("user_roles").where({ user_id: row.id }).del();
      await trx("users").where({ id: row.id }).del();
      touch("users");
    });
  }

  async grant(name: string, application: string, role: Role): Promise<RoleGrant[]> {
    validateUserName(name);
    const app = validateRoleScope(application);
    const r = validateOneOf("role", role, ROLES);
    return this.ctx.write(async (trx, touch) => {
      const row = await requireUserRow(trx, name);
      await trx("user_roles").insert({ user_id: row.id, application: app, role: r }).onConflict(["user_id", "application"]).merge(["role"]);
      await trx("users").where({ id: row.id }).update({ updated_at: this.ctx.now() });
      touch("users");
      return (await grantsOf(trx, [num(row.id)])).get(num(row.id)) ?? [];
    });
  }

  async revoke(name: string, application: string): Promise<RoleGrant[]> {
    validateUserName(name);
    const app = validateRoleScope(application);
    return this.ctx.write(async (trx, touch) => {
      const row = await requireUserRow(trx, name);
      const n = await trx("user_roles").where({ user_id: row.id, application: app }).del();
      if (num(n) > 0) {
        await trx("users").where({ id: row.id }).update({ updated_at: this.ctx.now() });
        touch("users");
      }
      return (await grantsOf(trx, [num(row.id)])).get(num(row.id)) ?? [];
    });
  }

  async count(): Promise<number> {
    return this.ctx.read(async (db) => num((await db("users").count({ n: "*" }))[0]?.n ?? 0));
  }
}
