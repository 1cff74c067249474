/**
 * Registry child process of the heartbeat benchmark: the real node part
 * (NodeSessionHub + NodeSession servant) over the real store on a fresh
 * SQLite database, the real change feed, one gRPC port (or native one). Seeds N nodes x M
 * instances (bulk rows, so seeding stays out of the measurement), prints
 * `READY <json>`, and answers IPC "stats" with its CPU usage and the hub's
 * counters ("final": also the nodes online and the offline events).
 *
 * Env: HB_DIR (data dir), HB_NODES, HB_INSTANCES (per node), HB_TOKEN,
 * HB_TRANSPORT (grpc, the default, or sgrid: the node Obj on a native port),
 * HB_DB (a database URL; default SQLite in HB_DIR);
 * diagnostics: HB_PRETENURING=1 (V8's default allocation-site pretenuring,
 * which `sgrid registry` turns off: registry/server/heap-tuning.ts),
 * HB_HEAP_PROF=<file>, HB_SNAPSHOT=<file> (see below).
 */
import crypto from "node:crypto";
import fs from "node:fs";
import inspector from "node:inspector";
import v8 from "node:v8";
import vm from "node:vm";
import path from "node:path";
import { PerformanceObserver, constants as perf } from "node:perf_hooks";
import { Application, UnauthenticatedError, getLogger, type ServerContext } from "sgridnext";
import { NodeSessionHub, nodePart } from "../../registry/node";
import { PollingChangeFeed } from "../../registry/server/change-feed";
import type { AuthUser, Authenticator, RegistryContext, RegistrySettings } from "../../registry/server/context";
import { DatabaseStorage } from "../../registry/services/storage";
import { openStore } from "../../registry/store";
import { tuneRegistryHeap } from "../../registry/server/heap-tuning";

const token = process.env.HB_TOKEN ?? "bench-token";

class ClusterAuth implements Authenticator {
  private readonly want = Buffer.from(`Bearer ${token}`);
  async requireUser(): Promise<AuthUser> {
    throw new UnauthenticatedError("no users");
  }
  requireCluster(ctx: ServerContext): void {
    const got = Buffer.from(String(ctx.metadata["authorization"] ?? ""));
    if (got.length !== this.want.length || !crypto.timingSafeEqual(got, this.want)) throw new UnauthenticatedError("wrong cluster token");
  }
  requireQuery(): void {}
}

async function main(): Promise<void> {
  // As `sgrid registry` does (HB_PRETENURING=1: V8's default, for comparison).
  if (process.env.HB_PRETENURING !== "1") tuneRegistryHeap();
  const dir = process.env.HB_DIR!;
  const nodes = Number(process.env.HB_NODES ?? 1000);
  const perNode = Number(process.env.HB_INSTANCES ?? 10);
  const store = await openStore(process.env.HB_DB ?? `sqlite:${path.join(dir, "registry.db")}`);
  const now = Date.now();
  // Seed: servers S0..S<perNode-1> of application Bench, each with patch 1, placed on every node.
  const serverIds: number[] = [];
  const patchIds: number[] = [];
  for (let s = 0; s < perNode; s++) {
    const srv = await store.servers.create({ application: "Bench", name: `S${s}`, type: "node" });
    const p = await store.patches.create({ application: "Bench", server: `S${s}`, sha256: crypto.createHash("sha256").update(`S${s}`).digest("hex"), size: 1000, uploader: "bench", storageKey: "0".repeat(64) });
    serverIds.push(srv.id);
    patchIds.push(p.id);
  }
  const knex = store.knex;
  for (let i = 0; i < nodes; i += 200) {
    const rows = [];
    for (let n = i; n < Math.min(nodes, i + 200); n++) rows.push({ name: `node-${n}`, address: "127.0.0.1", agent_version: "bench", host_info: "{}", online: false, created_at: now, updated_at: now });
    await knex("nodes").insert(rows);
  }
  const nodeIds = new Map<string, number>((await knex("nodes").select("id", "name")).map((r: any) => [r.name, Number(r.id)]));
  const inst = [];
  for (let n = 0; n < nodes; n++) {
    for (let s = 0; s < perNode; s++) {
      inst.push({
        server_id: serverIds[s], node_id: nodeIds.get(`node-${n}`), adapters: JSON.stringify([{ obj: "MainObj", host: "0.0.0.0", port: 20000 + s, protocol: "grpc", weight: 100 }]),
        env: "{}", limits: JSON.stringify({ memoryBytes: 268435456 }), health_check: null, launch: "{}", desired_state: "active", desired_patch_id: patchIds[s],
        observed_state: "inactive", restarts: 0, drained: false, created_at: now, updated_at: now,
      });
    }
  }
  for (let i = 0; i < inst.length; i += 50) await knex("instances").insert(inst.slice(i, i + 50));
  const idsByNode: Record<string, number[]> = {};
  for (const r of await knex("instances as i").join("nodes as n", "n.id", "i.node_id").select("i.id", "n.name")) (idsByNode[r.name] ??= []).push(Number(r.id));

  const log = getLogger("registry");
  const changes = new PollingChangeFeed(store, { intervalMs: 200, log });
  await changes.start();
  const settings: RegistrySettings = {
    advertise: "127.0.0.1:9500", heartbeatIntervalMs: 5000, heartbeatTimeoutMs: 15000,
    maxPatchBytes: 1 << 30, batchTimeoutMs: 120000, processId: "bench-registry",
  };
  const hub = new NodeSessionHub({ store, changes, settings, log });
  const ctx: RegistryContext = { store, settings, changes, sessions: hub, storage: new DatabaseStorage(store), auth: new ClusterAuth(), log };
  const part = nodePart(ctx);
  await part.start?.();
  const app = new Application({ handleSignals: false, app: "Sgrid", server: "Registry", adapters: { NodeObj: process.env.HB_TRANSPORT === "sgrid" ? "sgrid://127.0.0.1:0" : "127.0.0.1:0" } });
  for (const [obj, servant] of Object.entries(part.servants ?? {})) app.addServant(obj, servant);
  await app.start();
  // HB_TRACE=1: a progress line every 5 s on stderr (diagnostics).
  if (process.env.HB_TRACE) {
    // Garbage collections since the last line, by kind: count and pause ms (scavenges vs mark-compacts tell allocation rate from heap size).
    const gcKinds: Record<number, string> = { [perf.NODE_PERFORMANCE_GC_MINOR]: "minor", [perf.NODE_PERFORMANCE_GC_MAJOR]: "major", [perf.NODE_PERFORMANCE_GC_INCREMENTAL]: "incremental", [perf.NODE_PERFORMANCE_GC_WEAKCB]: "weakcb" };
    let gcs = new Map<string, { n: number; ms: number }>();
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const kind = gcKinds[((e as unknown as { detail?: { kind?: number } }).detail)?.kind ?? -1] ?? "other";
        const g = gcs.get(kind) ?? { n: 0, ms: 0 };
        g.n++;
        g.ms += e.duration;
        gcs.set(kind, g);
      }
    }).observe({ entryTypes: ["gc"] });
    setInterval(() => {
      const gcText = [...gcs].map(([k, g]) => `${k} ${g.n}/${Math.round(g.ms)} ms`).join(", ");
      gcs = new Map();
      const heap = process.memoryUsage();
      process.stderr.write(`[hb registry] gc ${gcText || "none"}; heap used ${Math.round(heap.heapUsed / 2 ** 20)} MiB, rss ${Math.round(heap.rss / 2 ** 20)} MiB\n`);
      const s = hub.stats;
      process.stderr.write(`[hb registry] ${new Date().toISOString().slice(11, 19)} sessions ${hub.localNodes().length} opened ${s.sessionsOpened} hb ${s.heartbeatsReceived} recorded ${s.heartbeatsRecorded} silentClosed ${s.silentClosed} (noHb ${s.silentClosedNoHeartbeat}, max ${Math.round(s.silentMaxMs)} ms) held ${s.sweepsHeldForLag} loopP99max ${Math.round(s.loopDelayP99MaxMs)} ms observed ${s.observedReports} offline ${s.nodesMarkedOffline} cpu ${Math.round((process.cpuUsage().user + process.cpuUsage().system) / 1000)} ms\n`);
    }, 5000).unref();
    // Blocks of the event loop over a second: how long, the CPU used meanwhile (busy vs waiting), what progressed.
    let at = performance.now();
    let cpu = process.cpuUsage();
    let seen = { ...hub.stats };
    setInterval(() => {
      const now = performance.now();
      const c = process.cpuUsage();
      const s = hub.stats;
      if (now - at > 1000) {
        const used = (c.user - cpu.user + c.system - cpu.system) / 1000;
        process.stderr.write(`[hb registry] BLOCK ${Math.round(now - at)} ms, cpu ${Math.round(used)} ms; opened +${s.sessionsOpened - seen.sessionsOpened} hb +${s.heartbeatsReceived - seen.heartbeatsReceived} observed +${s.observedReports - seen.observedReports} desired +${s.desiredSent - seen.desiredSent}\n`);
      }
      at = now;
      cpu = c;
      seen = { ...s };
    }, 100).unref();
  }
  process.stdout.write(`READY ${JSON.stringify({ port: app.adapters()[0]!.endpoint.port, idsByNode })}\n`);
  // The parent gone (killed before its own cleanup): remove the data dir and exit.
  process.on("disconnect", () => {
    fs.rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
  // HB_HEAP_PROF=<file>: from the first "stats" (the steady window's start), a sampling heap profile over HB_HEAP_PROF_MS (default
  // 10 s) written there: what it holds was allocated in that time and is still live, i.e. survived the scavenges (diagnostics).
  let heapProf: Promise<void> | undefined;
  const startHeapProfile = (file: string): Promise<void> => new Promise((resolve) => {
    const session = new inspector.Session();
    session.connect();
    session.post("HeapProfiler.startSampling", { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true }, () => {
      // One scavenge first, so that the young objects that die there drop out (what is left survived one).
      setTimeout(() => (v8.setFlagsFromString("--expose-gc"), (vm.runInNewContext("gc") as (o: object) => void)({ type: "minor" }), session.post("HeapProfiler.stopSampling", (err, r) => {
        if (!err) fs.writeFileSync(file, JSON.stringify(r.profile));
        session.disconnect();
        resolve();
      })), Number(process.env.HB_HEAP_PROF_MS ?? 10_000));
    });
  });
  // HB_SNAPSHOT=<file>: a heap snapshot at the first "stats" + 3 s (diagnostics; forces a full GC).
  let snapped = false;
  const snapshot = (file: string): void => {
    setTimeout(() => {
      const session = new inspector.Session();
      session.connect();
      const out = fs.openSync(file, "w");
      session.on("HeapProfiler.addHeapSnapshotChunk", (m) => fs.writeSync(out, m.params.chunk));
      session.post("HeapProfiler.takeHeapSnapshot", {}, () => {
        fs.closeSync(out);
        session.disconnect();
      });
    }, 3000);
  };
  process.on("message", (m) => {
    if (m === "exit") process.exit(0);
    if (m === "stats" && process.env.HB_SNAPSHOT && !snapped) {
      snapped = true;
      snapshot(process.env.HB_SNAPSHOT);
    }
    if (m === "stats" && process.env.HB_HEAP_PROF) heapProf ??= startHeapProfile(process.env.HB_HEAP_PROF);
    // "stats": CPU first (the rest is not measured), the hub's counters; "final": also the nodes online and offline events (a read of every node).
    if (m === "stats") process.send!({ cpu: process.cpuUsage(), rss: process.memoryUsage().rss, hub: hub.stats });
    if (m === "final") {
      const cpu = process.cpuUsage();
      void (async () => {
        const list = await store.nodes.list();
        const offlineEvents = (await store.events.list({ kind: "node.offline", limit: 1000 })).length;
        process.send!({ cpu, rss: process.memoryUsage().rss, hub: hub.stats, online: list.filter((n) => n.online).length, nodes: list.length, offlineEvents });
      })();
    }
  });
}

main().catch((err) => {
  process.stderr.write(`heartbeat registry failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
