/**
 * The Config API over real gRPC, on SQLite (and MySQL when
 * SGRID_TEST_MYSQL_URL is set): files an instance sees, the merged load
 * with its layers and version, history, single versions, bad names and
 * the optional query token.
 */
import { expect } from "chai";
import YAML from "yaml";
import { InvalidArgumentError, NotFoundError, Status, UnauthenticatedError } from "sgridnext";
import { ConfigLayerInvalidError } from "../../registry/services";
import type { ConfigScope } from "../../registry/store";
import { type Harness, startHarness } from "./config-patch-harness";
import { type DialectCase, forEachDialect, rejects } from "./helpers/db";

forEachDialect("registry Config API", (d: DialectCase) => {
  let h: Harness;
  before(async () => {
    h = await startHarness(d);
    await h.store.servers.create({ application: "Demo", name: "Hello", type: "node" });
    await h.store.servers.create({ application: "Demo", name: "Other", type: "node" });
    for (const [i, node] of ["node1", "node2"].entries()) {
      await h.store.nodes.upsert({ name: node, address: `127.0.0.${i + 1}`, agentVersion: "test" });
      await h.store.instances.create({ application: "Demo", server: "Hello", node, adapters: [{ obj: "HelloObj", host: `127.0.0.${i + 1}`, port: 10000 }] });
    }
  });
  after(async () => h?.close());

  const APP: ConfigScope = { level: "application", application: "Demo" };
  const SERVER: ConfigScope = { level: "server", application: "Demo", server: "Hello" };
  const OTHER: ConfigScope = { level: "server", application: "Demo", server: "Other" };
  const INSTANCE: ConfigScope = { level: "instance", application: "Demo", server: "Hello", node: "node1" };
  const instance = { application: "Demo", server: "Hello", node: "node1" };
  const put = (scope: ConfigScope, file: string, content: string) => h.store.configs.put(scope, file, { content, author: "ann", comment: `c ${content.length}` });

  it("loads a JSON file merged across the three levels, with its layers and version", async () => {
    await put(APP, "svc.json", JSON.stringify({ db: { host: "db0", port: 3306 }, workers: 2, tags: ["a"] }));
    await put(SERVER, "svc.json", JSON.stringify({ db: { host: "db1" }, tags: ["b", "c"] }));
    await put(INSTANCE, "svc.json", JSON.stringify({ workers: 8 }));
    const r = await h.config.load({ instance, fileName: "svc.json" });
    expect(r.fileName).to.equal("svc.json");
    expect(JSON.parse(r.content)).to.deep.equal({ db: { host: "db1", port: 3306 }, workers: 8, tags: ["b", "c"] });
    expect(r.version).to.match(/^a1\.s1\.i1\.[0-9a-f]{12}$/);
    expect(r.layers.map((l) => [l.scope?.level, l.scope?.application, l.scope?.server, l.scope?.node, l.version, l.author])).to.deep.equal([
      ["application", "Demo", "", "", 1, "ann"],
      ["server", "Demo", "Hello", "", 1, "ann"],
      ["instance", "Demo", "Hello", "node1", 1, "ann"],
    ]);

    // Another instance of the same server does not see node1's level.
    const other = await h.config.load({ instance: { ...instance, node: "node2" }, fileName: "svc.json" });
    expect(JSON.parse(other.content).workers).to.equal(2);
    expect(other.version).to.match(/^a1\.s1\.i0\./);
  });

  it("changes the version when any level changes, and keeps it when nothing did", async () => {
    const before = (await h.config.load({ instance, fileName: "svc.json" })).version;
    expect((await h.config.load({ instance, fileName: "svc.json" })).version).to.equal(before);
    await put(APP, "svc.json", JSON.stringify({ db: { host: "db0", port: 3307 }, workers: 2, tags: ["a"] }));
    const after = await h.config.load({ instance, fileName: "svc.json" });
    expect(after.version).to.not.equal(before);
    expect(after.version).to.match(/^a2\.s1\.i1\./);
    expect(JSON.parse(after.content).db).to.deep.equal({ host: "db1", port: 3307 });
  });

  it("merges YAML and appends text files marked #sgrid:append", async () => {
    await put(APP, "app.yaml", "log:\n  level: info\n  format: json\n");
    await put(INSTANCE, "app.yaml", "log:\n  level: debug\n");
    expect(YAML.parse((await h.config.load({ instance, fileName: "app.yaml" })).content)).to.deep.equal({ log: { level: "debug", format: "json" } });

    await put(APP, "hosts.conf", "10.0.0.1 db\n");
    await put(SERVER, "hosts.conf", "#sgrid:append\n10.0.0.2 cache\n");
    await put(INSTANCE, "hosts.conf", "#sgrid:append\n127.0.0.1 self\n");
    expect((await h.config.load({ instance, fileName: "hosts.conf" })).content).to.equal("10.0.0.1 db\n10.0.0.2 cache\n127.0.0.1 self\n");

    await put(APP, "plain.conf", "from app\n");
    await put(SERVER, "plain.conf", "from server\n");
    expect((await h.config.load({ instance, fileName: "plain.conf" })).content).to.equal("from server\n");
  });

  /** A level as a registry before the write-time syntax check could have stored it. */
  async function plantLegacy(scope: ConfigScope, file: string, content: string): Promise<void> {
    const marker = `{"planted": ${Date.now()}${Math.random().toString().slice(2, 8)}}`;
    await put(scope, file, marker);
    expect(await h.store.knex("config_versions").where({ content: marker }).update({ content })).to.equal(1);
  }

  async function invalidEvents(target: string) {
    return (await h.store.events.list({ kind: "config.invalid" })).filter((e) => e.target === target);
  }

  it("fails the load with FAILED_PRECONDITION naming the file, level and position when a (legacy) level does not parse, and logs one event", async () => {
    await put(APP, "broken.json", '{"a": 1}');
    await plantLegacy(SERVER, "broken.json", '{"a": 2,\n  , "password": "s3cret"}');
    const err = await rejects(h.config.load({ instance, fileName: "broken.json" }));
    expect(err).to.be.instanceOf(ConfigLayerInvalidError);
    expect(err.status).to.equal(Status.FAILED_PRECONDITION);
    expect(err.message).to.include('"broken.json"').and.include("server level").and.include("Demo.Hello");
    expect(err.message).to.not.include("s3cret");
    // A crash-looping servant asking again and again makes one event, not one per ask.
    await rejects(h.config.load({ instance, fileName: "broken.json" }));
    const events = await invalidEvents("Demo.Hello@node1");
    expect(events).to.have.length(1);
    expect(events[0]!.message).to.include('"broken.json"').and.include("last good copy").and.not.include("s3cret");
  });

  it("refuses a legacy single level that does not parse instead of serving it verbatim, naming line and column", async () => {
    const node2 = { level: "instance", application: "Demo", server: "Hello", node: "node2" } as const;
    await plantLegacy(node2, "alone.yaml", "a: 1\nb: [1, 2\nc: 3\n");
    const err = await rejects(h.config.load({ instance: { ...instance, node: "node2" }, fileName: "alone.yaml" }));
    expect(err).to.be.instanceOf(ConfigLayerInvalidError);
    expect(err.message).to.include("instance level").and.include("not valid YAML").and.match(/line \d+, column \d+/);
  });

  it("refuses JSON and YAML that do not parse at write time, naming line and column; nothing is stored, the current version stays", async () => {
    const cases: Array<[string, string, RegExp]> = [
      ["bad.json", '{\n  "a": 1,\n  "b": 2,,\n  "password": "s3cret"\n}', /not valid JSON: line 3, column 10/],
      ["bad.json", '{"a": 1', /not valid JSON: line 1, column 8/],
      ["bad.yaml", "a: 1\nb: [1, 2\nc: 3\npassword: s3cret\n", /not valid YAML: line 3, column 1/],
      ["bad.yml", "a: 1\na: 2\n", /not valid YAML: line 2, column 1/],
    ];
    await put(OTHER, "bad.json", '{"good": true}');
    for (const [file, content, position] of cases) {
      const err = await rejects(put(OTHER, file, content));
      expect(err, file).to.be.instanceOf(InvalidArgumentError);
      expect(err.message).to.match(position).and.include(`"${file}"`).and.include("nothing was stored").and.not.include("s3cret");
    }
    const history = await h.store.configs.history(OTHER, "bad.json");
    expect(history.map((v) => v.content)).to.deep.equal(['{"good": true}']);
    expect(await rejects(h.store.configs.get(OTHER, "bad.yaml"))).to.be.instanceOf(NotFoundError);
    // Text files and blank structured content are stored as they are.
    await put(OTHER, "notes.txt", "{ not json");
    await put(OTHER, "empty.json", "  \n");
    // A rollback to a version stored before the check, that does not parse, is refused too.
    await plantLegacy(OTHER, "bad.json", '{"a": }');
    const legacy = (await h.store.configs.history(OTHER, "bad.json"))[0]!.version;
    await put(OTHER, "bad.json", '{"fixed": true}');
    const back = await rejects(h.store.configs.rollback(OTHER, "bad.json", legacy, { author: "ann" }));
    expect(back).to.be.instanceOf(InvalidArgumentError);
    expect(back.message).to.match(/line 1, column 7/);
    expect((await h.store.configs.get(OTHER, "bad.json")).content).to.equal('{"fixed": true}');
  });

  it("lists the files an instance sees: application, then server, then instance, by name", async () => {
    await put({ level: "server", application: "Demo", server: "Other" }, "not-mine.conf", "x");
    await put({ level: "instance", application: "Demo", server: "Hello", node: "node2" }, "node2-only.conf", "x");
    const r = await h.config.listFiles({ instance });
    const rows = r.files.map((f) => `${f.scope?.level}:${f.fileName}`);
    expect(rows).to.deep.equal([
      "application:app.yaml", "application:broken.json", "application:hosts.conf", "application:plain.conf", "application:svc.json",
      "server:broken.json", "server:hosts.conf", "server:plain.conf", "server:svc.json",
      "instance:app.yaml", "instance:hosts.conf", "instance:svc.json",
    ]);
    const svcApp = r.files.find((f) => f.fileName === "svc.json" && f.scope?.level === "application")!;
    expect(svcApp.currentVersion).to.equal(2);
    expect(svcApp.updatedAt).to.be.greaterThan(0);
    const err = await rejects(h.config.listFiles({ instance: { ...instance, server: "Nope" } }));
    expect(err).to.be.instanceOf(NotFoundError);
    expect(err.message).to.include("Demo.Nope");
  });

  it("answers history newest first with a limit, and single versions (0 = current)", async () => {
    for (const n of [2, 3, 4]) await put(SERVER, "hist.conf", `v${n}`.padEnd(3, "\n"));
    await put(SERVER, "hist.conf", "v5");
    const all = await h.config.history({ scope: { level: "server", application: "Demo", server: "Hello", node: "" }, fileName: "hist.conf", limit: 0 });
    expect(all.versions.map((v) => v.version)).to.deep.equal([4, 3, 2, 1]);
    expect(all.versions[0]!).to.include({ fileName: "hist.conf", content: "v5", author: "ann", rolledBackFrom: 0 });
    const two = await h.config.history({ scope: { level: "server", application: "Demo", server: "Hello", node: "" }, fileName: "hist.conf", limit: 2 });
    expect(two.versions.map((v) => v.version)).to.deep.equal([4, 3]);

    await h.store.configs.rollback(SERVER, "hist.conf", 2, { author: "ann" });
    const current = await h.config.getVersion({ scope: { level: "server", application: "Demo", server: "Hello", node: "" }, fileName: "hist.conf", version: 0 });
    expect(current).to.include({ version: 5, content: "v3\n", rolledBackFrom: 2 });
    expect(current.scope).to.deep.equal({ level: "server", application: "Demo", server: "Hello", node: "" });
    const v1 = await h.config.getVersion({ scope: { level: "server", application: "Demo", server: "Hello", node: "" }, fileName: "hist.conf", version: 1 });
    expect(v1.content).to.equal("v2\n");
  });

  it("answers NOT_FOUND naming an unknown file or version", async () => {
    const load = await rejects(h.config.load({ instance, fileName: "missing.conf" }));
    expect(load).to.be.instanceOf(NotFoundError);
    expect(load.message).to.include("missing.conf");
    const hist = await rejects(h.config.history({ scope: { level: "application", application: "Demo", server: "", node: "" }, fileName: "missing.conf", limit: 0 }));
    expect(hist).to.be.instanceOf(NotFoundError);
    expect(hist.message).to.include("missing.conf");
    const ver = await rejects(h.config.getVersion({ scope: { level: "server", application: "Demo", server: "Hello", node: "" }, fileName: "hist.conf", version: 99 }));
    expect(ver).to.be.instanceOf(NotFoundError);
    expect(ver.message).to.include("99");
  });

  it("refuses bad file names with INVALID_ARGUMENT naming the name, on every call", async () => {
    const scope = { level: "server", application: "Demo", server: "Hello", node: "" };
    for (const [bad, shown] of [["a/b", "a/b"], ["a\\b", "a\\\\b"], ["..", ".."], ["../x", "../x"], ["x..y", "x..y"], ["a\0b", "a\\u0000b"], ["x".repeat(200), "x".repeat(50)]]) {
      for (const call of [
        () => h.config.load({ instance, fileName: bad }),
        () => h.config.history({ scope, fileName: bad, limit: 0 }),
        () => h.config.getVersion({ scope, fileName: bad, version: 0 }),
      ]) {
        const err = await rejects(call());
        expect(err, JSON.stringify(bad)).to.be.instanceOf(InvalidArgumentError);
        expect(err.message, JSON.stringify(bad)).to.include("config file name").and.include(shown);
      }
    }
    const empty = await rejects(h.config.load({ instance, fileName: "" }));
    expect(empty).to.be.instanceOf(InvalidArgumentError);
    expect(empty.message).to.include("config file name");
  });

  it("refuses bad scopes and instance names with INVALID_ARGUMENT", async () => {
    const level = await rejects(h.config.history({ scope: { level: "global", application: "Demo", server: "", node: "" }, fileName: "a.conf", limit: 0 }));
    expect(level).to.be.instanceOf(InvalidArgumentError);
    expect(level.message).to.include('"global"');
    const noScope = await rejects(h.config.getVersion({ fileName: "a.conf", version: 0 }));
    expect(noScope).to.be.instanceOf(InvalidArgumentError);
    const node = await rejects(h.config.load({ instance: { ...instance, node: "../etc" }, fileName: "svc.json" }));
    expect(node).to.be.instanceOf(InvalidArgumentError);
    expect(node.message).to.include("node name").and.include("../etc");
  });

  it("needs the query token once one is configured", async () => {
    h.auth.queryToken = "q-secret";
    try {
      const err = await rejects(h.config.load({ instance, fileName: "svc.json" }));
      expect(err).to.be.instanceOf(UnauthenticatedError);
      expect(await rejects(h.config.listFiles({ instance }))).to.be.instanceOf(UnauthenticatedError);
      const ok = await h.config.load({ instance, fileName: "svc.json" }, h.as("q-secret"));
      expect(JSON.parse(ok.content).workers).to.equal(8);
    } finally {
      h.auth.queryToken = undefined;
    }
  });
});
