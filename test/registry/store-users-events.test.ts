/**
 * Users, roles and the event log in the registry store. Runs once per dialect.
 */
import { expect } from "chai";
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from "sgridnext";
import type { KnexStore } from "../../registry/store";
import { type DialectCase, forEachDialect, freshStore, rejects, uniq } from "./helpers/db";

forEachDialect("registry store: users and roles", (d: DialectCase) => {
  let store: KnexStore;
  let cleanup: () => Promise<void>;
  before(async () => ({ store, cleanup } = await freshStore(d)));
  after(async () => cleanup?.());

  it("creates, finds, lists, re-hashes and removes users", async () => {
    expect(await store.users.count()).to.equal(0);
    const u = await store.users.create({ name: "alice@example.com", passwordHash: "scrypt$N=16384$salt$hash" });
    expect(u).to.include({ name: "alice@example.com", passwordHash: "scrypt$N=16384$salt$hash" });
    expect(u.roles).to.deep.equal([]);
    await store.users.create({ name: "bob", passwordHash: "h" });
    expect(await store.users.count()).to.equal(2);
    expect(await store.users.get("alice@example.com")).to.deep.equal(u);
    expect((await store.users.list()).map((x) => x.name)).to.deep.equal(["alice@example.com", "bob"]);
    await store.users.setPasswordHash("bob", "h2");
    expect((await store.users.get("bob")).passwordHash).to.equal("h2");
    await store.users.remove("bob");
    expect(await store.users.find("bob")).to.equal(undefined);
    expect(await store.users.count()).to.equal(1);
  });

  it("grants one role per application (or *), replaces it, and revokes it", async () => {
    const name = uniq("carol");
    await store.users.create({ name, passwordHash: "h" });
    expect(await store.users.grant(name, "Demo", "viewer")).to.deep.equal([{ application: "Demo", role: "viewer" }]);
    expect(await store.users.grant(name, "*", "admin")).to.deep.equal([{ application: "*", role: "admin" }, { application: "Demo", role: "viewer" }]);
    expect(await store.users.grant(name, "Demo", "operator")).to.deep.equal([{ application: "*", role: "admin" }, { application: "Demo", role: "operator" }]);
    expect((await store.users.get(name)).roles).to.deep.equal([{ application: "*", role: "admin" }, { application: "Demo", role: "operator" }]);
    expect(await store.users.revoke(name, "*")).to.deep.equal([{ application: "Demo", role: "operator" }]);
    expect(await store.users.revoke(name, "Nothing")).to.deep.equal([{ application: "Demo", role: "operator" }]);
    await store.users.remove(name);
    await store.users.create({ name, passwordHash: "h" });
    expect((await store.users.get(name)).roles).to.deep.equal([]); // roles went with the user
  });

  it("refuses duplicates, unknown users, bad names and roles", async () => {
    const name = uniq("dave");
    await store.users.create({ name, passwordHash: "h" });
    let err = await rejects(store.users.create({ name, passwordHash: "x" }));
    expect(err).to.be.instanceOf(AlreadyExistsError);
    expect(err.message).to.contain(`"${name}"`);
    for (const call of [() => store.users.get("nobody"), () => store.users.grant("nobody", "Demo", "viewer"), () => store.users.remove("nobody"), () => store.users.setPasswordHash("nobody", "h")]) {
      err = await rejects(call());
      expect(err).to.be.instanceOf(NotFoundError);
      expect(err.message).to.contain('user "nobody"');
    }
    for (const call of [
      () => store.users.create({ name: "a/b", passwordHash: "h" }), () => store.users.create({ name: "ok", passwordHash: "" }),
      () => store.users.grant(name, "Demo", "root" as any), () => store.users.grant(name, "De/mo", "viewer"),
    ]) {
      expect(await rejects(call())).to.be.instanceOf(InvalidArgumentError);
    }
  });
});

forEachDialect("registry store: event log", (d: DialectCase) => {
  let store: KnexStore;
  let cleanup: () => Promise<void>;
  before(async () => ({ store, cleanup } = await freshStore(d)));
  after(async () => cleanup?.());

  it("appends events and lists them newest first, with filters", async () => {
    const app = uniq("Ev");
    const t = Date.now();
    const e1 = await store.events.append({ actor: "alice", kind: "server.create", target: `${app}.Hello`, message: "created", time: t - 3000 });
    const e2 = await store.events.append({ actor: "node:n1", kind: "instance.crash", target: `${app}.Hello@n1`, message: "exit code 1", data: { code: 1, restarts: 2 }, time: t - 2000 });
    const e3 = await store.events.append({ actor: "node:n1", kind: "instance.oom", target: `${app}.Hello@n1`, message: "OOM killed", data: { limit: 268435456 }, time: t - 1000 });
    const e4 = await store.events.append({ actor: "registry", kind: "node.offline", target: "n1", message: "missed heartbeats" });
    expect(e2).to.deep.include({ actor: "node:n1", kind: "instance.crash", target: `${app}.Hello@n1`, message: "exit code 1", data: { code: 1, restarts: 2 }, time: t - 2000 });
    expect(e4.time).to.be.at.least(t);
    expect((await store.events.list({ targetPrefix: `${app}.` })).map((e) => e.id)).to.deep.equal([e3.id, e2.id, e1.id]);
    expect((await store.events.list({ targetPrefix: `${app.toLowerCase()}.` }))).to.deep.equal([]); // case-sensitive on both dialects
    expect((await store.events.list({ kind: "instance.oom" })).map((e) => e.id)).to.deep.equal([e3.id]);
    expect((await store.events.list({ target: `${app}.Hello@n1`, actor: "node:n1" })).map((e) => e.id)).to.deep.equal([e3.id, e2.id]);
    expect((await store.events.list({ targetPrefix: `${app}.`, since: t - 2500, until: t - 1500 })).map((e) => e.id)).to.deep.equal([e2.id]);
    expect((await store.events.list({ targetPrefix: `${app}.`, beforeId: e3.id, limit: 1 })).map((e) => e.id)).to.deep.equal([e2.id]);
    expect((await store.events.list({ afterId: e1.id })).map((e) => e.id)).to.deep.equal([e2.id, e3.id, e4.id]);
    expect((await store.events.list({ targetPrefix: "%" }))).to.deep.equal([]); // no wildcards
  });

  it("prunes events older than a time", async () => {
    const app = uniq("Old");
    await store.events.append({ actor: "a", kind: "x.y", target: `${app}.a`, message: "", time: 1000 });
    await store.events.append({ actor: "a", kind: "x.y", target: `${app}.b`, message: "", time: 5000 });
    expect(await store.events.prune(2000)).to.equal(1);
    expect((await store.events.list({ targetPrefix: `${app}.` })).map((e) => e.target)).to.deep.equal([`${app}.b`]);
  });

  it("refuses bad events", async () => {
    for (const bad of [
      { actor: "", kind: "a.b", target: "t", message: "m" }, { actor: "a", kind: "Bad Kind", target: "t", message: "m" },
      { actor: "a", kind: "a.b", target: "t", message: "m", data: [1] as any }, { actor: "a", kind: "a.b", target: "t", message: "x".repeat(9000) },
    ]) {
      expect(await rejects(store.events.append(bad))).to.be.instanceOf(InvalidArgumentError);
    }
  });
});
