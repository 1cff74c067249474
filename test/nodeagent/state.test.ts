/**
 * The agent's durable state: atomic replacement, coalesced writes, reload,
 * and recovery from a file that cannot be read.
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as path from "node:path";
import { StateStore, writeStateFile, StateWriteError } from "../../nodeagent";
import { makeTempDir, removeTempDir } from "./helpers/agent-test-env";

interface Rec { n: number; name?: string }

describe("nodeagent/state", () => {
  let dir: string;
  beforeEach(() => { dir = makeTempDir("sgrid-state-"); });
  afterEach(() => removeTempDir(dir));

  it("writes atomically: the file is replaced whole, mode 0600, and no temp file is left behind", async () => {
    const file = path.join(dir, "sub", "x.json");
    await writeStateFile(file, "one");
    await writeStateFile(file, "two");
    expect(fs.readFileSync(file, "utf8")).to.equal("two");
    expect(fs.statSync(file).mode & 0o777).to.equal(0o600);
    expect(fs.readdirSync(path.dirname(file))).to.deep.equal(["x.json"]);
  });

  it("reports a failed write as StateWriteError and leaves the old content", async () => {
    const file = path.join(dir, "x.json");
    await writeStateFile(file, "old");
    fs.mkdirSync(path.join(dir, "blocker"));
    try {
      await writeStateFile(path.join(dir, "blocker"), "new"); // rename over a directory fails
      expect.fail("wrote over a directory");
    } catch (err) {
      expect(err).to.be.instanceOf(StateWriteError);
    }
    expect(fs.readFileSync(file, "utf8")).to.equal("old");
    expect(fs.readdirSync(dir).sort()).to.deep.equal(["blocker", "x.json"]);
  });

  it("persists records and reads them back in a new store (an agent restart)", async () => {
    const a = new StateStore<Rec>({ dir });
    expect((await a.load()).size).to.equal(0);
    await a.set("one", { n: 1 });
    await a.set("two", { n: 2, name: "second" });
    await a.delete("one");
    const b = new StateStore<Rec>({ dir });
    const loaded = await b.load();
    expect([...loaded.entries()]).to.deep.equal([["two", { n: 2, name: "second" }]]);
    const onDisk = JSON.parse(fs.readFileSync(b.file, "utf8"));
    expect(onDisk.version).to.equal(1);
    expect(onDisk.savedAt).to.be.a("string");
  });

  it("coalesces a burst of changes into few writes, each promise resolving once its change is on disk", async () => {
    const s = new StateStore<Rec>({ dir });
    await s.load();
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) writes.push(s.set(`i${i % 20}`, { n: i }));
    await Promise.all(writes);
    const onDisk = JSON.parse(fs.readFileSync(s.file, "utf8")).instances;
    expect(Object.keys(onDisk)).to.have.length(20);
    expect(onDisk.i19).to.deep.equal({ n: 199 });
    expect(fs.readdirSync(dir).filter((f) => f.includes(".tmp-"))).to.deep.equal([]);
  });

  it("moves an unreadable or foreign file aside and starts empty", async () => {
    const s = new StateStore<Rec>({ dir });
    fs.writeFileSync(s.file, "{ not json");
    expect((await s.load()).size).to.equal(0);
    expect(fs.existsSync(s.file)).to.equal(false);
    expect(fs.readdirSync(dir).some((f) => f.startsWith("agent-state.json.corrupt-"))).to.equal(true);

    fs.writeFileSync(s.file, JSON.stringify({ version: 99, instances: {} }));
    expect((await s.load()).size).to.equal(0);
    await s.set("after", { n: 1 });
    expect((await new StateStore<Rec>({ dir }).load()).get("after")).to.deep.equal({ n: 1 });
  });

  it("refuses a relative directory and a file name that is a path", () => {
    expect(() => new StateStore({ dir: "relative" })).to.throw(TypeError);
    expect(() => new StateStore({ dir, fileName: "../x.json" })).to.throw(TypeError);
  });
});
