/**
 * The authenticator on its own, over a real store: the first admin (password
 * generated and printed once, never logged), cluster and query tokens
 * (loopback-only without a cluster token), token expiry, role ranking, peer
 * parsing and password hashes.
 */
import { expect } from "chai";
import { PermissionDeniedError, UnauthenticatedError, getLogger, type ServerContext } from "sgridnext";
import {
  createAuthenticator, hasRole, hashPassword, isLoopbackPeer, peerHost, verifyPassword, type RegistryAuthenticator,
} from "../../registry/admin";
import type { RegistrySettings } from "../../registry/server/context";
import { type KnexStore, openStore } from "../../registry/store";
import { type DialectCase, type TestDatabase, forEachDialect } from "./helpers/db";
import { rejects } from "./helpers/admin-harness";
import { pollUntil } from "../helpers/wait";

const settings: RegistrySettings = {
  advertise: "127.0.0.1:9500", heartbeatIntervalMs: 5000, heartbeatTimeoutMs: 15000, maxPatchBytes: 1 << 20, batchTimeoutMs: 120_000, processId: "test",
};

function call(peer: string, token?: string): ServerContext {
  return {
    method: "/x/Y", metadata: token ? { authorization: `Bearer ${token}` } : {}, deadline: undefined, peer,
    signal: new AbortController().signal, protocol: "grpc", endedBy: undefined, sendHeaders: () => undefined, setTrailers: () => undefined,
  };
}

function thrown(fn: () => void): Error | undefined {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  return undefined;
}

/** A logger that keeps every line it writes. */
function capturingLogger(lines: string[]) {
  const log = getLogger("auth-test").child({});
  log.level = "trace";
  for (const level of ["trace", "debug", "info", "warn", "error", "fatal"] as const) {
    (log as any)[level] = (...args: unknown[]) => lines.push(JSON.stringify(args));
  }
  (log as any).child = () => log;
  return log;
}

forEachDialect("registry admin: authenticator", (d: DialectCase) => {
  let db: TestDatabase;
  let store: KnexStore;
  const auths: RegistryAuthenticator[] = [];
  before(async () => {
    db = await d.create();
    store = await openStore(db.url);
  });
  after(async () => {
    for (const a of auths) a.close();
    await store?.close();
    await db?.drop();
  });

  it("creates the first admin with a generated password printed once, never logged", async () => {
    const printed: string[] = [];
    const logged: string[] = [];
    const auth = createAuthenticator({ store, settings, log: capturingLogger(logged), print: (l) => printed.push(l) });
    auths.push(auth);
    await auth.init();
    expect(printed).to.have.length(1);
    const m = /created user "admin" with password (\S+) /.exec(printed[0]!);
    expect(m).to.not.equal(null);
    const password = m![1]!;
    expect(logged.join("\n")).to.not.include(password);
    const login = await auth.login("admin", password, "127.0.0.1:5000");
    expect(login.user).to.deep.equal({ name: "admin", roles: [{ application: "*", role: "admin" }] });
    // A second start finds the user and prints nothing.
    const again = createAuthenticator({ store, settings, log: capturingLogger(logged), print: (l) => printed.push(l) });
    auths.push(again);
    await again.init();
    expect(printed).to.have.length(1);
    const events = await store.events.list({ kind: "user.create" });
    expect(JSON.stringify(events)).to.not.include(password);
  });

  it("without a cluster token accepts only loopback agents; with one, only that token", async () => {
    const open = createAuthenticator({ store, settings, log: getLogger("t") });
    auths.push(open);
    expect(thrown(() => open.requireCluster(call("127.0.0.1:4000")))).to.equal(undefined);
    expect(thrown(() => open.requireCluster(call("[::1]:4000")))).to.equal(undefined);
    expect(thrown(() => open.requireCluster(call("::ffff:127.0.0.1:4000")))).to.equal(undefined);
    const far = thrown(() => open.requireCluster(call("10.2.3.4:4000", "anything")));
    expect(far).to.be.instanceOf(UnauthenticatedError);
    expect(far!.message).to.include("SGRID_CLUSTER_TOKEN");

    const closed = createAuthenticator({ store, settings, log: getLogger("t"), clusterToken: "the-cluster-token" });
    auths.push(closed);
    expect(thrown(() => closed.requireCluster(call("10.2.3.4:4000", "the-cluster-token")))).to.equal(undefined);
    expect(thrown(() => closed.requireCluster(call("127.0.0.1:4000")))).to.be.instanceOf(UnauthenticatedError);
    expect(thrown(() => closed.requireCluster(call("10.2.3.4:4000", "the-cluster-tokeN")))).to.be.instanceOf(UnauthenticatedError);
    expect(thrown(() => closed.requireCluster(call("10.2.3.4:4000", "the-cluster-token-longer")))).to.be.instanceOf(UnauthenticatedError);
  });

  it("Query is open without a query token; with one it needs that token (or the cluster token)", async () => {
    const open = createAuthenticator({ store, settings, log: getLogger("t") });
    auths.push(open);
    expect(thrown(() => open.requireQuery(call("10.0.0.1:1")))).to.equal(undefined);
    const closed = createAuthenticator({ store, settings, log: getLogger("t"), queryToken: "q-token", clusterToken: "c-token" });
    auths.push(closed);
    expect(thrown(() => closed.requireQuery(call("10.0.0.1:1")))).to.be.instanceOf(UnauthenticatedError);
    expect(thrown(() => closed.requireQuery(call("10.0.0.1:1", "wrong")))).to.be.instanceOf(UnauthenticatedError);
    expect(thrown(() => closed.requireQuery(call("10.0.0.1:1", "q-token")))).to.equal(undefined);
    expect(thrown(() => closed.requireQuery(call("10.0.0.1:1", "c-token")))).to.equal(undefined);
  });

  it("refuses an expired token and checks roles per application", async () => {
    const auth = createAuthenticator({ store, settings, log: getLogger("t"), options: { tokenTtlMs: 1, cacheMs: 1 } });
    auths.push(auth);
    await store.users.create({ name: "op-demo", passwordHash: await hashPassword("operator-password") });
    await store.users.grant("op-demo", "Demo", "operator");
    const { token } = await auth.login("op-demo", "operator-password", "127.0.0.1:1");
    await new Promise((r) => setTimeout(r, 20));
    expect(await rejects(auth.requireUser(call("127.0.0.1:1", token)))).to.be.instanceOf(UnauthenticatedError);

    const longer = createAuthenticator({ store, settings, log: getLogger("t") });
    auths.push(longer);
    const t2 = (await longer.login("op-demo", "operator-password", "127.0.0.1:1")).token;
    const ctx = call("127.0.0.1:1", t2);
    expect((await longer.requireUser(ctx, { role: "viewer", application: "Demo" })).name).to.equal("op-demo");
    expect((await longer.requireUser(ctx, { role: "operator", application: "Demo" })).name).to.equal("op-demo");
    const denied = await rejects(longer.requireUser(ctx, { role: "admin", application: "Demo" }));
    expect(denied).to.be.instanceOf(PermissionDeniedError);
    expect(denied.message).to.include("admin").and.include("Demo");
    expect(await rejects(longer.requireUser(ctx, { role: "viewer", application: "Other" }))).to.be.instanceOf(PermissionDeniedError);
    expect(await rejects(longer.requireUser(ctx, { role: "viewer" }))).to.be.instanceOf(PermissionDeniedError);
  });

  it("database unreachable: accepts only tokens it verified recently, with their roles then; refuses other tokens and logins DATABASE_UNAVAILABLE", async () => {
    // A store of its own, closed below: every query then fails as with a database that went away.
    const own = await openStore(db.url);
    let closed = false;
    try {
      const auth = createAuthenticator({ store: own, settings, log: getLogger("t"), options: { cacheMs: 1, outageTrustMs: 60_000 } });
      const brief = createAuthenticator({ store: own, settings, log: getLogger("t"), options: { cacheMs: 1, outageTrustMs: 2 } });
      auths.push(auth, brief);
      await own.users.create({ name: "op-outage", passwordHash: await hashPassword("operator-password") });
      await own.users.grant("op-outage", "Demo", "operator");
      const verified = (await auth.login("op-outage", "operator-password", "127.0.0.1:1")).token;
      const never = (await auth.login("op-outage", "operator-password", "127.0.0.1:1")).token;
      const short = (await brief.login("op-outage", "operator-password", "127.0.0.1:1")).token;
      expect((await auth.requireUser(call("127.0.0.1:1", verified), { role: "operator", application: "Demo" })).name).to.equal("op-outage");
      expect((await brief.requireUser(call("127.0.0.1:1", short))).name).to.equal("op-outage");
      const verifiedAt = Date.now();
      await own.close();
      closed = true;
      // Verified a moment ago: accepted, roles as then (and still checked).
      expect((await auth.requireUser(call("127.0.0.1:1", verified), { role: "operator", application: "Demo" })).name).to.equal("op-outage");
      expect(await rejects(auth.requireUser(call("127.0.0.1:1", verified), { role: "operator", application: "Other" }))).to.be.instanceOf(PermissionDeniedError);
      // Never verified by this process, or unknown: cannot be checked, refused.
      for (const token of [never, "not-a-token"]) {
        const err = await rejects(auth.requireUser(call("127.0.0.1:1", token)));
        expect(err.code).to.equal("DATABASE_UNAVAILABLE");
        expect(err.message).to.include("cannot check the login token");
      }
      expect(await rejects(auth.requireUser(call("127.0.0.1:1")))).to.be.instanceOf(UnauthenticatedError);
      const login = await rejects(auth.login("op-outage", "operator-password", "127.0.0.1:1"));
      expect(login.code).to.equal("DATABASE_UNAVAILABLE");
      expect(login.message).to.include("cannot log in now");
      // Verified longer ago than outageTrustMs: refused too.
      await pollUntil("the clock to pass outageTrustMs", () => Date.now() - verifiedAt > 5, { timeoutMs: 1000, everyMs: 1 });
      expect((await rejects(brief.requireUser(call("127.0.0.1:1", short)))).code).to.equal("DATABASE_UNAVAILABLE");
    } finally {
      if (!closed) await own.close();
    }
  });

  it("ranks roles admin > operator > viewer, with * covering every application", () => {
    const u = { roles: [{ application: "*", role: "viewer" as const }, { application: "Demo", role: "admin" as const }] };
    expect(hasRole(u, "viewer", "Any")).to.equal(true);
    expect(hasRole(u, "operator", "Any")).to.equal(false);
    expect(hasRole(u, "operator", "Demo")).to.equal(true);
    expect(hasRole(u, "admin", "Demo")).to.equal(true);
    expect(hasRole(u, "admin")).to.equal(false);
    expect(hasRole(u, "viewer")).to.equal(true);
  });

  it("parses peers and verifies hashes", async () => {
    expect(peerHost("10.0.0.5:1234")).to.equal("10.0.0.5");
    expect(peerHost("[2001:db8::1]:99")).to.equal("2001:db8::1");
    expect(peerHost("ipv4:127.0.0.1:5")).to.equal("127.0.0.1");
    expect(isLoopbackPeer("127.9.9.9:1")).to.equal(true);
    expect(isLoopbackPeer("[::1]:1")).to.equal(true);
    expect(isLoopbackPeer("192.168.1.1:1")).to.equal(false);
    expect(isLoopbackPeer("[fe80::1]:1")).to.equal(false);
    const hash = await hashPassword("correct horse");
    expect(await verifyPassword("correct horse", hash)).to.equal(true);
    expect(await verifyPassword("correct horsE", hash)).to.equal(false);
    expect(await verifyPassword("x", "garbage")).to.equal(false);
    expect(await verifyPassword("x", "scrypt$N=999999999,r=8,p=1$AAAA$AAAAAAAAAAAAAAAAAAAAAA")).to.equal(false);
  });
});
