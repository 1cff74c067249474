/**
 * `sgrid` loads what it runs: `sgrid --help`, `sgrid gen` and `sgrid create`
 * never load the platform's heavy modules (knex, koa, SQLite, MySQL), and
 * `sgrid --help` loads no sub-command at all. Checked by running the real
 * CLI with a preload that records every module the process loaded.
 */
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { CLI, FIXTURES, outputDir } from "../helpers/paths";

const HEAVY = /[\\/]node_modules[\\/](knex|koa|@koa[\\/]router|better-sqlite3|mysql2)[\\/]/;

/** Runs `sgrid args` and returns the status and the absolute paths of every module it loaded. */
function loadedBy(args: string[], cwd: string): { status: number | null; stderr: string; modules: string[] } {
  const dir = outputDir("lazy");
  const record = path.join(dir, "modules.json");
  const preload = path.join(dir, "record.js");
  fs.writeFileSync(preload, `process.on("exit", () => require("fs").writeFileSync(${JSON.stringify(record)}, JSON.stringify(Object.keys(require.cache))));\n`);
  const res = spawnSync(process.execPath, ["-r", preload, CLI, ...args], { cwd, encoding: "utf8", env: { ...process.env, SGRID_LOG_LEVEL: "warn" } });
  const modules = JSON.parse(fs.readFileSync(record, "utf8")) as string[];
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
});
