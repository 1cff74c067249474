/**
 * Config files at startup and on push: a servant loads a merged file from
 * the registry's Config API (stand-in on a real port), an operator pushes a
 * new version delivered as `sgrid.loadconfig` over the agent channel, and the
 * registry is down at startup.
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as path from "node:path";
import { Application, ConfigError, NotFoundError, SgridError, Status, UnavailableError, type ConfigChange } from "sgridnext";
import { EchoImpl } from "../helpers/echo-servant";
import { outputDir } from "../helpers/paths";
import { StandInAgent } from "./agent-standin";
import { StandInRegistry } from "./registry-standin";
import { waitFor } from "../helpers/wait";


describe("framework config loading", function () {
  this.timeout(60_000);
  let registry: StandInRegistry;
  let agent: StandInAgent;
  let confDir: string;
  const apps: Application[] = [];

  function newApp(id: string, registryAddress = registry.address, dir = confDir): Application {
    const app = new Application({
      app: "Test", server: "EchoServer", handleSignals: false, adapters: { EchoObj: "127.0.0.1:0" },
      env: { SGRID_REGISTRY: registryAddress, SGRID_NODE: "node1", SGRID_CONF_DIR: dir, SGRID_AGENT: agent.address, SGRID_INSTANCE_ID: id, SGRID_AGENT_TOKEN: `t-${id}` },
    });
    app.addServant("EchoObj", new EchoImpl(id));
    apps.push(app);
    return app;
  }

  before(async () => {
    registry = new StandInRegistry();
    await registry.start();
    agent = new StandInAgent();
    await agent.start();
    confDir = outputDir("config-load");
    registry.config.push("app.json", JSON.stringify({ greeting: "hello", limits: { rps: 10 } }), "a1.s1.i0");
    registry.config.push("app.yaml", "greeting: hi\nlist:\n  - 1\n  - 2\n", "a1.s0.i0");
    registry.config.push("notes.txt", "just text\n", "a0.s1.i0");
  });

  after(async () => {
    for (const app of apps) await app.stop(200);
    await agent.stop();
    await registry.stop();
  });

  it("reads a value at startup, for this instance, and keeps a last good copy in the conf dir", async () => {
    const app = newApp("201");
    const cfg = await app.config.load<{ greeting: string; limits: { rps: number } }>("app.json");
    await app.start();
    expect(cfg.value.greeting).to.equal("hello");
    expect(cfg.value.limits.rps).to.equal(10);
    expect(cfg).to.deep.include({ version: "a1.s1.i0", source: "registry", file: "app.json" });
    expect(app.config.version("app.json")).to.equal("a1.s1.i0");
    expect(registry.config.loads.at(-1)).to.deep.equal({ instance: { application: "Test", server: "EchoServer", node: "node1" }, fileName: "app.json" });
    expect(JSON.parse(fs.readFileSync(path.join(confDir, "app.json"), "utf8"))).to.deep.equal({ greeting: "hello", limits: { rps: 10 } });
    expect(fs.readFileSync(path.join(confDir, ".sgrid", "app.json.version"), "utf8").trim()).to.equal("a1.s1.i0");
  });

  it("parses YAML, and returns any other file as text", async () => {
    const app = newApp("202");
    expect((await app.config.load("app.yaml")).value).to.deep.equal({ greeting: "hi", list: [1, 2] });
    expect((await app.config.load("notes.txt")).value).to.equal("just text\n");
  });

  it("sees a version an operator pushes, without a restart (sgrid.loadconfig over the agent channel)", async () => {
    const app = newApp("203");
    await app.config.load("app.json");
    await app.start();
    const changes: ConfigChange[] = [];
    app.config.on("change", (c) => changes.push(c));
    await waitFor("the agent channel", () => !!agent.connection("203"));

    registry.config.push("app.json", JSON.stringify({ greeting: "bonjour", limits: { rps: 20 } }), "a1.s2.i0");
    const r = await agent.send("203", "sgrid.loadconfig", "app.json");
    expect(r).to.deep.include({ ok: true, output: "app.json: a1.s1.i0 -> a1.s2.i0 (registry)" });
    expect(changes).to.have.length(1);
    expect(changes[0]!.file).to.equal("app.json");
    expect((changes[0]!.previous!.value as { greeting: string }).greeting).to.equal("hello");
    expect((changes[0]!.current.value as { greeting: string }).greeting).to.equal("bonjour");
    expect(app.config.get<{ greeting: string }>("app.json")!.value.greeting).to.equal("bonjour");
    const v = JSON.parse((await agent.send("203", "sgrid.viewversion")).output) as { configs: unknown[] };
    expect(v.configs).to.deep.include({ file: "app.json", version: "a1.s2.i0", source: "registry" });

    const again = await agent.send("203", "sgrid.loadconfig", "app.json");
    expect(again.output).to.equal("app.json: a1.s2.i0 (unchanged)");
    expect(changes).to.have.length(1);
  });

  it("refuses a pushed version that does not parse, keeping the one in use", async () => {
    const app = newApp("204");
    await app.config.load("app.json");
    await app.start();
    await waitFor("the agent channel", () => !!agent.connection("204"));
    const before = app.config.get("app.json")!;
    let changed = 0;
    app.config.on("change", () => changed++);
    registry.config.push("app.json", "{ not json", "a1.s3.i0");
    try {
      const r = await agent.send("204", "sgrid.loadconfig", "app.json");
      expect(r.ok).to.equal(false);
      expect(r.error).to.match(/app\.json version a1\.s3\.i0 does not parse as JSON/);
      expect(app.config.get("app.json")).to.equal(before);
      expect(changed).to.equal(0);
      expect(JSON.parse(fs.readFileSync(path.join(confDir, "app.json"), "utf8"))).to.be.an("object");
    } finally {
      registry.config.push("app.json", JSON.stringify({ greeting: "bonjour", limits: { rps: 20 } }), "a1.s2.i0");
    }
  });

  it("refuses a pushed version the service's own check refuses (validate), keeping the one in use; takes one it accepts", async () => {
    const app = newApp("205");
    app.config.validate("app.json", (v) => {
      const rps = (v as { limits?: { rps?: unknown } }).limits?.rps;
      if (typeof rps !== "number" || rps <= 0) throw new ConfigError("limits.rps: must be a number > 0", { field: "limits.rps" });
    });
    await app.config.load("app.json");
    await app.start();
    await waitFor("the agent channel", () => !!agent.connection("205"));
    const before = app.config.get("app.json")!;
    let changed = 0;
    app.config.on("change", () => changed++);
    registry.config.push("app.json", JSON.stringify({ greeting: "hola", limits: { rps: -1 } }), "a1.s4.i0");
    try {
      const r = await agent.send("205", "sgrid.loadconfig", "app.json");
      expect(r.ok).to.equal(false);
      expect(r.error).to.contain("limits.rps: must be a number > 0");
      expect(app.config.get("app.json")).to.equal(before);
      expect(changed).to.equal(0);
      expect(JSON.parse(fs.readFileSync(path.join(confDir, "app.json"), "utf8")).limits.rps).to.be.above(0);

      registry.config.push("app.json", JSON.stringify({ greeting: "hola", limits: { rps: 5 } }), "a1.s5.i0");
      const ok = await agent.send("205", "sgrid.loadconfig", "app.json");
      expect(ok).to.deep.include({ ok: true });
      expect(changed).to.equal(1);
      expect(app.config.get<{ limits: { rps: number } }>("app.json")!.value.limits.rps).to.equal(5);
    } finally {
      registry.config.push("app.json", JSON.stringify({ greeting: "bonjour", limits: { rps: 20 } }), "a1.s2.i0");
    }
  });

  it("starts from the last good copy, with a warning, when the registry's view does not parse or does not merge; throws without one", async () => {
    const warm = newApp("209");
    const good = await warm.config.load("app.json");
    try {
      registry.config.push("app.json", '{"greeting": oops}', "a1.s9.i0");
      const started = newApp("210");
      const cfg = await started.config.load<{ greeting: string }>("app.json");
      expect(cfg).to.deep.include({ source: "cache", version: good.version });
      expect(cfg.value).to.deep.equal(good.value);
      await started.start();
      // The bad view was not written over the good copy.
      expect(JSON.parse(fs.readFileSync(path.join(confDir, "app.json"), "utf8"))).to.deep.equal(good.value);

      registry.config.failing.set("app.json", new SgridError("CONFIG_LAYER_INVALID", 'config file "app.json" at server level (Test.EchoServer, version 9) is not valid JSON: line 1, column 14', { status: Status.FAILED_PRECONDITION }));
      const merged = await newApp("211").config.load("app.json");
      expect(merged).to.deep.include({ source: "cache", version: good.version });

      const bare = newApp("212", registry.address, outputDir("config-load-invalid-empty"));
      const err = await bare.config.load("app.json").then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(SgridError);
      expect((err as SgridError).code).to.equal("CONFIG_LAYER_INVALID");
      registry.config.failing.delete("app.json");
      const err2 = await bare.config.load("app.json").then(() => undefined, (e: unknown) => e);
      expect(err2).to.be.instanceOf(ConfigError);
      expect((err2 as Error).message).to.match(/app\.json version a1\.s9\.i0 does not parse as JSON/);
    } finally {
      registry.config.failing.delete("app.json");
      registry.config.push("app.json", JSON.stringify({ greeting: "bonjour", limits: { rps: 20 } }), "a1.s2.i0");
    }
  });

  it("starts from the last good copy, with its version, when the registry is down", async () => {
    const warm = newApp("205");
    const good = await warm.config.load("app.json");
    await registry.stop();
    try {
      const app = newApp("206");
      const cfg = await app.config.load("app.json");
      expect(cfg.source).to.equal("cache");
      expect(cfg.version).to.equal(good.version);
      expect(cfg.value).to.deep.equal(good.value);
      await app.start();

      const bare = newApp("207", registry.address, outputDir("config-load-empty"));
      const err = await bare.config.load("app.json").then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(UnavailableError);
      expect((err as Error).message).to.match(/cannot load config app\.json: .*no last good copy in /);
    } finally {
      await registry.start();
    }
  });

  it("throws the registry's NOT_FOUND for an unknown file (no fallback to an old copy), and TypeError for a name with a path", async () => {
    const app = newApp("208");
    const err = await app.config.load("nosuch.json").then(() => undefined, (e: unknown) => e);
    expect(err, String(err)).to.be.instanceOf(NotFoundError);
    expect((err as Error).message).to.contain("nosuch.json");
    for (const bad of ["../etc/passwd", "a/b.json", "", ".."]) {
      await app.config.load(bad).then(() => expect.fail(`accepted ${bad}`), (e: unknown) => expect(e).to.be.instanceOf(TypeError));
    }
  });
});
