/**
 * Run folders under test-output/ (helpers/paths.ts outputDir) do not pile
 * up: a folder is removed once the test or suite that made it passed, kept
 * and named in the failure when it failed (helpers/output.ts), and the
 * folders of a run that was killed are removed by the next run's sweep
 * (helpers/reaper.ts).
 */
import { expect } from "chai";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT, outputDir } from "../helpers/paths";
import { reapDeadRuns } from "../helpers/reaper";
import { pollUntil } from "../helpers/wait";

const MOCHA = path.join(REPO_ROOT, "node_modules/mocha/bin/mocha.js");
const FIXTURE = path.join(REPO_ROOT, "dist/test/hygiene/output.fixture.js");

interface Child {
  code: Promise<number | null>;
  output: () => string;
  folders: () => Map<string, string>;
  kill: (signal: NodeJS.Signals) => void;
}

/** Runs the fixture in a child mocha (`mochaArgs` before the file); `folders` reads what it made so far. */
function runFixture(mochaArgs: string[], env: Record<string, string> = {}): Child {
  const list = path.join(outputDir("output-fixture"), "folders.txt");
  fs.writeFileSync(list, "");
  const child = spawn(process.execPath, [MOCHA, ...mochaArgs, FIXTURE], {
    cwd: REPO_ROOT, env: { ...process.env, SGRID_TEST_RUN: "", SGRID_TEST_KEEP_OUTPUT: "", OUTPUT_FIXTURE: "", OUTPUT_FOLDERS: list, ...env }, stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr.on("data", (c: Buffer) => (out += c.toString()));
  return {
    code: new Promise((resolve) => child.on("close", (code) => resolve(code))),
    output: () => out,
    folders: () => new Map(fs.readFileSync(list, "utf8").split("\n").filter(Boolean).map((l) => [l.slice(0, l.lastIndexOf(" ")), l.slice(l.lastIndexOf(" ") + 1)] as [string, string])),
    kill: (signal) => child.kill(signal),
  };
}

const KEPT = ["loading", "failing-suite-before", "failing-suite-each:fails", "failing-test", "failing-hook"];
const REMOVED = ["passing-suite-before", "passing-suite-each:one", "passing-suite-each:two", "passing-test", "failing-suite-each:passes beside it", "passing-test-beside"];

describe("test hygiene: run folders are removed when their test passes", function () {
  this.timeout(60_000);
  const made: string[] = [];
  after(() => {
    for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const [mode, args] of [["a serial run", []], ["a parallel run (what npm test runs)", ["--parallel", "--jobs", "1"]]] as const) {
    it(`${mode}: a passing test's or suite's folder is gone; a failing one's is kept and named in its failure`, async () => {
      const run = runFixture([...args]);
      expect(await run.code, run.output()).to.equal(2);
      const folders = run.folders();
      made.push(...folders.values());
      expect([...folders.keys()].sort()).to.deep.equal([...KEPT, ...REMOVED].sort());
      for (const what of REMOVED) expect(fs.existsSync(folders.get(what)!), `${what}: ${folders.get(what)}`).to.equal(false);
      for (const what of KEPT) expect(fs.existsSync(folders.get(what)!), `${what}: ${folders.get(what)}`).to.equal(true);
      // The failure says where its folders are, relative to the repository root (mocha's working directory).
      const kept = (...what: string[]) => `test output kept: ${what.map((w) => path.relative(REPO_ROOT, folders.get(w)!)).join(", ")}`;
      const out = run.output().replace(/\s+/g, " ");
      expect(out).to.include(`deliberate failure ${kept("loading", "failing-suite-before", "failing-suite-each:fails", "failing-test")}`);
      expect(out).to.include(`deliberate hook failure ${kept("loading", "failing-hook")}`);
    });
  }

  it("the process's folders (made while a file loads, or shared by later tests) are gone when the run passes", async () => {
    const run = runFixture(["--parallel", "--jobs", "1"], { OUTPUT_FIXTURE: "pass" });
    expect(await run.code, run.output()).to.equal(0);
    made.push(...run.folders().values());
    expect([...run.folders().keys()].sort()).to.deep.equal(["loading", "shared-by-tests"]);
    for (const [what, dir] of run.folders()) expect(fs.existsSync(dir), `${what}: ${dir}`).to.equal(false);
  });

  it("SGRID_TEST_KEEP_OUTPUT=1 keeps every folder", async () => {
    const run = runFixture([], { SGRID_TEST_KEEP_OUTPUT: "1" });
    expect(await run.code, run.output()).to.equal(2);
    made.push(...run.folders().values());
    for (const [what, dir] of run.folders()) expect(fs.existsSync(dir), what).to.equal(true);
  });

  it("a killed run's folders are removed by the next run's sweep", async () => {
    const run = runFixture([], { OUTPUT_FIXTURE: "wait" });
    const dir = await pollUntil("the waiting folder", () => run.folders().get("waiting"), { timeoutMs: 20_000, everyMs: 50 });
    made.push(dir);
    run.kill("SIGKILL");
    await run.code;
    expect(fs.existsSync(dir), "the killed run's folder, before the sweep").to.equal(true);
    reapDeadRuns();
    expect(fs.existsSync(dir), `the killed run's folder ${dir}, after the sweep`).to.equal(false);
  });
});
