/**
 * Registry benchmark 2: WatchObject propagation latency. A change to one
 * Obj's endpoint list; the time from the start of the write until each of W
 * watchers (streams held on a registry) receives the new list is one
 * sample. p50 / p99 over all samples. Three cases, each against its target:
 *
 * - this registry's own write: Admin.UpdateInstance (the instance's port
 *   flips) through the registry the watchers are on. A registry that commits
 *   a change polls its revision counters at once (ChangeFeed.kick), so the
 *   push does not wait for the poll. Target p99 < 100 ms.
 * - another writer on the database (a registry sharing it, here this
 *   process's own store): the registry finds the write by polling its
 *   revision counters (every 200 ms), so the expected p50 is about half a
 *   poll period plus a reload.
 * - two registries on one MariaDB: the write through registry A's Admin API,
 *   the watchers on registry B, which finds it by its poll. Target
 *   p99 < 500 ms. Needs MariaDB/MySQL: SGRID_BENCH_MYSQL_URL, else
 *   SGRID_TEST_MYSQL_URL, else mysql://root@127.0.0.1:3306/ when it answers.
 */
import knex from "knex";
import { Communicator } from "sgridnext";
import { AdminProxy } from "sgridnext/gen/sgrid/registry/v1/admin.sgrid";
import type { FindObjectReply } from "sgridnext/gen/sgrid/registry/v1/query";
import { QueryProxy } from "sgridnext/gen/sgrid/registry/v1/query.sgrid";
import { openStore } from "../../registry/store";
import { fmt, table } from "../harness";
import { quietLogs, seedBenchObjs } from "./find-object";
import { benchDataDir, startBenchRegistry, type BenchRegistry } from "./registry-process";

const WATCHERS = 20;

/** One change: what a watcher's new list looks like, and the write that makes it. */
interface Change {
  seen(r: FindObjectReply): boolean;
  write(): Promise<void>;
}
const ADMIN_PASSWORD = "bench-admin-pw";

function quantile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]! : 0;
}

/** Watches `obj` on `registry` with W streams; `change()` makes one change and resolves with one sample per watcher (ms). */
async function measure(comm: Communicator, registry: string, obj: string, rounds: number,
  change: (round: number) => Change): Promise<number[]> {
  const query = comm.stringToProxy(QueryProxy, registry);
  const controllers = Array.from({ length: WATCHERS }, () => new AbortController());
  let pending: { t0: number; left: number; seen: (r: FindObjectReply) => boolean; done: () => void; got: Set<number> } | undefined;
  const samples: number[] = [];
  try {
    const watchers = controllers.map(async (ac, w) => {
      for await (const r of query.watchObject({ obj }, { signal: ac.signal }) as AsyncIterable<FindObjectReply>) {
        const p = pending;
        if (p && !p.got.has(w) && p.seen(r)) {
          p.got.add(w);
          samples.push(performance.now() - p.t0);
          if (--p.left === 0) p.done();
        }
      }
    });
    for (const w of watchers) w.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 500)); // every watch open and past its first answer
    for (let round = 0; round < rounds; round++) {
      let done!: () => void;
      const all = new Promise<void>((resolve) => { done = resolve; });
      const t0 = performance.now();
      const c = change(round);
      pending = { t0, left: WATCHERS, seen: c.seen, done, got: new Set() };
      await c.write();
      const timeout = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 5000));
      if ((await Promise.race([all, timeout])) === "timeout") throw new Error(`round ${round}: not every watcher saw the change within 5 s`);
      pending = undefined;
      // Spread the writes over the poll period so samples do not lock onto its phase.
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 200));
    }
  } finally {
    controllers.forEach((ac) => ac.abort());
  }
  return samples.sort((a, b) => a - b);
}

/** A change made through `admin` (Admin.UpdateInstance): the first active endpoint's port flips between two values. */
async function adminPortFlip(comm: Communicator, adminAddr: string, queryAddr: string, obj: string): Promise<(round: number) => Change> {
  const admin = comm.stringToProxy(AdminProxy, adminAddr);
  const { token } = await admin.login({ user: "admin", password: ADMIN_PASSWORD });
  const as = { metadata: { authorization: `Bearer ${token}` } };
  const [app, server] = obj.split(".");
  const first = (await comm.stringToProxy(QueryProxy, queryAddr).findObject({ obj })).active[0]!;
  const inst = (await admin.listInstances({ application: app!, server: server! }, as)).instances
    .find((i) => i.adapters.some((a) => a.port === first.port && a.host === first.host))!;
  const ports = [first.port, first.port + 1000];
  return (round) => {
    const port = ports[(round + 1) % 2]!;
    const adapters = inst.adapters.map((a) => ({ ...a, port }));
    return {
      seen: (r) => r.active.some((e) => e.port === port),
      write: async () => void await admin.updateInstance({ instanceId: inst.id, updateMask: ["adapters"], adapters }, as),
    };
  };
}

function row(name: string, target: string, samples: number[], rounds: number, goalMs: number | undefined): string[] {
  const p99 = quantile(samples, 0.99);
  return [name, String(rounds), String(samples.length), fmt(quantile(samples, 0.5), 1), fmt(p99, 1), fmt(samples[samples.length - 1] ?? 0, 1),
    target, goalMs === undefined ? "-" : p99 < goalMs ? "met" : "MISSED"];
}

async function mysqlBase(): Promise<string | undefined> {
  const url = process.env.SGRID_BENCH_MYSQL_URL || process.env.SGRID_TEST_MYSQL_URL || "mysql://root@127.0.0.1:3306/";
  const k = mysqlAdmin(url);
  try {
    await k.raw("SELECT 1");
    return url;
  } catch {
    return undefined;
  } finally {
    await k.destroy();
  }
}

function mysqlAdmin(base: string) {
  const u = new URL(base);
  return knex({ client: "mysql2", connection: { host: u.hostname || "127.0.0.1", port: u.port ? Number(u.port) : 3306, user: decodeURIComponent(u.username) || "root", password: decodeURIComponent(u.password) }, pool: { min: 0, max: 1 } });
}

export async function runWatchLatencyBench(durationMs: number): Promise<string> {
  quietLogs();
  const rounds = Math.max(10, Math.floor(durationMs / 400));
  const rows: string[][] = [];
  const comm = new Communicator();
  const registries: BenchRegistry[] = [];
  let dropDb: (() => Promise<void>) | undefined;
  try {
    // One registry on SQLite: its own write, then another writer's.
    const dataDir = benchDataDir();
    const db = `sqlite:${dataDir}/registry.db`;
    const objs = await seedBenchObjs(db, 10);
    const registry = await startBenchRegistry(dataDir);
    registries.push(registry);
    const obj = objs[0]!;
    const own = await measure(comm, registry.address, obj, rounds, await adminPortFlip(comm, registry.address, registry.address, obj));
    rows.push(row("this registry's own write (Admin API)", "p99 < 100 ms", own, rounds, 100));
    const store = await openStore(db);
    try {
      const inst = (await store.instances.list({ application: "Bench", server: "S1" })).find((i) => i.desiredState === "active")!;
      const other = await measure(comm, registry.address, objs[1]!, rounds, (round) => {
        const state = round % 2 === 0 ? "inactive" : "active";
        const want = state === "active" ? 2 : 1;
        return { seen: (r) => r.active.length === want, write: async () => void await store.instances.setDesired(inst.id, { state }) };
      });
      rows.push(row("another writer on the database (poll 200 ms)", "~ poll period", other, rounds, undefined));
    } finally {
      await store.close();
    }
    // Two registries on one MariaDB: write through A, watch on B.
    const base = await mysqlBase();
    if (!base) {
      rows.push(["two registries on one MariaDB", "-", "-", "-", "-", "-", "p99 < 500 ms", "skipped: no MariaDB (SGRID_BENCH_MYSQL_URL)"]);
    } else {
      const name = `sgrid_bench_${process.pid}_${Date.now().toString(36)}`;
      const k = mysqlAdmin(base);
      try {
        await k.raw("CREATE DATABASE ?? CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", [name]);
      } finally {
        await k.destroy();
      }
      dropDb = async () => {
        const a = mysqlAdmin(base);
        try {
          await a.raw("DROP DATABASE IF EXISTS ??", [name]);
        } finally {
          await a.destroy();
        }
      };
      const u = new URL(base);
      u.pathname = `/${name}`;
      const mdb = u.toString();
      const mobjs = await seedBenchObjs(mdb, 2);
      const [a, b] = await Promise.all([startBenchRegistry(benchDataDir(), [], mdb), startBenchRegistry(benchDataDir(), [], mdb)]);
      registries.push(a!, b!);
      const cross = await measure(comm, b!.address, mobjs[0]!, rounds, await adminPortFlip(comm, a!.address, b!.address, mobjs[0]!));
      rows.push(row("two registries on one MariaDB (write on A, watch on B)", "p99 < 500 ms", cross, rounds, 500));
    }
    return table(["case", "changes", "samples", "p50 ms", "p99 ms", "max ms", "target", ""], rows) + `\n(${WATCHERS} watchers each)`;
  } finally {
    comm.close();
    for (const r of registries) await r.stop();
    await dropDb?.();
  }
}
