/**
 * Admin API: login, sessions and users. Users (list, create, grant, revoke,
 * delete, another user's password) need admin on `*`; anyone logged in may
 * change their own password and ask who they are; Login is the only call
 * without a token. A change that would leave no admin on `*` is refused.
 */
import { FailedPreconditionError, InvalidArgumentError, PermissionDeniedError, UnimplementedError, type DeepPartial, type ServerContext } from "sgridnext";
import type {
  CreateUserRequest, GrantRequest, ListUsersReply, LoginReply, LoginRequest, RevokeRequest, SetPasswordRequest, UserInfo, UserRef,
} from "sgridnext/gen/sgrid/registry/v1/admin";
import type { Empty } from "sgridnext/gen/sgrid/registry/v1/types";
import type { UserRecord } from "../../store/records";
import { bearerToken, hasRole, parseRole, type RegistryAuthenticator } from "../auth";
import { grantsToMsg, userToMsg } from "../mapping";
import { hashPassword, tokenHash, validatePassword } from "../passwords";
import type { AdminApiContext } from "./context";

function hasLogin(auth: unknown): auth is RegistryAuthenticator {
  return typeof (auth as RegistryAuthenticator).login === "function" && typeof (auth as RegistryAuthenticator).logout === "function";
}

export class UsersApi {
  constructor(private readonly c: AdminApiContext) {}

  async login(request: LoginRequest, call: ServerContext): Promise<DeepPartial<LoginReply>> {
    const auth = this.c.ctx.auth;
    if (!hasLogin(auth)) throw new UnimplementedError("this registry has no login (its authenticator does not support it)");
    const address = typeof auth.clientAddress === "function" ? auth.clientAddress(call) : call.peer;
    const { token, expiresAt, user } = await auth.login(request.user, request.password, address);
    await this.c.event(user.name, "user.login", user.name, `user "${user.name}" logged in`, { peer: call.peer, address });
    return { token, user: user.name, roles: grantsToMsg(user.roles), expiresAt };
  }

  async logout(_request: Empty, call: ServerContext): Promise<DeepPartial<Empty>> {
    const user = await this.c.user(call);
    const auth = this.c.ctx.auth;
    if (!hasLogin(auth)) throw new UnimplementedError("this registry has no login (its authenticator does not support it)");
    await auth.logout(bearerToken(call)!);
    await this.c.event(user.name, "user.logout", user.name, `user "${user.name}" logged out`);
    return {};
  }

  async whoAmI(_request: Empty, call: ServerContext): Promise<DeepPartial<LoginReply>> {
    const user = await this.c.user(call);
    const session = await this.c.store.logins.find(tokenHash(bearerToken(call)!));
    return { token: "", user: user.name, roles: grantsToMsg(user.roles), expiresAt: session?.expiresAt ?? 0 };
  }

  private forget(name: string): void {
    const auth = this.c.ctx.auth as Partial<RegistryAuthenticator>;
    auth.forget?.(name);
  }

  /** Refuses a change that would leave no admin on `*` (nobody could manage users any more). */
  private async keepOneAdmin(change: (u: UserRecord) => UserRecord | undefined, what: string): Promise<void> {
    const admins = (await this.c.store.users.list()).map(change).filter((u): u is UserRecord => u !== undefined && hasRole(u, "admin"));
    if (admins.length === 0) throw new FailedPreconditionError(`refused to ${what}: it would leave no user with role admin on *`);
  }

  async listUsers(_request: Empty, call: ServerContext): Promise<DeepPartial<ListUsersReply>> {
    await this.c.user(call, { role: "admin" });
    return { users: (await this.c.store.users.list()).map(userToMsg) };
  }

  async createUser(request: CreateUserRequest, call: ServerContext): Promise<DeepPartial<UserInfo>> {
    const actor = await this.c.user(call, { role: "admin" });
    const password = validatePassword(request.password);
    const grants = request.roles.map((g) => ({ application: g.application, role: parseRole(g.role) }));
    const hash = await hashPassword(password);
    const user = await this.c.store.transaction(async (tx) => {
      await tx.users.create({ name: request.name, passwordHash: hash });
      for (const g of grants) await tx.users.grant(request.name, g.application, g.role);
      await tx.events.append({
        actor: actor.name, kind: "user.create", target: request.name, message: `user "${request.name}" created`,
        data: { roles: grants.map((g) => `${g.role}@${g.application}`) },
      });
      return tx.users.get(request.name);
    });
    this.c.changed();
    return userToMsg(user);
  }

  async setPassword(request: SetPasswordRequest, call: ServerContext): Promise<DeepPartial<Empty>> {
    const actor = await this.c.user(call);
    if (request.name !== actor.name && !hasRole(actor, "admin")) {
      throw new PermissionDeniedError(`user "${actor.name}" needs role admin on * to set the password of "${request.name}"`, { user: actor.name });
    }
    const password = validatePassword(request.password);
    const hash = await hashPassword(password);
    await this.c.store.users.setPasswordHash(request.name, hash);
    // Every other session of that user ends; the caller's own stays when they changed their own password.
    const own = request.name === actor.name ? await this.c.store.logins.find(tokenHash(bearerToken(call)!)) : undefined;
    await this.c.store.logins.removeForUser(request.name);
    if (own) await this.c.store.logins.create({ tokenHash: own.tokenHash, user: own.user, expiresAt: own.expiresAt });
    this.forget(request.name);
    await this.c.event(actor.name, "user.password", request.name, `password of user "${request.name}" changed`);
    return {};
  }

  async grant(request: GrantRequest, call: ServerContext): Promise<DeepPartial<UserInfo>> {
    const actor = await this.c.user(call, { role: "admin" });
    if (!request.grant) throw new InvalidArgumentError("missing grant (application and role)", { kind: "grant" });
    const role = parseRole(request.grant.role);
    const app = request.grant.application;
    await this.c.store.users.get(request.name);
    if (app === "*" && role !== "admin") {
      await this.keepOneAdmin((u) => (u.name === request.name ? { ...u, roles: u.roles.map((g) => (g.application === "*" ? { ...g, role } : g)) } : u), `make "${request.name}" ${role} on *`);
    }
    await this.c.store.users.grant(request.name, app, role);
    this.forget(request.name);
    await this.c.event(actor.name, "user.grant", request.name, `user "${request.name}" granted ${role} on ${app}`, { application: app, role });
    this.c.changed();
    return userToMsg(await this.c.store.users.get(request.name));
  }

  async revoke(request: RevokeRequest, call: ServerContext): Promise<DeepPartial<UserInfo>> {
    const actor = await this.c.user(call, { role: "admin" });
    await this.c.store.users.get(request.name);
    if (request.application === "*") {
      await this.keepOneAdmin((u) => (u.name === request.name ? { ...u, roles: u.roles.filter((g) => g.application !== "*") } : u), `revoke the role of "${request.name}" on *`);
    }
    await this.c.store.users.revoke(request.name, request.application);
    this.forget(request.name);
    await this.c.event(actor.name, "user.revoke", request.name, `role of user "${request.name}" on ${request.application} revoked`, { application: request.application });
    this.c.changed();
    return userToMsg(await this.c.store.users.get(request.name));
  }

  async deleteUser(request: UserRef, call: ServerContext): Promise<DeepPartial<Empty>> {
    const actor = await this.c.user(call, { role: "admin" });
    await this.c.store.users.get(request.name);
    await this.keepOneAdmin((u) => (u.name === request.name ? undefined : u), `delete user "${request.name}"`);
    await this.c.store.users.remove(request.name);
    await this.c.store.logins.removeForUser(request.name);
    this.forget(request.name);
    await this.c.event(actor.name, "user.delete", request.name, `user "${request.name}" deleted`);
    this.c.changed();
    return {};
  }
}
