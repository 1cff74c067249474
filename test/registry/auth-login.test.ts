/**
 * Login, tokens and users through the real Admin API over gRPC, on SQLite
 * always and MySQL when SGRID_TEST_MYSQL_URL is set: the first admin, login
 * right / wrong, tokens stored hashed and accepted by a second registry
 * process on the same database, logout, users and roles, the last admin kept,
 * and the rate limit.
 */
import crypto from "node:crypto";
import { expect } from "chai";
import {
  FailedPreconditionError, InvalidArgumentError, PermissionDeniedError, ResourceExhaustedError, UnauthenticatedError,
} from "sgridnext";
import { AdminProxy } from "sgridnext/gen/sgrid/registry/v1/admin.sgrid";
import { type DialectCase, forEachDialect } from "./helpers/db";
import { ADMIN_PASSWORD, type AdminHarness, rejects, startAdminRegistry, uniq } from "./helpers/admin-harness";
import { startTestRegistry } from "./helpers/registry";

forEachDialect("registry admin: login and users", (d: DialectCase) => {
  let h: AdminHarness;
  before(async () => {
    h = await startAdminRegistry(d);
  });
  after(async () => {
    await h?.cleanup();
  });

  it("logs the first admin in with SGRID_ADMIN_PASSWORD and says who it is", async () => {
    const reply = await h.admin.login({ user: "admin", password: ADMIN_PASSWORD });
    expect(reply.token).to.match(/^[A-Za-z0-9_-]{43}$/);
    expect(reply.user).to.equal("admin");
    expect(reply.roles).to.deep.equal([{ application: "*", role: "admin" }]);
    const who = await h.admin.whoAmI({}, h.as(reply.token));
    expect(who.user).to.equal("admin");
    expect(who.expiresAt).to.equal(reply.expiresAt);
    // Default lifetime 12 h (expiry is set from the registry's clock at login).
    expect(reply.expiresAt - Date.now()).to.be.within(11.9 * 3600_000, 12 * 3600_000);
  });

  it("answers a wrong password and an unknown user with the same UNAUTHENTICATED message", async () => {
    const wrongPw = await rejects(h.admin.login({ user: "admin", password: "not-the-password" }));
    const noUser = await rejects(h.admin.login({ user: uniq("nobody"), password: "whatever-pass" }));
    expect(wrongPw).to.be.instanceOf(UnauthenticatedError);
    expect(noUser).to.be.instanceOf(UnauthenticatedError);
    expect(wrongPw.message).to.equal(noUser.message);
    expect(wrongPw.message).to.not.match(/not-the-password/);
  });

  it("refuses calls without a token, with a made-up token, and after logout", async () => {
    expect(await rejects(h.admin.listServers({}))).to.be.instanceOf(UnauthenticatedError);
    expect(await rejects(h.admin.listServers({}, h.as(crypto.randomBytes(32).toString("base64url"))))).to.be.instanceOf(UnauthenticatedError);
    expect(await rejects(h.admin.listServers({}, { metadata: { authorization: "Basic abc" } }))).to.be.instanceOf(UnauthenticatedError);
    const { token } = await h.admin.login({ user: "admin", password: ADMIN_PASSWORD });
    await h.admin.listServers({}, h.as(token));
    await h.admin.logout({}, h.as(token));
    expect(await rejects(h.admin.listServers({}, h.as(token)))).to.be.instanceOf(UnauthenticatedError);
  });

  it("stores only the sha256 of a login token, with its expiry", async () => {
    const { token, expiresAt } = await h.admin.login({ user: "admin", password: ADMIN_PASSWORD });
    const rows: Array<Record<string, unknown>> = await h.reg.server.store.knex("login_sessions").select();
    const hash = crypto.createHash("sha256").update(token).digest("hex");
    expect(JSON.stringify(rows)).to.not.include(token);
    const row = rows.find((r) => r.token_hash === hash);
    expect(row).to.not.equal(undefined);
    expect(Number(row!.expires_at)).to.equal(expiresAt);
    expect(row!.user_name).to.equal("admin");
  });

  it("stores passwords as salted scrypt hashes", async () => {
    const a = await h.userWith([]);
    const b = await h.userWith([]);
    const ua = await h.reg.server.store.users.get(a.name);
    const ub = await h.reg.server.store.users.get(b.name);
    expect(ua.passwordHash).to.match(/^scrypt\$N=16384,r=8,p=1\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/);
    expect(ua.passwordHash).to.not.include(a.password);
    expect(ua.passwordHash.split("$")[2]).to.not.equal(ub.passwordHash.split("$")[2]);
  });

  it("a token from one registry process is accepted by another on the same database", async () => {
    const other = await startTestRegistry(d, { adminPassword: ADMIN_PASSWORD }, h.reg.db);
    try {
      const proxy = other.comm.stringToProxy(AdminProxy, other.target);
      const who = await proxy.whoAmI({}, h.as(h.token));
      expect(who.user).to.equal("admin");
      // And a logout through the other one ends it here (after the short cache).
      const { token } = await proxy.login({ user: "admin", password: ADMIN_PASSWORD });
      await h.admin.whoAmI({}, h.as(token));
      await proxy.logout({}, h.as(token));
      expect(await rejects(proxy.whoAmI({}, h.as(token)))).to.be.instanceOf(UnauthenticatedError);
    } finally {
      other.comm.close();
      await other.server.stop();
    }
  });

  it("manages users: admin only; a user changes their own password; roles show in WhoAmI", async () => {
    const app = uniq("App");
    const viewer = await h.userWith([{ application: app, role: "viewer" }]);
    expect(await rejects(h.admin.listUsers({}, h.as(viewer.token)))).to.be.instanceOf(PermissionDeniedError);
    expect(await rejects(h.admin.createUser({ name: uniq("x"), password: "long-enough-pw", roles: [] }, h.as(viewer.token)))).to.be.instanceOf(PermissionDeniedError);
    expect(await rejects(h.admin.setPassword({ name: "admin", password: "hijacked-password" }, h.as(viewer.token)))).to.be.instanceOf(PermissionDeniedError);
    // Own password: allowed; the old one stops working, the caller's session stays.
    await h.admin.setPassword({ name: viewer.name, password: "my-new-password" }, h.as(viewer.token));
    expect(await rejects(h.admin.login({ user: viewer.name, password: viewer.password }))).to.be.instanceOf(UnauthenticatedError);
    await h.admin.login({ user: viewer.name, password: "my-new-password" });
    expect((await h.admin.whoAmI({}, h.as(viewer.token))).roles).to.deep.equal([{ application: app, role: "viewer" }]);
    // Grants and revokes.
    const granted = await h.admin.grant({ name: viewer.name, grant: { application: app, role: "operator" } }, h.as(h.token));
    expect(granted.roles).to.deep.equal([{ application: app, role: "operator" }]);
    const listed = await h.admin.listUsers({}, h.as(h.token));
    expect(listed.users.find((u) => u.name === viewer.name)?.roles).to.deep.equal([{ application: app, role: "operator" }]);
    const revoked = await h.admin.revoke({ name: viewer.name, application: app }, h.as(h.token));
    expect(revoked.roles).to.deep.equal([]);
    // Bad input: short password, bad role, duplicate user.
    expect(await rejects(h.admin.createUser({ name: uniq("u"), password: "short", roles: [] }, h.as(h.token)))).to.be.instanceOf(InvalidArgumentError);
    expect(await rejects(h.admin.createUser({ name: uniq("u"), password: "long-enough-pw", roles: [{ application: app, role: "king" }] }, h.as(h.token)))).to.be.instanceOf(InvalidArgumentError);
    expect((await rejects(h.admin.createUser({ name: viewer.name, password: "long-enough-pw", roles: [] }, h.as(h.token)))).code).to.equal("ALREADY_EXISTS");
    // Delete: the user's sessions end.
    await h.admin.deleteUser({ name: viewer.name }, h.as(h.token));
    expect(await rejects(h.admin.whoAmI({}, h.as(viewer.token)))).to.be.instanceOf(UnauthenticatedError);
  });

  it("keeps at least one admin on *", async () => {
    const err = await rejects(h.admin.deleteUser({ name: "admin" }, h.as(h.token)));
    expect(err).to.be.instanceOf(FailedPreconditionError);
    expect(err.message).to.match(/no user with role admin/);
    expect(await rejects(h.admin.revoke({ name: "admin", application: "*" }, h.as(h.token)))).to.be.instanceOf(FailedPreconditionError);
    expect(await rejects(h.admin.grant({ name: "admin", grant: { application: "*", role: "viewer" } }, h.as(h.token)))).to.be.instanceOf(FailedPreconditionError);
    // With a second admin, the first may go.
    const second = await h.userWith([{ application: "*", role: "admin" }]);
    await h.admin.grant({ name: "admin", grant: { application: "*", role: "operator" } }, h.as(second.token));
    await h.admin.grant({ name: "admin", grant: { application: "*", role: "admin" } }, h.as(second.token));
  });

  // Last: it blocks the user name for a minute.
  it("rate-limits failed logins per user: after 5 failures even the right password is refused", async () => {
    const u = await h.userWith([]);
    for (let i = 0; i < 5; i++) expect(await rejects(h.admin.login({ user: u.name, password: `wrong-${i}-password` }))).to.be.instanceOf(UnauthenticatedError);
    const blocked = await rejects(h.admin.login({ user: u.name, password: u.password }));
    expect(blocked).to.be.instanceOf(ResourceExhaustedError);
    expect(blocked.message).to.include(u.name);
    // Other users are not affected.
    await h.admin.login({ user: "admin", password: ADMIN_PASSWORD });
  });
});
