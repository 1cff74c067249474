/**
 * `npm run bench fanout` (issue 17 item 4): publishing a ~50 MB package to
 * 10 nodes should take at most 2x the time of publishing it to one node.
 *
 * A real cluster (test/fault/harness/cluster.ts: `sgrid registry` on SQLite,
 * one `sgrid node` per node, each in its own network namespace, real
 * cgroups) with two servers of the fault suite's echo servant:
 * `Bench.One` on node 1 and `Bench.Ten` on every node. Each measurement
 * uploads a new version (the servant plus an incompressible payload of
 * BENCH_FANOUT_MB MiB, default 50; uploaded once, untimed), then times
 * Admin.CreateTask(publish, every instance of the server, one batch) until
 * the task is done: every instance observed serving the new version for the
 * task runner's settle time. Both servers go the same way (a publish of all
 * of a server's instances in one batch starts a surge beside one of them,
 * registry/admin/surge.ts), so the only difference is the fan-out.
 *
 * Rounds (BENCH_ROUNDS, default 3) alternate the order (One first, then Ten
 * first); the ratio Ten/One is taken within each round. Where the time goes
 * comes from the agents' own log lines ("package downloaded and verified"
 * with its ms and the sha256 share, "release installed" with the ms of its
 * unpack after the download's last byte: the unpack overlaps the download); CPU
 * seconds of the registry and of all agents per publish from /proc, and the
 * machine's steal time over each measurement. "done after settle" is from the
 * moment the last instance had been active for the settle time (its observed
 * time, the registry's, plus settleMs) to the task's end: the surge's drain
 * grace (drainGraceMs, 1.5 s) and whatever the task runner adds to it.
 * BENCH_FANOUT_DEBUG=1 also prints
 * each task's and item's start and end times. BENCH_FANOUT_CPU_PROF=<dir>
 * starts the registry and the agents with
 * `node --cpu-prof` into <dir>, and stops them with SIGTERM at the end so
 * that every profile is written; BENCH_FANOUT_NODE_FLAGS gives them more
 * flags of `node` (e.g. `--perf-basic-prof` for `perf record`).
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { Communicator } from "sgridnext";
import type { TaskInfo } from "sgridnext/gen/sgrid/registry/v1/admin";
import { PatchProxy } from "sgridnext/gen/sgrid/registry/v1/patch.sgrid";
import { installReaper } from "../test/helpers/reaper";
import { FaultCluster } from "../test/fault/harness/cluster";
import { echoPackage } from "../test/fault/harness/package";
import { fmt, processCpuMs, readCpuTimes, stealPercent, table } from "./harness";
import { TASK_RUNNER_DEFAULTS } from "../registry/admin/task-runner";

const APP = "Bench";
const TARGET_RATIO = 2;
const FINAL = new Set(["success", "failed", "partial"]);

interface Phases {
  /** CreateTask until the last node started its download, ms. */
  toDownload: number;
  /** Longest download (bytes over the wire, written, sha256 on the way), ms. */
  download: number;
  /** Longest sha256 share of one download, ms. */
  sha256: number;
  /** Longest unpack into releases/<version> after the download's last byte (the unpack overlaps the download), ms. */
  extract: number;
  /** Last unpack done until the task is done (start, surge switch, settle), ms. */
  rest: number;
  /** The last instance's settle time (observed active + settleMs) until the task is done, ms. */
  afterSettle: number;
}

interface Measurement {
  server: string;
  nodes: number;
  ms: number;
  phases: Phases;
  registryCpuS: number;
  agentsCpuS: number;
  stealPct: number;
}

/** utime + stime of a process, seconds (0 when it is gone). */
function cpuSeconds(pid: number | undefined): number {
  return pid ? processCpuMs(pid) / 1000 : 0;
}

function sumCpu(pids: Array<number | undefined>): number {
  let sum = 0;
  for (const p of pids) sum += cpuSeconds(p);
  return sum;
}

/** The agents' JSON log lines with `msg` since `since` (ms since the epoch). */
function agentLogLines(cluster: FaultCluster, since: number): Array<Record<string, unknown> & { time: number; msg: string }> {
  const out: Array<Record<string, unknown> & { time: number; msg: string }> = [];
  for (const f of fs.readdirSync(cluster.out).filter((n) => /^agent-.*\.log$/.test(n))) {
    for (const line of fs.readFileSync(path.join(cluster.out, f), "utf8").split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        const j = JSON.parse(line) as Record<string, unknown> & { time: number; msg: string };
        if (typeof j.time === "number" && j.time >= since) out.push(j);
      } catch {
        // a line cut by a kill
      }
    }
  }
  return out;
}

function phasesOf(cluster: FaultCluster, server: string, version: number, sha256: string, t0: number, t1: number, lastActive: number): Phases {
  const lines = agentLogLines(cluster, t0);
  const downloads = lines.filter((l) => l.msg === "package downloaded and verified" && l.sha256 === sha256);
  const installs = lines.filter((l) => l.msg === "release installed" && l.server === server && l.version === String(version));
  const max = (xs: number[]) => (xs.length ? Math.max(...xs) : 0);
  const num = (v: unknown) => (typeof v === "number" ? v : 0);
  const lastUnpack = max(installs.map((l) => l.time));
  return {
    toDownload: max(downloads.map((l) => l.time - num(l.ms) - t0)),
    download: max(downloads.map((l) => num(l.ms))),
    sha256: max(downloads.map((l) => num(l.hashMs))),
    extract: max(installs.map((l) => num(l.afterBytesMs ?? l.ms))),
    rest: lastUnpack ? t1 - lastUnpack : 0,
    afterSettle: t1 - (lastActive + TASK_RUNNER_DEFAULTS.settleMs),
  };
}

export async function runFanoutBench(log: (line: string) => void): Promise<string> {
  installReaper();
  const nodeCount = Number(process.env.BENCH_FANOUT_NODES ?? 10);
  const mib = Number(process.env.BENCH_FANOUT_MB ?? 50);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const nodes = Array.from({ length: nodeCount }, (_, i) => `node-${i + 1}`);
  const profDir = process.env.BENCH_FANOUT_CPU_PROF;
  if (profDir) fs.mkdirSync(profDir, { recursive: true });
  const nodeFlags = [...(profDir ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(profDir)}`] : []), ...(process.env.BENCH_FANOUT_NODE_FLAGS ?? "").split(" ").filter(Boolean)];
  const cluster = await FaultCluster.start({ name: "bench-fanout", nodes, nodeFlags });
  const comm = new Communicator({ env: {} });
  try {
    const servers = [{ name: "One", nodes: [nodes[0]!] }, { name: "Ten", nodes }];
    for (const s of servers) await cluster.publishEcho(`${APP}.${s.name}`, s.nodes, "EchoObj", "1.0.0");
    log(`fanout: ${nodeCount} agents up (${cluster.lab.available ? "network namespaces" : "loopback addresses"}), Bench.One on 1 node, Bench.Ten on ${nodeCount}`);
    const payload = crypto.randomBytes(mib * 1024 * 1024);
    const patch = comm.stringToProxy(PatchProxy, cluster.registryAddr);
    const pkgDir = path.join(cluster.out, "packages");
    fs.mkdirSync(pkgDir, { recursive: true });
    let release = 1;

    const measure = async (s: { name: string; nodes: string[] }): Promise<Measurement> => {
      release++;
      // A payload no node has: every measurement downloads, checks and unpacks it afresh.
      payload.writeUInt32BE(release, 0);
      const file = await echoPackage(pkgDir, APP, s.name, `${release}.0.0`, { files: { "payload.bin": payload } });
      const bytes = fs.readFileSync(file);
      const sha256 = crypto.createHash("sha256").update(bytes).digest("hex");
      async function* chunks() {
        yield { kind: { $case: "header" as const, value: { application: APP, server: s.name, sha256, size: bytes.length, comment: "bench fanout" } } };
        for (let i = 0; i < bytes.length; i += 1024 * 1024) yield { kind: { $case: "data" as const, value: bytes.subarray(i, i + 1024 * 1024) } };
      }
      const uploaded = await patch.upload(chunks(), cluster.as);
      fs.rmSync(file, { force: true });
      const ids = (await cluster.instances(APP, s.name)).filter((i) => Number(i.surgeOf) === 0).map((i) => i.id);
      const agentPids = cluster.agents.map((a) => a?.pid);
      const cpu0 = { reg: cpuSeconds(cluster.registry?.pid), agents: sumCpu(agentPids), steal: readCpuTimes() };
      const t0 = Date.now();
      const created = await cluster.admin.createTask({ kind: "publish", instanceIds: ids, version: uploaded.version, batchSize: 0, stopOnFailure: false, batchTimeoutS: 600, comment: "" }, cluster.as);
      let last: TaskInfo = created;
      for await (const t of cluster.admin.watchTask({ id: created.id }, cluster.as)) {
        last = t;
        if (FINAL.has(t.status)) break;
      }
      const t1 = Date.now();
      if (process.env.BENCH_FANOUT_DEBUG) log(`debug: t0 ${t0} created ${created.createdAt} started ${last.startedAt} items ${last.items.map((i) => `${i.node}:${i.startedAt}-${i.finishedAt}`).join(" ")}`);
      if (last.status !== "success") throw new Error(`publish of ${APP}.${s.name} version ${uploaded.version} ended ${last.status}: ${last.reason} ${last.items.map((i) => i.reason).filter(Boolean).join("; ")}`);
      // When each instance (not the surge) was last seen change state: active on the new version, since the task succeeded.
      const lastActive = Math.max(...(await cluster.instances(APP, s.name)).filter((i) => Number(i.surgeOf) === 0).map((i) => Number(i.observedAt)));
      const m: Measurement = {
        server: `${APP}.${s.name}`, nodes: s.nodes.length, ms: t1 - t0, phases: phasesOf(cluster, s.name, uploaded.version, sha256, t0, t1, lastActive),
        registryCpuS: cpuSeconds(cluster.registry?.pid) - cpu0.reg,
        agentsCpuS: sumCpu(agentPids) - cpu0.agents,
        stealPct: stealPercent(cpu0.steal, readCpuTimes()) ?? 0,
      };
      // The next measurement starts from a quiet cluster: the surge gone, every instance listed active.
      await cluster.waitAllActive({ [`${APP}.${s.name}.EchoObj`]: s.nodes.length }, 120_000);
      log(`fanout: ${m.server} to ${m.nodes} node(s): ${fmt(m.ms / 1000, 2)} s`);
      return m;
    };

    const results: Array<{ one: Measurement; ten: Measurement }> = [];
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? servers : [...servers].reverse();
      const got: Record<string, Measurement> = {};
      for (const s of order) got[s.name] = await measure(s);
      results.push({ one: got.One!, ten: got.Ten! });
    }
    return report(results, nodeCount, mib, cluster.lab.available);
  } finally {
    comm.close();
    // A profiled process writes its profile when it exits, not when it is killed.
    if (profDir) await Promise.all(cluster.agents.map((a) => a?.stop(20_000)));
    await cluster.stop();
    // The run folder holds 10 agents' caches and releases of the 50 MiB package (~2.5 GB a run): gone once
    // its logs are read, unless BENCH_FANOUT_KEEP=1 keeps it to look at.
    if (process.env.BENCH_FANOUT_KEEP !== "1") fs.rmSync(cluster.out, { recursive: true, force: true });
  }
}

function report(results: Array<{ one: Measurement; ten: Measurement }>, nodeCount: number, mib: number, netns: boolean): string {
  const s = (ms: number) => fmt(ms / 1000, 2);
  const rows: string[][] = [];
  results.forEach(({ one, ten }, r) => {
    for (const m of [one, ten]) {
      const p = m.phases;
      rows.push([String(r + 1), m.server, String(m.nodes), s(m.ms), s(p.toDownload), s(p.download), s(p.sha256), s(p.extract), s(p.rest), s(p.afterSettle),
        fmt(m.registryCpuS, 2), fmt(m.agentsCpuS, 2), fmt(m.stealPct, 1), m === ten ? `${fmt(ten.ms / one.ms, 2)}x` : ""]);
    }
  });
  const ratios = results.map(({ one, ten }) => ten.ms / one.ms);
  const range = (xs: number[], f: (x: number) => string) => `${f(Math.min(...xs))}..${f(Math.max(...xs))}`;
  const x = (v: number) => `${fmt(v, 2)}x`;
  const worst = Math.max(...ratios);
  return [
    `${mib} MiB package (incompressible payload + the echo servant), ${nodeCount} agents in ${netns ? "network namespaces" : "loopback (no namespaces)"}, registry on SQLite; ` +
      "time = CreateTask until the task is done (every instance serving the new version for the settle time); phases are the longest over the nodes",
    table(["round", "server", "nodes", "publish s", "to download s", "download s", "of which sha256 s", "extract after s", "start+settle s", "done after settle s", "registry CPU s", "agents CPU s", "steal %", `${nodeCount}/1`], rows),
    `1 node: ${range(results.map((m) => m.one.ms), s)} s; ${nodeCount} nodes: ${range(results.map((m) => m.ten.ms), s)} s; ` +
      `ratio ${nodeCount}/1 per round ${range(ratios, x)} (target <= ${TARGET_RATIO}x: ${worst <= TARGET_RATIO ? "met in every round" : "NOT met in every round"})`,
  ].join("\n");
}
