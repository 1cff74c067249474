/**
 * Config files in the registry store: versions, history, rollback, the three
 * levels an instance sees, and name checks. Runs once per dialect.
 */
import { expect } from "chai";
import { InvalidArgumentError, NotFoundError } from "sgridnext";
import { type ConfigScope, type KnexStore, MAX_CONFIG_BYTES } from "../../registry/store";
import { type DialectCase, forEachDialect, freshStore, rejects, uniq } from "./helpers/db";

forEachDialect("registry store: configs", (d: DialectCase) => {
  let store: KnexStore;
  let cleanup: () => Promise<void>;
  before(async () => ({ store, cleanup } = await freshStore(d)));
  after(async () => cleanup?.());

  async function placed(): Promise<{ app: string; node: string; scopes: Record<"application" | "server" | "instance", ConfigScope> }> {
    const app = uniq("App");
    const node = uniq("node-");
    await store.nodes.upsert({ name: node, address: "a", agentVersion: "1" });
    await store.servers.create({ application: app, name: "Hello", type: "node" });
    await store.instances.create({ application: app, server: "Hello", node, adapters: [] });
    return {
      app, node,
      scopes: {
        application: { level: "application", application: app },
        server: { level: "server", application: app, server: "Hello" },
        instance: { level: "instance", application: app, server: "Hello", node },
      },
    };
  }

  it("keeps every version; the current one is the latest", async () => {
    const { app, scopes } = await placed();
    const v1 = await store.configs.put(scopes.server, "app.conf", { content: "a=1\n", author: "alice", comment: "first" });
    const v2 = await store.configs.put(scopes.server, "app.conf", { content: "a=2\n", author: "bob" });
    expect(v1).to.include({ level: "server", scopeKey: `${app}.Hello`, fileName: "app.conf", version: 1, content: "a=1\n", author: "alice", comment: "first", rolledBackFrom: null });
    expect(v2).to.include({ version: 2, content: "a=2\n", author: "bob", comment: "" });
    expect(await store.configs.get(scopes.server, "app.conf")).to.deep.equal(v2);
    expect(await store.configs.get(scopes.server, "app.conf", 1)).to.deep.equal(v1);
    const files = await store.configs.listFiles(scopes.server);
    expect(files).to.have.length(1);
    expect(files[0]).to.include({ level: "server", scopeKey: `${app}.Hello`, fileName: "app.conf", currentVersion: 2 });
    expect(await store.configs.history(scopes.server, "app.conf")).to.deep.equal([v2, v1]);
    expect(await store.configs.history(scopes.server, "app.conf", { limit: 1 })).to.deep.equal([v2]);
  });

  it("rolls back by writing a new version with the old content, so history stays linear", async () => {
    const { scopes } = await placed();
    await store.configs.put(scopes.application, "db.yaml", { content: "host: a\n", author: "alice" });
    await store.configs.put(scopes.application, "db.yaml", { content: "host: b\n", author: "alice" });
    const v3 = await store.configs.rollback(scopes.application, "db.yaml", 1, { author: "bob" });
    expect(v3).to.include({ version: 3, content: "host: a\n", author: "bob", rolledBackFrom: 1, comment: "rollback to version 1" });
    expect((await store.configs.get(scopes.application, "db.yaml")).content).to.equal("host: a\n");
    const v4 = await store.configs.rollback(scopes.application, "db.yaml", 2, { author: "bob", comment: "undo" });
    expect(v4).to.include({ version: 4, content: "host: b\n", rolledBackFrom: 2, comment: "undo" });
    expect((await store.configs.history(scopes.application, "db.yaml")).map((v) => [v.version, v.content])).to.deep.equal([
      [4, "host: b\n"], [3, "host: a\n"], [2, "host: b\n"], [1, "host: a\n"],
    ]);
    const err = await rejects(store.configs.rollback(scopes.application, "db.yaml", 9, { author: "bob" }));
    expect(err).to.be.instanceOf(NotFoundError);
    expect(err.message).to.contain("version 9").and.contain('"db.yaml"');
  });

  it("lists the files an instance sees at its three levels, and the current version of one file at each", async () => {
    const { app, node, scopes } = await placed();
    await store.configs.put(scopes.application, "common.conf", { content: "app", author: "a" });
    await store.configs.put(scopes.application, "app.conf", { content: "level=app", author: "a" });
    await store.configs.put(scopes.server, "app.conf", { content: "level=server", author: "a" });
    await store.configs.put(scopes.instance, "app.conf", { content: "level=instance", author: "a" });
    await store.configs.put(scopes.instance, "app.conf", { content: "level=instance2", author: "a" });
    // Another server's files in the same application are not visible.
    await store.servers.create({ application: app, name: "Other", type: "node" });
    await store.configs.put({ level: "server", application: app, server: "Other" }, "app.conf", { content: "nope", author: "a" });

    const files = await store.configs.listForInstance(app, "Hello", node);
    expect(files.map((f) => [f.level, f.fileName, f.currentVersion])).to.deep.equal([
      ["application", "app.conf", 1], ["application", "common.conf", 1], ["server", "app.conf", 1], ["instance", "app.conf", 2],
    ]);
    const layers = await store.configs.layersForInstance(app, "Hello", node, "app.conf");
    expect(layers.application?.content).to.equal("level=app");
    expect(layers.server?.content).to.equal("level=server");
    expect(layers.instance).to.include({ content: "level=instance2", version: 2 });
    const common = await store.configs.layersForInstance(app, "Hello", node, "common.conf");
    expect(common.server).to.equal(null);
    expect(common.instance).to.equal(null);
    const err = await rejects(store.configs.layersForInstance(app, "Hello", node, "missing.conf"));
    expect(err).to.be.instanceOf(NotFoundError);
    expect(err.message).to.contain('"missing.conf"').and.contain(`${app}.Hello@${node}`);
  });

  it("refuses file names with /, \\ or .., empty or overlong, naming the file", async () => {
    const { scopes } = await placed();
    for (const bad of ["a/b.conf", "..\\x.conf", "..", "../etc/passwd", "a..b", "", ".", "x".repeat(129), "tab\tname"]) {
      const err = await rejects(store.configs.put(scopes.server, bad, { content: "x", author: "a" }));
      expect(err, JSON.stringify(bad)).to.be.instanceOf(InvalidArgumentError);
      expect(err.message).to.contain("config file name");
      if (bad.length > 0 && bad.length < 80) expect(err.message).to.contain(JSON.stringify(bad));
    }
    for (const call of [() => store.configs.get(scopes.server, "a/b"), () => store.configs.history(scopes.server, ".."), () => store.configs.listForInstance("A", "B", "x/y")]) {
      expect(await rejects(call())).to.be.instanceOf(InvalidArgumentError);
    }
    expect(await store.configs.listFiles(scopes.server)).to.deep.equal([]);
  });

  it("refuses configs of unknown servers and instances, and unknown files, with NOT_FOUND naming them", async () => {
    const { app, node } = await placed();
    let err = await rejects(store.configs.put({ level: "server", application: app, server: "Ghost" }, "a.conf", { content: "x", author: "a" }));
    expect(err).to.be.instanceOf(NotFoundError);
    expect(err.message).to.contain(`"${app}.Ghost"`);
    await store.servers.create({ application: app, name: "Unplaced", type: "node" });
    err = await rejects(store.configs.put({ level: "instance", application: app, server: "Unplaced", node }, "a.conf", { content: "x", author: "a" }));
    expect(err).to.be.instanceOf(NotFoundError);
    expect(err.message).to.contain(`${app}.Unplaced`).and.contain(node);
    err = await rejects(store.configs.get({ level: "application", application: app }, "nope.conf"));
    expect(err).to.be.instanceOf(NotFoundError);
    expect(err.message).to.contain('"nope.conf"').and.contain(`application ${app}`);
    err = await rejects(store.configs.put({ level: "galaxy", application: app } as any, "a.conf", { content: "x", author: "a" }));
    expect(err).to.be.instanceOf(InvalidArgumentError);
  });

  it("numbers concurrent writes to one file without duplicates or gaps", async () => {
    const { scopes } = await placed();
    const writes = Array.from({ length: 12 }, (_, i) => store.configs.put(scopes.server, "race.conf", { content: `v${i}`, author: "a" }));
    const versions = (await Promise.all(writes)).map((v) => v.version).sort((a, b) => a - b);
    expect(versions).to.deep.equal(Array.from({ length: 12 }, (_, i) => i + 1));
  });

  it("stores any UTF-8 content exactly, and refuses content over the limit", async () => {
    const { scopes } = await placed();
    const content = "名前 = 値 😀\r\n\ttrailing  \n\u0000?";
    await store.configs.put(scopes.server, "u.conf", { content, author: "a" });
    expect((await store.configs.get(scopes.server, "u.conf")).content).to.equal(content);
    const big = await store.configs.put(scopes.server, "big.conf", { content: "x".repeat(200_000), author: "a" });
    expect((await store.configs.get(scopes.server, "big.conf", big.version)).content).to.have.length(200_000);
    const err = await rejects(store.configs.put(scopes.server, "huge.conf", { content: "x".repeat(MAX_CONFIG_BYTES + 1), author: "a" }));
    expect(err).to.be.instanceOf(InvalidArgumentError);
    expect(err.message).to.contain("over the limit");
  });

  it("removes a file with its history", async () => {
    const { scopes } = await placed();
    await store.configs.put(scopes.instance, "gone.conf", { content: "1", author: "a" });
    await store.configs.put(scopes.instance, "gone.conf", { content: "2", author: "a" });
    await store.configs.remove(scopes.instance, "gone.conf");
    expect(await store.configs.listFiles(scopes.instance)).to.deep.equal([]);
    expect(await rejects(store.configs.history(scopes.instance, "gone.conf"))).to.be.instanceOf(NotFoundError);
    // Written again, it starts from version 1.
    expect((await store.configs.put(scopes.instance, "gone.conf", { content: "3", author: "a" })).version).to.equal(1);
  });
});
