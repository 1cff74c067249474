/**
 * Login sessions of the Admin API. The store sees only token hashes (sha256
 * hex, computed by the registry's auth code), never tokens. Sessions are read
 * by key and never watched, so writes bump no revision counter.
 */
import { InvalidArgumentError } from "sgridnext";
import type { LoginSessionRepo } from "../base";
import type { LoginSessionRecord } from "../records";
import { validateUserName } from "../validate";
import { type StoreContext, num } from "./context";

function validateTokenHash(value: unknown): string {
  if (typeof value !== "string" || !/^[0-9a-f]{64}$/.test(value)) {
    throw new InvalidArgumentError("invalid token hash: expected 64 lower-case hex digits", { kind: "token hash" });
  }
  return value;
}

function toSession(r: any): LoginSessionRecord {
  return { tokenHash: r.token_hash, user: r.user_name, createdAt: num(r.created_at), expiresAt: num(r.expires_at) };
}

export class KnexLoginSessionRepo implements LoginSessionRepo {
  constructor(private readonly ctx: StoreContext) {}

  async create(input: { tokenHash: string; user: string; expiresAt: number }): Promise<LoginSessionRecord> {
    const row = {
      token_hash: validateTokenHash(input.tokenHash),
      user_name: validateUserName(input.user),
      created_at: this.ctx.now(),
      expires_at: Math.trunc(input.expiresAt),
    };
    await this.ctx.read((db) => db("login_sessions").insert(row));
    return toSession(row);
  }

  async find(tokenHash: string): Promise<LoginSessionRecord | undefined> {
    const hash = validateTokenHash(tokenHash);
    const row = await this.ctx.read((db) => db("login_sessions").where({ token_hash: hash }).first());
    return row ? toSession(row) : undefined;
  }

  async remove(tokenHash: string): Promise<void> {
    const hash = validateTokenHash(tokenHash);
    await this.ctx.read((db) => db("login_sessions").where({ token_hash: hash }).del());
  }

  async removeForUser(user: string): Promise<number> {
    const name = validateUserName(user);
    return num(await this.ctx.read((db) => db("login_sessions").where({ user_name: name }).del()));
  }

  async pruneExpired(now: number): Promise<number> {
    return num(await this.ctx.read((db) => db("login_sessions").where("expires_at", "<", Math.trunc(now)).del()));
  }
}
