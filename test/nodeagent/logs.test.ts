import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LogRotator, rotateFile, tail } from "../../nodeagent/logs";
import { waitFor } from "../helpers/wait";


describe("nodeagent/logs", () => {
  let tmp: string;
  const children: ChildProcess[] = [];

  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sgrid-logs-"));
  });

  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("rotates the file of a detached writer by copy-then-truncate, keeping N copies and never a sparse file", async () => {
    const file = path.join(tmp, "out.log");
    // The servant's side, as the supervisor sets it up: stdout is a file opened O_APPEND, not a pipe.
    const fd = fs.openSync(file, "a");
    const child = spawn(process.execPath, ["-e", `
      let i = 0;
      const line = (n) => 'line ' + String(n).padStart(8, '0') + ' ' + 'x'.repeat(90) + '\\n';
      const t = setInterval(() => { for (let k = 0; k < 20; k++) process.stdout.write(line(i++)); }, 2);
      process.on('SIGTERM', () => { clearInterval(t); process.exit(0); });
    `], { detached: true, stdio: ["ignore", fd, "ignore"] });
    fs.closeSync(fd);
    children.push(child);

    const rotator = new LogRotator({ maxBytes: 20_000, keep: 3, intervalMs: 20 });
    const rotated: string[] = [];
    rotator.on("rotated", (f: string) => rotated.push(f));
    rotator.add(file);
    rotator.start();
    await waitFor("rotated.length >= 5", () => rotated.length >= 5);
    rotator.stop();
    await waitFor("fs.statSync(file).size > 0", () => fs.statSync(file).size > 0);
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));

    const names = fs.readdirSync(tmp).sort();
    expect(names).to.deep.equal(["out.log", "out.log.1", "out.log.2", "out.log.3"]);
    let last = -1;
    for (const name of ["out.log.3", "out.log.2", "out.log.1", "out.log"]) {
      const text = fs.readFileSync(path.join(tmp, name), "utf8");
      expect(text.includes("\0"), `${name} has no hole of NULs`).to.equal(false);
      // A copy may end inside a line the writer was appending while it was taken; that tail is dropped.
      const whole = text.slice(0, text.lastIndexOf("\n") + 1);
      const nums = whole.split("\n").filter(Boolean).map((l) => {
        expect(l, `${name}: whole lines only`).to.match(/^line \d{8} x{90}$/);
        return Number(l.slice(5, 13));
      });
      expect(nums.length, name).to.be.greaterThan(0);
      for (const n of nums) {
        expect(n, `${name}: lines in order across files`).to.be.greaterThan(last);
        last = n;
      }
    }
    expect(fs.statSync(path.join(tmp, "out.log.1")).size).to.be.greaterThan(20_000);
  });

  it("shifts copies, drops those beyond keep, and leaves a missing file alone", async () => {
    const file = path.join(tmp, "err.log");
    expect(await rotateFile(file, { keep: 2 })).to.equal(false);
    for (const n of ["a", "b", "c"]) {
      fs.writeFileSync(file, n);
      expect(await rotateFile(file, { keep: 5 })).to.equal(true);
    }
    expect(fs.readFileSync(file, "utf8")).to.equal("");
    expect(["err.log.1", "err.log.2", "err.log.3"].map((f) => fs.readFileSync(path.join(tmp, f), "utf8"))).to.deep.equal(["c", "b", "a"]);
    fs.writeFileSync(file, "d");
    await rotateFile(file, { keep: 2 });
    expect(fs.readdirSync(tmp).sort()).to.deep.equal(["err.log", "err.log.1", "err.log.2"]);
    expect(fs.readFileSync(path.join(tmp, "err.log.2"), "utf8")).to.equal("c");
    fs.writeFileSync(file, "e");
    await rotateFile(file, { keep: 0 });
    expect(fs.readdirSync(tmp).sort()).to.deep.equal(["err.log"]);
    expect(fs.statSync(file).size).to.equal(0);

    const small = new LogRotator({ maxBytes: 100, keep: 1 });
    small.add(file);
    small.add(path.join(tmp, "never-created.log"));
    fs.writeFileSync(file, "x".repeat(100));
    expect(await small.check(), "not over the limit").to.deep.equal([]);
    fs.appendFileSync(file, "y");
    expect(await small.check()).to.deep.equal([file]);
  });

  it("tails the last lines without reading the whole file", async () => {
    const file = path.join(tmp, "big.log");
    // A 16 GiB sparse file: reading it whole would never finish; tail must only touch its end.
    const fd = fs.openSync(file, "w");
    fs.ftruncateSync(fd, 16 * 1024 * 1024 * 1024);
    fs.closeSync(fd);
    fs.appendFileSync(file, "\nfirst\nsecond ünïcödé\nthird\n");
    expect(await tail(file, 2)).to.deep.equal(["second ünïcödé", "third"]);
    expect(await tail(file, 3)).to.deep.equal(["first", "second ünïcödé", "third"]);
  });

  it("tails small files, files without a final newline, and bounds by maxBytes", async () => {
    const file = path.join(tmp, "out.log");
    expect(await tail(file, 10), "missing file").to.deep.equal([]);
    fs.writeFileSync(file, "");
    expect(await tail(file, 10)).to.deep.equal([]);
    fs.writeFileSync(file, "a\nb\nc");
    expect(await tail(file, 2)).to.deep.equal(["b", "c"]);
    expect(await tail(file, 10)).to.deep.equal(["a", "b", "c"]);
    const many = Array.from({ length: 200_000 }, (_, i) => `line ${i}`).join("\n") + "\n";
    fs.writeFileSync(file, many);
    expect(await tail(file, 3)).to.deep.equal(["line 199997", "line 199998", "line 199999"]);
    const bounded = await tail(file, 10_000, { maxBytes: 100 });
    expect(bounded.length).to.be.lessThan(12);
    expect(bounded[bounded.length - 1]).to.equal("line 199999");
    for (const l of bounded) expect(l).to.match(/^line \d+$/);
    expect(() => tail(file, -1)).to.throw(TypeError);
  });
});
