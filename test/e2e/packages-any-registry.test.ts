/**
 * Packages any registry can serve (issue 17), with real processes: `sgrid
 * registry` processes on one database, a `sgrid node` agent, servants
 * published with `sgrid publish`.
 *
 * - [mysql] Two registries on one MariaDB: a package uploaded through A
 *   installs through B while A runs; a package uploaded through A after
 *   which A is killed (-9) installs through B; a package whose chunk was
 *   damaged in the database is refused with PATCH_CHUNK_CORRUPT: the old
 *   version keeps running, no release of the new one appears, and uploading
 *   the same package again repairs it.
 * - [sqlite] One registry on SQLite: a package kept on the registry's disk
 *   by an older registry (`<data-dir>/packages/ab/cd/<sha256>`, a patch row
 *   naming it) moves into the database at start and installs.
 */
import { expect } from "chai";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { Communicator } from "sgridnext";
import { AdminProxy } from "sgridnext/gen/sgrid/registry/v1/admin.sgrid";
import { PatchProxy } from "sgridnext/gen/sgrid/registry/v1/patch.sgrid";
import type { UploadChunk } from "sgridnext/gen/sgrid/registry/v1/patch";
import { QueryProxy } from "sgridnext/gen/sgrid/registry/v1/query.sgrid";
import type { InstanceInfo } from "sgridnext/gen/sgrid/registry/v1/types";
import { openStore } from "../../registry/store";
import { writePackage } from "../fixtures/packages/tar-builder";
import { CLI, outputDir } from "../helpers/paths";
import { dialects, type TestDatabase } from "../registry/helpers/db";
import { killProcessesUnder, Proc, removeCgroupGroup, waitFor } from "./helpers/procs";
import { runCommand } from "./helpers/scaffold";

const APP = "Demo";
const SERVER = "PkgServer";
const FULL = `${APP}.${SERVER}`;
const OBJ = "EchoObj";
const NODE = "pkg-node";
const TOKEN = `pkg-cluster-token-${process.pid}`;
const PASSWORD = `pkg-admin-pw-${process.pid}`;
const SERVANT_MAIN = path.join(__dirname, "../fault/harness/servant-main.js");
const sha = (b: Buffer) => crypto.createHash("sha256").update(b).digest("hex");

/** Registries, one agent and the CLI, all real processes under one test-output folder. */
class PackageCluster {
  readonly out: string;
  readonly registries = new Map<string, { proc: Proc; addr: string }>();
  agent: Proc | undefined;
  readonly comm = new Communicator({ env: {} });
  readonly group = `sgrid-test-${process.pid}-pkgs-${Math.random().toString(36).slice(2, 8)}`;
  private token = "";

  /** `out`: the folder everything goes under (a name makes a new one under test-output). */
  constructor(out: string, readonly db: string) {
    this.out = path.isAbsolute(out) ? out : outputDir(`packages-${out}`);
  }

  get agentDir(): string {
    return path.join(this.out, "node");
  }

  async startRegistry(name: string): Promise<string> {
    const proc = new Proc(`registry ${name}`, process.execPath, [CLI, "registry", "--listen", "127.0.0.1:0", "--data-dir", path.join(this.out, `registry-${name}`),
      "--db", this.db, "--heartbeat-interval", "500ms", "--heartbeat-timeout", "10000ms"], {
      cwd: this.out, env: { SGRID_CLUSTER_TOKEN: TOKEN, SGRID_ADMIN_PASSWORD: PASSWORD, SGRID_LOG_LEVEL: "info" }, logFile: path.join(this.out, `registry-${name}.log`),
    });
    const addr = (await proc.waitForLine(/sgrid registry serving on (\S+) /))[1]!;
    this.registries.set(name, { proc, addr });
    this.token ||= (await this.admin(addr).login({ user: "admin", password: PASSWORD })).token;
    return addr;
  }

  addr(name: string): string {
    return this.registries.get(name)!.addr;
  }

  async killRegistry(name: string): Promise<void> {
    const r = this.registries.get(name)!;
    r.proc.signal("SIGKILL");
    await r.proc.exited;
  }

  async startAgent(registry: string): Promise<void> {
    const config = path.join(this.out, "agent-config.json");
    fs.writeFileSync(config, JSON.stringify({ supervisor: { restart: { initialDelayMs: 200, maxDelayMs: 2000 }, stop: { graceMs: 3000 } }, installRetry: { initialMs: 200, maxMs: 1000 } }));
    this.agent = new Proc("agent", process.execPath, [CLI, "node", "--registry", registry, "--name", NODE, "--data-dir", this.agentDir,
      "--address", "127.0.0.1", "--cgroup-group", this.group, "--config", config], {
      cwd: this.out, env: { SGRID_CLUSTER_TOKEN: TOKEN, SGRID_LOG_LEVEL: "info" }, logFile: path.join(this.out, "agent.log"),
    });
    await this.agent.waitForLine(/sgrid node: started/);
  }

  admin(addr: string): AdminProxy {
    return this.comm.stringToProxy(AdminProxy, addr);
  }

  get as(): { metadata: Record<string, string> } {
    return { metadata: { authorization: `Bearer ${this.token}` } };
  }

  /** A package of the echo servant with `extraBytes` random bytes in it (several chunks). */
  async package(version: string, extraBytes: number): Promise<{ file: string; bytes: Buffer }> {
    const dir = path.join(this.out, "packages");
    fs.mkdirSync(dir, { recursive: true });
    const file = await writePackage(dir, `${FULL}-${version}.tgz`, {
      "sgrid.json": JSON.stringify({ app: APP, server: SERVER, type: "node", entry: "main.js", version }),
      "main.js": `require(${JSON.stringify(SERVANT_MAIN)});\n`,
      "blob.bin": crypto.randomBytes(extraBytes),
    });
    return { file, bytes: fs.readFileSync(file) };
  }

  /** Runs `sgrid <args>` against `registry` as the admin user. */
  async cli(registry: string, args: string[]): Promise<string> {
    const r = await runCommand(process.execPath, [CLI, ...args], this.out, {
      SGRID_REGISTRY: registry, SGRID_USER: "admin", SGRID_PASSWORD: PASSWORD, SGRID_HOME: path.join(this.out, "home"),
    }, 180_000);
    if (r.code !== 0) throw new Error(`sgrid ${args.join(" ")} failed (exit ${r.code}):\n${r.out}`);
    return r.out;
  }

  /** Patch.Upload through `registry` (what `sgrid publish` and the admin app do first); resolves with the version. */
  async upload(registry: string, bytes: Buffer): Promise<number> {
    const header = { kind: { $case: "header" as const, value: { application: APP, server: SERVER, sha256: sha(bytes), size: bytes.length, comment: "" } } };
    async function* chunks(): AsyncGenerator<UploadChunk> {
      yield header;
      for (let i = 0; i < bytes.length; i += 64 * 1024) yield { kind: { $case: "data", value: bytes.subarray(i, i + 64 * 1024) } };
    }
    return (await this.comm.stringToProxy(PatchProxy, registry).upload(chunks(), { ...this.as, timeoutMs: 60_000 })).version;
  }

  async instance(registry: string): Promise<InstanceInfo> {
    // A publish of the only serving instance runs beside a surge (instances.surge_of): the instance itself is the one that is no surge.
    const list = (await this.admin(registry).listInstances({ application: APP, server: SERVER }, this.as)).instances.filter((i) => i.surgeOf === 0);
    expect(list).to.have.length(1);
    return list[0]!;
  }

  /** Waits until the instance runs `version` and its Obj is served. */
  async waitRunning(registry: string, version: number): Promise<InstanceInfo> {
    const q = this.comm.stringToProxy(QueryProxy, registry);
    return waitFor(`${FULL} running version ${version}`, async () => {
      const i = await this.instance(registry);
      const found = await q.findObject({ obj: `${FULL}.${OBJ}` });
      return i.observedState === "active" && i.observedVersion === version && found.active.length === 1 ? i : undefined;
    }, 90_000, 100);
  }

  releases(): string[] {
    const dir = path.join(this.agentDir, "servers", FULL, "releases");
    return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
  }

  async stop(): Promise<void> {
    this.comm.close();
    this.agent?.signal("SIGKILL");
    await this.agent?.exited;
    for (const r of this.registries.values()) await r.proc.stop(5000);
    killProcessesUnder(this.agentDir);
    await removeCgroupGroup(this.group);
  }
}

const mysql = dialects().find((d) => d.name === "mysql");

(mysql ? describe : describe.skip)("packages any registry can serve: two registries on one MariaDB @slow [mysql]", function () {
  this.timeout(300_000);
  let db: TestDatabase;
  let c: PackageCluster;

  before(async () => {
    db = await mysql!.create();
    c = new PackageCluster("mysql", db.url);
    await Promise.all([c.startRegistry("a"), c.startRegistry("b")]);
    await c.startAgent(c.addr("b"));
  });
  after(async () => {
    await c?.stop();
    await db?.drop();
  });

  it("installs through B a package published through A", async () => {
    const { file } = await c.package("1.0.0", 3 * 1024 * 1024);
    await c.cli(c.addr("a"), ["publish", FULL, file, "--nodes", NODE, "--deploy", "--obj", OBJ]);
    await c.waitRunning(c.addr("b"), 1);
  });

  it("installs through B a package uploaded through A after A was killed", async () => {
    const { bytes } = await c.package("2.0.0", 3 * 1024 * 1024);
    expect(await c.upload(c.addr("a"), bytes)).to.equal(2);
    await c.killRegistry("a");
    await c.cli(c.addr("b"), ["publish", FULL, "--version", "2", "--nodes", NODE]);
    const inst = await c.waitRunning(c.addr("b"), 2);
    expect(inst.pid).to.be.greaterThan(0);
    expect(c.releases()).to.include.members(["2"]);
  });

  it("refuses a package with a damaged chunk (sha256) with a clear reason, keeps the running version, leaves no release; a new upload repairs it", async () => {
    const { bytes } = await c.package("3.0.0", 3 * 1024 * 1024);
    // Uploaded through a third registry: the registry that checked a package keeps its verified chunks in memory, B has never read this one.
    expect(await c.upload(await c.startRegistry("c"), bytes)).to.equal(3);
    const store = await openStore(db.url, { migrate: false });
    try {
      const blob = (await store.packageBlobs.find(sha(bytes)))!;
      expect(blob.chunkCount).to.be.greaterThan(2);
      const row = await store.knex("package_chunks").where({ upload_id: blob.uploadId, seq: 1 }).first("data");
      const damaged = Buffer.from(row.data as Buffer);
      damaged[12345] ^= 0x01;
      await store.knex("package_chunks").where({ upload_id: blob.uploadId, seq: 1 }).update({ data: damaged });
    } finally {
      await store.close();
    }
    const before = await c.instance(c.addr("b"));
    const admin = c.admin(c.addr("b"));
    await admin.createTask({ kind: "publish", instanceIds: [before.id], version: 3 }, c.as);
    // The install is tried where version 3 would run (the surge standing in for the instance): refused, naming the damaged chunk.
    const refused = await waitFor("the install refused with the damaged chunk named", async () => {
      const all = (await admin.listInstances({ application: APP, server: SERVER }, c.as)).instances;
      return all.find((i) => /chunk 1 .*damaged/.test(i.lastExitReason));
    }, 60_000, 100);
    expect(refused.lastExitReason).to.contain("version 3 not installed").and.contain(sha(bytes));
    const kept = await c.instance(c.addr("b"));
    expect(kept.observedVersion).to.equal(2);
    expect(kept.observedState).to.equal("active");
    expect(kept.pid).to.equal(before.pid);
    expect(c.releases()).to.not.include("3");
    expect(fs.existsSync(path.join(c.agentDir, "cache", `${sha(bytes)}.tgz`)), "no verified package in the agent's cache").to.equal(false);
    // The same package uploaded again replaces the damaged copy; a publish of version 3 then installs it.
    await c.upload(c.addr("b"), bytes);
    await waitFor("the failed publish task ended", async () => {
      const tasks = (await admin.listTasks({}, c.as)).tasks;
      return tasks.every((t) => t.status !== "running" && t.status !== "pending") ? true : undefined;
    }, 90_000, 200);
    await admin.createTask({ kind: "publish", instanceIds: [before.id], version: 3 }, c.as);
    await c.waitRunning(c.addr("b"), 3);
  });
});

describe("packages any registry can serve: one registry on SQLite, packages kept on its disk move into the database @slow [sqlite]", function () {
  this.timeout(300_000);
  let c: PackageCluster;

  after(async () => c?.stop());

  it("installs a package an older registry kept in <data-dir>/packages", async () => {
    // The cluster's own output folder: startRegistry("one") runs on <out>/registry-one.
    const out = outputDir("packages-sqlite");
    const dataDir = path.join(out, "registry-one");
    fs.mkdirSync(dataDir, { recursive: true });
    const dbUrl = `sqlite:${path.join(dataDir, "registry.db")}`;
    c = new PackageCluster(out, dbUrl);
    const { bytes } = await c.package("1.0.0", 3 * 1024 * 1024);
    const key = sha(bytes);
    // What an older registry left: the patch row, and the file on its disk.
    const store = await openStore(dbUrl);
    try {
      await store.servers.create({ application: APP, name: SERVER, type: "node" });
      await store.patches.create({ application: APP, server: SERVER, sha256: key, size: bytes.length, uploader: "admin", storageKey: key });
    } finally {
      await store.close();
    }
    const file = path.join(dataDir, "packages", key.slice(0, 2), key.slice(2, 4), key);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, bytes);
    const reg = await c.startRegistry("one");
    expect(fs.existsSync(file), "the file moved into the database").to.equal(false);
    await c.startAgent(reg);
    await c.cli(reg, ["publish", FULL, "--version", "1", "--nodes", NODE, "--deploy", "--obj", OBJ]);
    await c.waitRunning(reg, 1);
    // And a new upload on SQLite installs too.
    const next = await c.package("2.0.0", 2 * 1024 * 1024);
    await c.cli(reg, ["publish", FULL, next.file, "--nodes", NODE]);
    await c.waitRunning(reg, 2);
  });
});
