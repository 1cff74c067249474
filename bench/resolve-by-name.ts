/**
 * Issue 5's benchmark: calls through a proxy that resolves its Obj name via
 * the registry (real RegistryServer on SQLite, in this process) over three
 * echo servant processes, versus a plain @grpc/grpc-js client round-robining
 * the same three (target >= 0.95x calls/s); and the time from an instance
 * becoming active in the registry to its first call through a watching proxy
 * (target p99 < 1 s; the change feed polls every 200 ms).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Communicator, getLogLevel, setLogLevel } from "sgridnext";
import { RegistryServer } from "../registry/server";
import { EchoProxy } from "../test/gen/demo/echo.sgrid";
import { startEchoServer, type Spawned } from "../test/helpers/processes";
import { bestOfAlternating, closedLoop, fmt, startBenchServer, table, type BenchServer } from "./harness";
import { outputDir } from "../test/helpers/paths";

const TEXT = "x".repeat(100);
const APP = "Bench";
const SERVER = "EchoServer";
const OBJ = `${APP}.${SERVER}.EchoObj`;

export async function runResolveByNameBench(durationMs: number, concurrencies: number[], registrations = 20): Promise<string> {
  const levelBefore = getLogLevel();
  setLogLevel(process.env.SGRID_LOG_LEVEL ?? "warn");
  const dataDir = outputDir("bench-resolve", { shared: true });
  const registry = new RegistryServer({ db: `sqlite:${path.join(dataDir, "registry.db")}`, listen: "127.0.0.1:0", dataDir, adminPassword: "bench-admin-pw", heartbeatTimeoutMs: 3_600_000 });
  await registry.start();
  const store = registry.store;
  await store.servers.create({ application: APP, name: SERVER, type: "node" });
  const register = async (port: number, i: number) => {
    const node = `bench-node-${i}`;
    await store.nodes.upsert({ name: node, address: "127.0.0.1", agentVersion: "bench" });
    const inst = await store.instances.create({ application: APP, server: SERVER, node, adapters: [{ obj: "EchoObj", host: "127.0.0.1", port }], desiredState: "active" });
    await store.instances.reportObserved(inst.id, { state: "active", pid: 1 });
    return inst.id;
  };

  const servers: BenchServer[] = [];
  let extra: Spawned | undefined;
  const comm = new Communicator({ registry: `127.0.0.1:${registry.address.port}`, env: {} });
  const plains: any[] = [];
  try {
    for (let i = 0; i < 3; i++) servers.push(await startBenchServer(["127.0.0.1:0"]));
    for (let i = 0; i < 3; i++) await register(servers[i]!.adapters[0]!.port, i);
    registry.changes.kick();

    const root = path.resolve(__dirname, "../..");
    const def = protoLoader.loadSync(path.join(root, "test/fixtures/protos/demo/echo.proto"), { includeDirs: [path.join(root, "test/fixtures/protos")] });
    const Echo = (grpc.loadPackageDefinition(def) as any).demo.echo.v1.Echo as grpc.ServiceClientConstructor;
    for (const s of servers) plains.push(new Echo(`127.0.0.1:${s.adapters[0]!.port}`, grpc.credentials.createInsecure()));
    let next = 0;
    const plainCall = () => new Promise((resolve, reject) => {
      const client = plains[next++ % plains.length];
      client.say({ text: TEXT }, { deadline: Date.now() + 3000 }, (err: Error | null, res: unknown) => (err ? reject(err) : resolve(res)));
    });
    const proxy = comm.stringToProxy(EchoProxy, OBJ);
    const proxyCall = () => proxy.say({ text: TEXT });
    // Warm up, and wait for the three endpoints to be resolved.
    for (let i = 0; i < 100 && proxy.$invoker.currentEndpoints().length < 3; i++) await proxyCall().catch(() => new Promise((r) => setTimeout(r, 50)));
    await closedLoop(8, 500, plainCall);
    await closedLoop(8, 500, proxyCall);

    const rows: string[][] = [];
    for (const c of concurrencies) {
      const [p, x] = await bestOfAlternating(c, durationMs, plainCall, proxyCall);
      rows.push([String(c), "plain grpc-js, round-robin over 3", fmt(p.callsPerSec), fmt(p.p50Ms, 3), fmt(p.p99Ms, 3), "1.00", String(p.errors)]);
      rows.push([String(c), "sgrid proxy by Obj name", fmt(x.callsPerSec), fmt(x.p50Ms, 3), fmt(x.p99Ms, 3), fmt(x.callsPerSec / p.callsPerSec, 2), String(x.errors)]);
    }
    const throughput = table(["conc", "client", "calls/s", "p50 ms", "p99 ms", "x plain calls/s", "errors"], rows);

    // Registration to first call: a 4th servant flips inactive -> active; a stream of calls
    // through the watching proxy runs meanwhile; time until one is served by it.
    extra = await startEchoServer({ TEST_NAME: "new", SGRID_ADAPTERS: JSON.stringify({ EchoObj: "127.0.0.1:0" }), SGRID_REGISTRY: "", SGRID_AGENT: "" });
    const extraPort = extra.adapters[0]!.port;
    const extraId = await register(extraPort, 3);
    registry.changes.kick();
    const samples: number[] = [];
    for (let i = 0; i < registrations; i++) {
      await store.instances.setDesired(extraId, { state: "inactive" });
      registry.changes.kick();
      while (proxy.$invoker.currentEndpoints().some((e) => e.port === extraPort)) await new Promise((r) => setTimeout(r, 10));
      let hit = false;
      const t0 = performance.now();
      await store.instances.setDesired(extraId, { state: "active" });
      // No kick: the change feed's own polling is part of what is measured.
      await Promise.all(Array.from({ length: 8 }, async () => {
        while (!hit && performance.now() - t0 < 10_000) {
          const r = await proxy.say({ text: "probe" }).catch(() => undefined);
          if (r?.metadata.served_by === "new" && !hit) { hit = true; samples.push(performance.now() - t0); }
        }
      }));
    }
    samples.sort((a, b) => a - b);
    const q = (p: number) => samples[Math.min(samples.length - 1, Math.floor(samples.length * p))] ?? NaN;
    const latency = table(["registrations", "p50 ms", "p99 ms", "max ms"], [[String(samples.length), fmt(q(0.5)), fmt(q(0.99)), fmt(samples.at(-1) ?? NaN)]]);
    return `${throughput}\n\nInstance active in the registry -> first call through a watching proxy (target p99 < 1000 ms):\n${latency}`;
  } finally {
    for (const p of plains) p.close();
    comm.close();
    for (const s of servers) s.stop();
    extra?.child.kill("SIGKILL");
    await registry.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
    setLogLevel(levelBefore);
  }
}
