/**
 * `sgrid` loads what it runs: `sgrid --help`, `sgrid gen` and `sgrid create`
 * never load the platform's heavy modules (knex, koa, SQLite, MySQL), and
 * `sgrid --help` loads no sub-command at all; `sgrid node` (the agent, on
 * every machine) loads neither those nor what only some servants use
 * (Prometheus metrics, reflection's descriptors, YAML, tar before an
 * install, OpenTelemetry without an SDK). Checked by running the real CLI
 * with a preload that records every module the process loaded.
 */
import { expect } from "chai";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { CLI, FIXTURES, outputDir } from "../helpers/paths";
import { AgentHarness } from "../nodeagent/helpers/agent-harness";
import { OPTIMIZES_SOURCE } from "../helpers/v8-tier";
import { waitFor } from "../helpers/wait";

const HEAVY = /[\\/]node_modules[\\/](knex|koa|@koa[\\/]router|better-sqlite3|mysql2)[\\/]/;

/** What the agent needs none of while it runs without instances: zod (its own options are checked without it, nodeagent/lazy-schema.ts), packages a servant may use, or an install (@bufbuild/protobuf's wire part, which generated code uses, is allowed; its descriptors and reflection are not). */
const NOT_IN_AGENT = /[\\/]node_modules[\\/](zod|prom-client|@opentelemetry[\\/]api|yaml|tar)[\\/]|[\\/]@bufbuild[\\/]protobuf[\\/]dist[\\/]cjs[\\/](wkt[\\/])?index\.js$/;

/** A preload that writes the paths of every module the process loaded to a file when it exits. */
/**
 * A preload that records, at exit, the modules loaded and the young generation's size, and (when the process runs with
 * --allow-natives-syntax) whether V8 would optimize a hot function: loop it until V8's optimizing compiler has it, or long enough that it would have.
 */
function recorder(): { dir: string; preload: string; read: () => string[]; newSpace: () => number; optimizes: () => boolean | undefined } {
  const dir = outputDir("lazy");
  const record = path.join(dir, "modules.json");
  const preload = path.join(dir, "record.js");
  fs.writeFileSync(preload, `${OPTIMIZES_SOURCE}\nprocess.on("exit", () => require("fs").writeFileSync(${JSON.stringify(record)}, JSON.stringify({ modules: Object.keys(require.cache), newSpace: require("v8").getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_size, optimizes: process.execArgv.includes("--allow-natives-syntax") ? optimizes() : undefined })));\n`);
  const file = () => JSON.parse(fs.readFileSync(record, "utf8")) as { modules: string[]; newSpace: number; optimizes?: boolean };
  return { dir, preload, read: () => file().modules, newSpace: () => file().newSpace, optimizes: () => file().optimizes };
}

/** Runs `sgrid args` and returns the status and the absolute paths of every module it loaded. */
function loadedBy(args: string[], cwd: string): { status: number | null; stderr: string; modules: string[] } {
  const { dir, preload, read } = recorder();
  const res = spawnSync(process.execPath, ["-r", preload, CLI, ...args], { cwd, encoding: "utf8", env: { ...process.env, SGRID_LOG_LEVEL: "warn" } });
  const modules = read();
  fs.rmSync(dir, { recursive: true, force: true });
  return { status: res.status, stderr: res.stderr, modules };
}

describe("sgrid loads only what it runs", function () {
  this.timeout(60_000);
  let out: string;
  before(() => {
    out = outputDir("lazy-cli");
  });

  it("sgrid --help lists every command without loading any of them", () => {
    const res = loadedBy(["--help"], out);
    expect(res.status, res.stderr).to.equal(0);
    const cliModules = res.modules.filter((m) => m.includes(`${path.sep}dist${path.sep}cli${path.sep}`));
    expect(cliModules.map((m) => path.basename(m))).to.deep.equal(["main.js"]);
    expect(res.modules.filter((m) => HEAVY.test(m))).to.deep.equal([]);
  });

  it("sgrid gen loads the code generator, not the platform", () => {
    const res = loadedBy(["gen", "-I", path.join(FIXTURES, "protos"), path.join(FIXTURES, "protos/demo/echo.proto"), "--out", path.join(out, "gen")], out);
    expect(res.status, res.stderr).to.equal(0);
    expect(fs.existsSync(path.join(out, "gen/demo/echo.sgrid.ts"))).to.equal(true);
    expect(res.modules.some((m) => m.endsWith(`${path.sep}codegen${path.sep}gen.js`)), "the generator loaded").to.equal(true);
    expect(res.modules.filter((m) => HEAVY.test(m))).to.deep.equal([]);
  });

  it("sgrid create scaffolds without loading the platform", () => {
    const res = loadedBy(["create", "Demo.LazyServer", "--dir", path.join(out, "LazyServer"), "--from-registry"], out);
    expect(res.status, res.stderr).to.equal(0);
    expect(fs.existsSync(path.join(out, "LazyServer/package.json"))).to.equal(true);
    expect(res.modules.filter((m) => HEAVY.test(m))).to.deep.equal([]);
  });

  it("every command of the table loads and answers --help (each module registers its own command only)", () => {
    const { COMMANDS } = require("../../cli/main") as typeof import("../../cli/main");
    for (const name of Object.keys(COMMANDS)) {
      const res = spawnSync(process.execPath, [CLI, name, "--help"], { cwd: out, encoding: "utf8" });
      expect(res.status, `${name}: ${res.stderr}`).to.equal(0);
      expect(res.stdout, name).to.match(new RegExp(`^Usage: sgrid ${name} `));
    }
  });

  it("sgrid registry --help loads the registry (the table is not a stand-in)", () => {
    const res = loadedBy(["registry", "--help"], out);
    expect(res.status, res.stderr).to.equal(0);
    expect(res.modules.some((m) => m.endsWith(`${path.sep}cli${path.sep}registry.js`))).to.equal(true);
  });

  describe("sgrid node", () => {
    const h = new AgentHarness();
    before(() => h.startRegistry());
    after(() => h.teardown());

    /** Runs `sgrid node` (`env` added) until its first heartbeat; the modules it loaded. */
    async function agentModules(name: string, env: NodeJS.ProcessEnv): Promise<{ modules: string[]; youngBytes: number }> {
      const { dir, preload, read, newSpace, optimizes } = recorder();
      // --trace-opt: V8 prints each function it optimizes, from the process's first line on.
      const agent = spawn(process.execPath, ["--allow-natives-syntax", "--trace-opt", "-r", preload, CLI, "node", "--registry", h.registry.address, "--name", name,
        "--data-dir", path.join(h.dataDir, name), "--address", "127.0.0.1", "--cgroup-group", h.group], {
        env: { ...process.env, SGRID_CLUSTER_TOKEN: h.registry.token, SGRID_LOG_LEVEL: "warn", ...env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stderr = "";
      agent.stderr!.on("data", (d: Buffer) => { stderr += d.toString(); });
      let stdout = "";
      agent.stdout!.on("data", (d: Buffer) => { stdout += d.toString(); });
      const exited = new Promise<number | null>((r) => agent.once("exit", (code) => r(code)));
      const beats = h.registry.heartbeats.length;
      try {
        await waitFor("the agent's hello", () => h.registry.hellos.some((hello) => hello.node === name), 30_000);
        await waitFor("the agent's first heartbeat", () => h.registry.heartbeats.length > beats, 30_000);
      } finally {
        agent.kill("SIGTERM");
      }
      expect(await exited, stderr).to.equal(0);
      const modules = read();
      const youngBytes = newSpace();
      const optimized = optimizes();
      fs.rmSync(dir, { recursive: true, force: true });
      // cli/agent-v8.ts: no optimizing compiler in the agent (its code would stay resident, ~3.7 MB).
      expect(optimized, "V8 optimized a hot function in the agent").to.equal(false);
      expect(stdout.split("\n").filter((l) => l.startsWith("[completed optimizing")), "functions V8 optimized in the agent").to.deep.equal([]);
      // cli/agent-v8.ts: the young generation stays at its first size, 1 MB per semi-space (V8 grows it to 16 MB per semi-space otherwise).
      expect(youngBytes, "the agent's young generation, both semi-spaces").to.be.at.most(2 * 1024 * 1024);
      expect(modules.filter((m) => HEAVY.test(m))).to.deep.equal([]);
      expect(modules.filter((m) => NOT_IN_AGENT.test(m))).to.deep.equal([]);
      return { modules, youngBytes };
    }

    it("with SGRID_AGENT_BUNDLE=1 runs the agent from its bundle: one file, connected to its registry, without the platform's heavy modules or a servant's extras", async () => {
      const { modules } = await agentModules("lazy-node", { SGRID_AGENT_BUNDLE: "1" });
      const loaded = modules.filter((m) => !m.endsWith("record.js")).map((m) => path.relative(path.dirname(CLI), m).split(path.sep).join("/"));
      // agent-v8.js: the agent's V8 settings, applied before anything else (cli/main.ts).
      expect(loaded.sort()).to.deep.equal(["../../package.json", "agent-bundle.js", "agent-v8.js", "agent.bundle.js", "main.js"]);
      // What the bundle holds (esbuild names each module it bundled in a comment): none of the heavy modules nor a servant's extras, which stay
      // required on demand; yaml is there for the agent's own --config file (initialised only when one is given, scripts/bundle-agent.js).
      const bundled = [...fs.readFileSync(path.join(path.dirname(CLI), "agent.bundle.js"), "utf8").matchAll(/^\/\/ (\S+)$/gm)].map((m) => `/${m[1]}`);
      expect(bundled.some((m) => m.endsWith("/nodeagent/agent/node-agent.js")), "the agent is in the bundle").to.equal(true);
      expect(bundled.some((m) => m.includes("/node_modules/yaml/")), "yaml for --config").to.equal(true);
      expect(bundled.filter((m) => HEAVY.test(m) || (NOT_IN_AGENT.test(m) && !m.includes("/node_modules/yaml/")) || /[\\/]node_modules[\\/]@grpc[\\/]proto-loader[\\/]/.test(m))).to.deep.equal([]);
    });

    it("runs the agent from dist/ by default, loading the same modules lazily", async () => {
      const { modules } = await agentModules("lazy-node-unbundled", {});
      expect(modules.some((m) => m.endsWith(`${path.sep}nodeagent${path.sep}agent${path.sep}node-agent.js`)), "the agent loaded").to.equal(true);
      expect(modules.some((m) => m.endsWith("agent.bundle.js"))).to.equal(false);
    });
  });
});
