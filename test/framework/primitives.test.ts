/**
 * The shared primitives (framework/primitives): each behaves as its
 * contract says, including the edges the copies it replaces got wrong or
 * never handled (overlapping periodic runs, a rejection blocking a key,
 * a failed write leaving a temp file).
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as path from "node:path";
import { AsyncQueue, Backoff, KeyedMutex, LatestWriter, Mutex, PeriodicTask, readFileIfExists, readFileIfExistsSync, writeFileAtomic } from "sgridnext";
import { outputDir } from "../helpers/paths";
import { pollUntil } from "../helpers/wait";

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

describe("primitives", () => {
  describe("Backoff", () => {
    it("grows by the multiplier up to the cap, jitter within its band, and starts over after reset()", () => {
      const mid = new Backoff({ initialMs: 100, maxMs: 1000, multiplier: 2, jitter: 0.2 }, () => 0.5);
      expect([1, 2, 3, 4, 5, 6].map(() => mid.next())).to.deep.equal([100, 200, 400, 800, 1000, 1000]);
      expect(mid.attempts).to.equal(6);
      mid.reset();
      expect(mid.next()).to.equal(100);
      const low = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0.2 }, () => 0);
      const high = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0.2 }, () => 0.999999);
      expect(low.next()).to.equal(80);
      expect(high.next()).to.equal(120);
      for (let i = 0; i < 10; i++) high.next();
      expect(high.next(), "jitter never passes the cap").to.equal(1000);
    });

    it("refuses a policy that cannot work", () => {
      for (const bad of [{ initialMs: -1 }, { initialMs: 100, maxMs: 50 }, { multiplier: 0.5 }, { jitter: 1.5 }, { jitter: -0.1 }, { maxMs: Number.NaN }]) {
        expect(() => new Backoff(bad), JSON.stringify(bad)).to.throw(TypeError, /invalid backoff policy/);
      }
    });
  });

  describe("AsyncQueue", () => {
    it("delivers in order what was pushed before and after the consumer waits, then ends on close()", async () => {
      const q = new AsyncQueue<number>();
      q.push(1);
      q.push(2);
      const got: number[] = [];
      const done = (async () => { for await (const v of q) got.push(v); })();
      await tick();
      q.push(3);
      q.close();
      expect(q.push(4), "ignored after close").to.equal(false);
      await done;
      expect(got).to.deep.equal([1, 2, 3]);
    });

    it("fail() rejects the waiting consumer at once and drops what was queued", async () => {
      const q = new AsyncQueue<number>();
      const it = q[Symbol.asyncIterator]();
      const waiting = it.next();
      q.fail(new Error("boom"));
      await waiting.then(() => expect.fail("resolved"), (err: Error) => expect(err.message).to.equal("boom"));
      const q2 = new AsyncQueue<number>();
      q2.push(1);
      q2.fail(new Error("late"));
      expect(q2.size).to.equal(0);
      await q2[Symbol.asyncIterator]().next().then(() => expect.fail("resolved"), (err: Error) => expect(err.message).to.equal("late"));
    });

    it("keeps its memory bounded by what is queued when a long stream flows through it", async () => {
      const q = new AsyncQueue<number>();
      const it = q[Symbol.asyncIterator]();
      let sum = 0;
      for (let i = 0; i < 10_000; i++) {
        q.push(i);
        q.push(i);
        sum += (await it.next()).value as number;
      }
      expect(q.size).to.equal(10_000);
      while (q.size > 0) sum += (await it.next()).value as number;
      expect(sum).to.equal(2 * (9999 * 10_000) / 2);
    });
  });

  describe("writeFileAtomic", () => {
    let dir: string;
    before(() => {
      dir = outputDir("atomic");
    });

    it("replaces the whole file, creates its folder, uses the mode asked for, and leaves no temp file", async () => {
      const file = path.join(dir, "a/b/state.json");
      await writeFileAtomic(file, "one");
      await writeFileAtomic(file, Buffer.from("two"), { mode: 0o640 });
      expect(fs.readFileSync(file, "utf8")).to.equal("two");
      expect(fs.statSync(file).mode & 0o777, "the mode of the last write").to.equal(0o640);
      expect(fs.readdirSync(path.dirname(file))).to.deep.equal(["state.json"]);
      expect(await readFileIfExists(file)).to.equal("two");
      expect(await readFileIfExists(path.join(dir, "nope"))).to.equal(undefined);
      expect(readFileIfExistsSync(file)).to.equal("two");
      expect(readFileIfExistsSync(path.join(dir, "nope"))).to.equal(undefined);
    });

    it("rejects when it cannot write, keeping the old content and no temp file", async () => {
      const file = path.join(dir, "locked/state.json");
      await writeFileAtomic(file, "old");
      fs.chmodSync(path.dirname(file), 0o500);
      try {
        if (process.getuid?.() === 0) {
          // root ignores the mode: make the target a directory instead, which rename cannot replace with a file
          fs.chmodSync(path.dirname(file), 0o700);
          const blocked = path.join(dir, "blocked");
          fs.mkdirSync(path.join(blocked, "state.json", "x"), { recursive: true });
          await writeFileAtomic(path.join(blocked, "state.json"), "new").then(() => expect.fail("wrote"), (err: NodeJS.ErrnoException) => expect(err.code).to.be.oneOf(["EISDIR", "ENOTEMPTY", "EEXIST"]));
          expect(fs.readdirSync(blocked)).to.deep.equal(["state.json"]);
        } else {
          await writeFileAtomic(file, "new").then(() => expect.fail("wrote"), (err: NodeJS.ErrnoException) => expect(err.code).to.equal("EACCES"));
        }
      } finally {
        fs.chmodSync(path.dirname(file), 0o700);
      }
      expect(fs.readFileSync(file, "utf8")).to.equal("old");
    });

    it("LatestWriter writes only the latest content of a burst, one write at a time", async () => {
      const file = path.join(dir, "latest.json");
      const errors: unknown[] = [];
      const w = new LatestWriter((_f, err) => errors.push(err));
      for (let i = 0; i < 50; i++) w.write(file, String(i));
      await w.flush();
      expect(fs.readFileSync(file, "utf8")).to.equal("49");
      expect(errors).to.deep.equal([]);
    });
  });

  describe("KeyedMutex", () => {
    it("runs work for one key one at a time in order, other keys at once, and a rejection never blocks the key", async () => {
      const m = new KeyedMutex();
      const log: string[] = [];
      let releaseA!: () => void;
      const a1 = m.run("a", () => new Promise<void>((r) => { log.push("a1 start"); releaseA = () => { log.push("a1 end"); r(); }; }));
      const a2 = m.run("a", async () => { log.push("a2"); throw new Error("a2 failed"); });
      const a3 = m.run("a", () => { log.push("a3"); return 3; });
      const b1 = m.run("b", () => { log.push("b1"); return "b"; });
      expect(await b1).to.equal("b");
      expect(m.isLocked("a")).to.equal(true);
      releaseA();
      await a1;
      await a2.then(() => expect.fail("resolved"), (err: Error) => expect(err.message).to.equal("a2 failed"));
      expect(await a3).to.equal(3);
      expect(log).to.deep.equal(["a1 start", "b1", "a1 end", "a2", "a3"]);
      await tick();
      expect(m.size, "no memory for idle keys").to.equal(0);
    });

    it("Mutex: one key, in call order, unlocked once idle", async () => {
      const m = new Mutex();
      const log: number[] = [];
      const runs = [3, 1, 2].map((ms, i) => m.run(async () => { await tick(ms); log.push(i); return i; }));
      expect(m.isLocked).to.equal(true);
      expect(await Promise.all(runs)).to.deep.equal([0, 1, 2]);
      expect(log).to.deep.equal([0, 1, 2]);
      await tick();
      expect(m.isLocked).to.equal(false);
    });
  });

  describe("PeriodicTask", () => {
    it("never overlaps a slow run, goes on after a failure, and stop() waits for the run in flight", async () => {
      let active = 0;
      let maxActive = 0;
      let runs = 0;
      const errors: unknown[] = [];
      let release: (() => void) | undefined;
      const task = new PeriodicTask(async () => {
        runs++;
        active++;
        maxActive = Math.max(maxActive, active);
        try {
          if (runs === 2) throw new Error("second run fails");
          if (runs === 4) await new Promise<void>((r) => { release = r; });
          else await tick(15);
        } finally {
          active--;
        }
      }, { intervalMs: 5, initialDelayMs: 0, onError: (e) => errors.push(e) });
      task.start();
      await pollUntil("the fourth run to start", () => release !== undefined, { timeoutMs: 5000, everyMs: 5 });
      let stopped = false;
      const stopping = task.stop().then(() => { stopped = true; });
      await tick(30);
      expect(stopped, "stop() waits for the run in flight").to.equal(false);
      release!();
      await stopping;
      const after = runs;
      await tick(40);
      expect(runs, "no run after stop()").to.equal(after);
      expect(maxActive).to.equal(1);
      expect(errors.map((e) => (e as Error).message)).to.deep.equal(["second run fails"]);
      expect(task.running).to.equal(false);
    });

    it("stopped and started again while a run is in flight, it still runs one at a time", async () => {
      let active = 0;
      let maxActive = 0;
      let runs = 0;
      let release: (() => void) | undefined;
      const task = new PeriodicTask(async () => {
        runs++;
        active++;
        maxActive = Math.max(maxActive, active);
        try {
          if (runs === 1) await new Promise<void>((r) => { release = r; });
          else await tick(2);
        } finally {
          active--;
        }
      }, { intervalMs: 3, initialDelayMs: 0 });
      task.start();
      await pollUntil("the first run to start", () => release !== undefined, { timeoutMs: 5000, everyMs: 2 });
      void task.stop();
      task.start();
      await tick(20);
      expect(runs, "nothing new starts beside the run in flight").to.equal(1);
      release!();
      await pollUntil("runs to go on", () => runs >= 5, { timeoutMs: 5000, everyMs: 2 });
      await task.stop();
      expect(maxActive).to.equal(1);
    });

    it("refuses a bad interval", () => {
      expect(() => new PeriodicTask(() => undefined, { intervalMs: 0 })).to.throw(TypeError, /intervalMs/);
      expect(() => new PeriodicTask(() => undefined, { intervalMs: Number.POSITIVE_INFINITY })).to.throw(TypeError, /intervalMs/);
    });
  });
});
