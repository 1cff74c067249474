/**
 * `sgrid node` as a user runs it: settings precedence, the systemd unit,
 * and the agent as a real child process that is `kill -9`ed while its
 * servants run: they keep serving, a restarted agent (with the registry
 * away, so from its persisted state alone) re-adopts every one without a
 * duplicate, restarts one killed afterwards, and reports all of them once
 * the registry is back.
 */
import { expect } from "chai";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { ConfigError } from "sgridnext";
import { agentV8Flags } from "../../cli/agent-v8";
import { resolveNodeCliOptions, systemdUnitFor } from "../../cli/node";
import { NodeAgent } from "../../nodeagent";
import { CLI } from "../helpers/paths";
import { freePort } from "../helpers/processes";
import { desiredInstance } from "../nodeagent/helpers/agent-fake-registry";
import { AgentHarness } from "../nodeagent/helpers/agent-harness";
import { binaryPackage, httpGet } from "../nodeagent/helpers/agent-packages";
import { writePackage } from "../fixtures/packages/tar-builder";
import { OPTIMIZES_SOURCE } from "../helpers/v8-tier";
import { liveProcessesWith, waitFor } from "../nodeagent/helpers/agent-test-env";

describe("cli: sgrid node", function () {
  this.timeout(120_000);

  describe("settings", () => {
    it("keeps an operator's own young-generation or compiler-tier flag instead of the agent's V8 setting", () => {
      expect(agentV8Flags([], "")).to.deep.equal(["--semi-space-growth-factor=1", "--max-opt=1"]);
      expect(agentV8Flags(["--max-semi-space-size=8"], "")).to.deep.equal(["--max-opt=1"]);
      expect(agentV8Flags([], "--max-old-space-size=512 --max-semi-space-size=4")).to.deep.equal(["--max-opt=1"]);
      expect(agentV8Flags(["--semi-space-growth-factor=2"], "")).to.deep.equal(["--max-opt=1"]);
      for (const tier of ["--max-opt=999", "--max_opt=3", "--opt", "--turbofan", "--no-opt", "--jitless", "--maglev"]) {
        expect(agentV8Flags([tier], ""), tier).to.deep.equal(["--semi-space-growth-factor=1"]);
      }
      // Not tier flags: the agent's own still applies.
      expect(agentV8Flags(["--allow-natives-syntax", "--optimize-for-size", "--max-old-space-size=300"], "")).to.deep.equal(["--semi-space-growth-factor=1", "--max-opt=1"]);
    });

    it("takes flags over env over the config file over defaults", () => {
      const dir = fs.mkdtempSync(path.join(require("node:os").tmpdir(), "sgrid-node-cli-"));
      try {
        const cfg = path.join(dir, "node.yaml");
        fs.writeFileSync(cfg, "name: from-file\naddress: 10.0.0.9\nkeepReleases: 3\nregistry: [file:1]\n");
        const env = { SGRID_REGISTRY: "env-a:9000,env-b:9000", SGRID_NODE_NAME: "from-env", SGRID_CLUSTER_TOKEN: "env-token", SGRID_DATA_DIR: "data-from-env" };
        const o = resolveNodeCliOptions({ config: cfg, name: "from-flag" }, env, dir);
        expect(o.name).to.equal("from-flag");
        expect(o.registry).to.deep.equal(["env-a:9000", "env-b:9000"]);
        expect(o.token).to.equal("env-token");
        expect(o.address).to.equal("10.0.0.9");
        expect(o.keepReleases).to.equal(3);
        expect(o.dataDir).to.equal(path.join(dir, "data-from-env"));
        expect(o.cgroups).to.deep.equal({ groupName: "sgrid" });

        const d = resolveNodeCliOptions({ registry: "r:1", cgroups: "none" }, {}, dir);
        expect(d.name).to.equal(require("node:os").hostname());
        expect(d.dataDir).to.equal(path.join(dir, "sgrid-data", "node"));
        expect(d.cgroups).to.deep.equal({ groupName: "sgrid", prefer: "none" });
        expect(d.token).to.equal(undefined);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it("takes node tags from --tag, else SGRID_NODE_TAGS, else the config file's tags, and refuses a bad one by name", () => {
      const dir = fs.mkdtempSync(path.join(require("node:os").tmpdir(), "sgrid-node-cli-"));
      try {
        const cfg = path.join(dir, "node.yaml");
        fs.writeFileSync(cfg, "registry: [file:1]\ntags: [hdd, zone=f]\n");
        expect(resolveNodeCliOptions({ config: cfg, tag: ["ssd", "zone=a"] }, { SGRID_NODE_TAGS: "gpu" }, dir).tags).to.deep.equal(["ssd", "zone=a"]);
        expect(resolveNodeCliOptions({ config: cfg }, { SGRID_NODE_TAGS: "gpu, rack=r1" }, dir).tags).to.deep.equal(["gpu", "rack=r1"]);
        expect(resolveNodeCliOptions({ config: cfg }, {}, dir).tags).to.deep.equal(["hdd", "zone=f"]);
        expect(() => resolveNodeCliOptions({ config: cfg, tag: ["no space"] }, {}, dir)).to.throw(ConfigError, /invalid node tags: invalid tag key "no space"/);
        expect(() => resolveNodeCliOptions({ config: cfg, tag: ["a=1", "a=2"] }, {}, dir)).to.throw(ConfigError, /tag "a" is given twice/);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it("says clearly what is missing or wrong", () => {
      expect(() => resolveNodeCliOptions({}, {})).to.throw(ConfigError, /no registry given: pass --registry/);
      expect(() => resolveNodeCliOptions({ registry: "r:1", cgroups: "v3" }, {})).to.throw(ConfigError, /--cgroups must be auto, v2, v1 or none/);
      expect(() => resolveNodeCliOptions({ registry: "r:1", config: "/nonexistent/node.yaml" }, {})).to.throw(ConfigError, /cannot read config file/);
      const out = spawnSync(["node", "--data-dir", "/tmp/x"], { SGRID_REGISTRY: "" });
      expect(out.status).to.equal(1);
      expect(out.stderr).to.contain("no registry given");
    });

    it("prints a systemd unit whose stop leaves the services running, without the token", () => {
      const unit = execFileSync(process.execPath, [CLI, "node", "--print-systemd-unit", "--registry", "reg1:9500,reg2:9500", "--name", "node-7", "--data-dir", "/var/lib/sgrid", "--token", "s3cret"], { encoding: "utf8" });
      expect(unit).to.match(/^KillMode=process$/m);
      expect(unit).to.match(/^ExecStart=\/usr\/local\/bin\/sgrid node --data-dir \/var\/lib\/sgrid --registry reg1:9500,reg2:9500 --name node-7$/m);
      expect(unit).to.not.contain("s3cret");
      expect(unit).to.not.match(/^Delegate=/m);
      expect(systemdUnitFor({ systemdExec: "/opt/sgrid/bin/sgrid" }, {})).to.match(/^ExecStart=\/opt\/sgrid\/bin\/sgrid node /m);
      const tlsUnit = systemdUnitFor({ registry: "grpcs://reg1:9500", tlsCa: "/etc/sgrid/ca.pem", name: "node-7" }, {});
      expect(tlsUnit).to.match(/^ExecStart=\S+ node --data-dir \/var\/lib\/sgrid --registry grpcs:\/\/reg1:9500 --tls-ca \/etc\/sgrid\/ca.pem --name node-7$/m);
    });

    it("takes grpcs:// and sgrid(s):// registries and refuses other schemes with CONFIG_INVALID", () => {
      const opts = resolveNodeCliOptions({ registry: "grpcs://reg1:9500, reg2:9500, sgrid://reg3:9501, sgrids://reg4:9501" }, {});
      expect(opts.registry).to.deep.equal(["grpcs://reg1:9500", "reg2:9500", "sgrid://reg3:9501", "sgrids://reg4:9501"]);
      expect(() => new NodeAgent(opts)).to.not.throw();
      for (const bad of ["https://reg1:9500", "tcp://reg1:9500", "sgrid://reg1"]) {
        expect(() => new NodeAgent({ ...opts, registry: [bad] }), bad).to.throw(ConfigError, /invalid node agent option registry\.0: must be host:port, grpcs:\/\/host:port \(TLS\), or sgrid:\/\/host:port/);
      }
    });
  });

  describe("the agent process", () => {
    const h = new AgentHarness();
    const ids = [301, 302, 303];
    const ports: number[] = [];
    let child: ChildProcess | undefined;
    let cfg: string;
    let stderr = "";
    let stdout = "";

    function startAgent(): ChildProcess {
      stderr = "";
      stdout = "";
      const c = spawn(process.execPath, [CLI, "node", "--registry", h.registry.address, "--name", "cli-node", "--data-dir", h.dataDir,
        "--address", "127.0.0.1", "--cgroup-group", h.group, "--config", cfg], {
        env: { ...process.env, SGRID_CLUSTER_TOKEN: h.registry.token, SGRID_LOG_LEVEL: "warn" },
        stdio: ["ignore", "pipe", "pipe"],
      });
      c.stderr!.on("data", (d: Buffer) => { stderr += d.toString(); });
      c.stdout!.on("data", (d: Buffer) => { stdout += d.toString(); });
      child = c;
      return c;
    }

    async function kill9(c: ChildProcess): Promise<void> {
      if (c.exitCode !== null || c.signalCode !== null) return;
      const gone = new Promise((r) => c.once("exit", r));
      c.kill("SIGKILL");
      await gone;
    }

    async function identities(): Promise<string[]> {
      return Promise.all(ports.map(async (p) => (await httpGet(p)) ?? "none"));
    }

    before(async () => {
      await h.startRegistry();
      cfg = path.join(h.tmp, "node.yaml");
      fs.writeFileSync(cfg, [
        "process: { pollIntervalMs: 100 }",
        "supervisor: { restart: { initialDelayMs: 100, maxDelayMs: 1000, jitter: 0 }, stop: { graceMs: 1000 } }",
        "backoff: { initialMs: 100, maxMs: 500 }",
        "",
      ].join("\n"));
      const p = h.registry.addPatch({ id: 1, version: 3, data: await binaryPackage(h.pkgDir, "Demo", "CliServer", "3") });
      const instances = [];
      for (const id of ids) {
        const port = await freePort();
        ports.push(port);
        instances.push(desiredInstance({
          instanceId: id, application: "Demo", server: "CliServer", type: "binary",
          adapters: [{ obj: "HttpObj", host: "127.0.0.1", port, protocol: "grpc", weight: 100 }],
          env: { NODE_BIN: process.execPath },
          launch: { args: [h.marker], jvmOptions: [], nodeOptions: [], entry: "", runAsUser: "", stopSignal: "", stopGraceMs: 0, keepaliveTimeoutMs: 0 },
          patch: { id: p.id, version: p.version, sha256: p.sha256, size: p.size },
        }));
      }
      h.registry.setInstances(instances);
    });

    after(async () => {
      if (child) await kill9(child);
      await h.teardown();
    });

    it("starts the servants the registry places, reporting them active", async () => {
      startAgent();
      await waitFor(`agent started (stderr: ${stderr.slice(-300)})`, () => /sgrid node: started node=cli-node agent=127\.0\.0\.1:\d+ cgroups=\w+/.test(stdout), 15_000);
      for (const id of ids) await h.registry.waitObserved(`instance ${id} active`, (o) => o.instanceId === id && o.state === "active" && o.version === 3, 30_000);
      const answers = await waitFor("every servant answers", async () => ((await identities()).every((a) => a !== "none") ? identities() : undefined), 20_000);
      ids.forEach((id, i) => expect(answers[i]).to.contain(`instance ${id} pid`));
      expect(liveProcessesWith(h.marker)).to.have.length(3);
    });

    it("after kill -9 of the agent the servants keep serving; a restarted agent without a registry re-adopts them without duplicates", async () => {
      const before = await identities();
      const pidsBefore = liveProcessesWith(h.marker).sort();
      await kill9(child!);
      expect(await identities(), "still serving with the agent dead").to.deep.equal(before);
      await h.registry.stop();

      startAgent();
      await waitFor(`agent started again (stderr: ${stderr.slice(-300)})`, () => /sgrid node: started node=cli-node/.test(stdout), 15_000);
      // Let the new agent adopt: every servant is still the same process, and no second one appears.
      await waitFor("same processes after re-adoption", async () => {
        const now = liveProcessesWith(h.marker).sort();
        return JSON.stringify(now) === JSON.stringify(pidsBefore) && JSON.stringify(await identities()) === JSON.stringify(before);
      }, 10_000);

      // A servant killed now is restarted by the new agent (which knows it only from its state files).
      const victim = pidsBefore[0]!;
      process.kill(victim, "SIGKILL");
      await waitFor("the killed servant replaced", async () => {
        const now = liveProcessesWith(h.marker);
        return now.length === 3 && !now.includes(victim) ? true : undefined;
      }, 20_000);
      const after = await waitFor("every servant answers again", async () => ((await identities()).every((a) => a !== "none") ? identities() : undefined), 20_000);
      expect(after.filter((a, i) => a !== before[i])).to.have.length(1);

      // The registry comes back: the agent reconnects and reports the adopted and the restarted servants.
      const hellos = h.registry.hellos.length;
      const batches = h.registry.batches.length;
      await h.registry.start();
      await waitFor("hello again", () => h.registry.hellos.length > hellos, 20_000);
      const full = await waitFor("full observed state", () => h.registry.batches.slice(batches).find((b) => b.full), 10_000);
      const reported = full.instances.filter((o) => ids.includes(o.instanceId));
      expect(reported.map((o) => o.state)).to.deep.equal(["active", "active", "active"]);
      expect(reported.map((o) => o.pid).sort()).to.deep.equal(liveProcessesWith(h.marker).sort());
      expect(liveProcessesWith(h.marker)).to.have.length(3);
    });

    it("SIGTERM stops the agent and leaves the servants running", async () => {
      const before = liveProcessesWith(h.marker).sort();
      const c = child!;
      const exited = new Promise<number | null>((r) => c.once("exit", (code) => r(code)));
      c.kill("SIGTERM");
      expect(await exited).to.equal(0);
      expect(liveProcessesWith(h.marker).sort()).to.deep.equal(before);
    });
  });

  describe("what the agent's servants inherit", () => {
    const h = new AgentHarness();
    let child: ChildProcess | undefined;
    after(async () => {
      if (child && child.exitCode === null) {
        const gone = new Promise((r) => child!.once("exit", r));
        child.kill("SIGTERM");
        await gone;
      }
      await h.teardown();
    });

    it("a node servant gets neither the agent's own environment (NODE_OPTIONS, malloc tuning, SGRID_AGENT_BUNDLE) nor its V8 flags", async () => {
      await h.startRegistry();
      const report = path.join(h.tmp, "servant-env.json");
      // The servant writes what it got: its environment, its node flags, V8's young-generation growth (the agent's own is 1) and whether V8 optimizes (not in the agent), cli/agent-v8.ts.
      const main = `${OPTIMIZES_SOURCE}\nconst v8 = require("v8"); const a = []; for (let i = 0; i < 40000; i++) a.push({ i, s: "x".repeat(64) }); v8.setFlagsFromString("--allow-natives-syntax"); ` +
        `require("fs").writeFileSync(${JSON.stringify(report)}, JSON.stringify({ env: process.env, execArgv: process.execArgv, young: v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_size, optimizes: optimizes(), marker: process.argv[2] }));\n` +
        `setInterval(() => {}, 1000); process.on("SIGTERM", () => process.exit(0));\n`;
      const file = await writePackage(h.pkgDir, "Demo.EnvServer-1.tgz", { "sgrid.json": JSON.stringify({ app: "Demo", server: "EnvServer", type: "node", entry: "main.js", version: "1" }), "main.js": main });
      const p = h.registry.addPatch({ id: 7, version: 1, data: fs.readFileSync(file) });
      h.registry.setInstances([desiredInstance({
        instanceId: 701, application: "Demo", server: "EnvServer", type: "node",
        launch: { args: [h.marker], jvmOptions: [], nodeOptions: [], entry: "", runAsUser: "", stopSignal: "", stopGraceMs: 0, keepaliveTimeoutMs: 0 },
        patch: { id: p.id, version: p.version, sha256: p.sha256, size: p.size },
      })]);
      child = spawn(process.execPath, ["--max-old-space-size=300", CLI, "node", "--registry", h.registry.address, "--name", "env-node", "--data-dir", h.dataDir,
        "--address", "127.0.0.1", "--cgroup-group", h.group], {
        env: { ...process.env, SGRID_CLUSTER_TOKEN: h.registry.token, SGRID_LOG_LEVEL: "warn", NODE_OPTIONS: "--max-semi-space-size=2", MALLOC_ARENA_MAX: "2", MALLOC_TRIM_THRESHOLD_: "131072", SGRID_AGENT_BUNDLE: "1" },
        stdio: ["ignore", "ignore", "pipe"],
      });
      let stderr = "";
      child.stderr!.on("data", (d: Buffer) => { stderr += d.toString(); });
      const got = await waitFor(`the servant's report (agent stderr: ${stderr.slice(-300)})`, () => {
        try {
          return JSON.parse(fs.readFileSync(report, "utf8")) as { env: Record<string, string>; execArgv: string[]; young: number; optimizes: boolean; marker: string };
        } catch {
          return undefined;
        }
      }, 30_000);
      expect(got.marker).to.equal(h.marker);
      expect(got.env.SGRID_APP).to.equal("Demo");
      expect(Object.keys(got.env).filter((k) => /^(NODE_OPTIONS|MALLOC_|SGRID_AGENT_BUNDLE$|SGRID_CLUSTER_TOKEN$|SGRID_LOG_LEVEL$)/.test(k))).to.deep.equal([]);
      expect(got.execArgv).to.deep.equal([]);
      // 40,000 objects alive: with V8's own growth factor the young generation has grown past the agent's 1 MB per semi-space.
      expect(got.young, "the servant's young generation, both semi-spaces").to.be.above(2 * 1024 * 1024);
      expect(got.optimizes, "V8 optimizes the servant's hot code").to.equal(true);
    });
  });
});

function spawnSync(args: string[], env: Record<string, string>): { status: number | null; stderr: string } {
  const r = require("node:child_process").spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, encoding: "utf8" });
  return { status: r.status as number | null, stderr: String(r.stderr) };
}
