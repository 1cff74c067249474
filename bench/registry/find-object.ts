/**
 * Registry benchmark 1: FindObject lookups per second against a plain gRPC
 * echo (~100 bytes) served by another process on the same machine, through
 * the same generated-proxy client stack, at concurrency 1 and 64. The ratio
 * is what matters: FindObject is answered from memory, so it should cost
 * about what a trivial gRPC call costs.
 *
 * Registry: `sgrid registry` on SQLite in a child process, seeded with
 * 50 servers x 4 instances (one Obj each, 2 active + 2 inactive endpoints).
 */
import { Communicator, setLogLevel } from "sgridnext";
import { QueryProxy } from "sgridnext/gen/sgrid/registry/v1/query.sgrid";
import { openStore } from "../../registry/store";
import { EchoProxy } from "../../test/gen/demo/echo.sgrid";
import { bestOfAlternating, closedLoop, fmt, startBenchServer, table } from "../harness";
import { benchDataDir, startBenchRegistry } from "./registry-process";

const TEXT = "x".repeat(100);
export const BENCH_SERVERS = 50;
const NODES = 4;

/** The store's info lines (database opened / migrated) would interleave with the tables: warn and up only, unless SGRID_LOG_LEVEL says otherwise. */
export function quietLogs(): void {
  if (process.env.SGRID_LOG_LEVEL === undefined) setLogLevel("warn");
}

/** Seeds `servers` servers of application Bench, each with one instance per node declaring `GreeterObj`; returns the Obj names. */
export async function seedBenchObjs(db: string, servers = BENCH_SERVERS): Promise<string[]> {
  const store = await openStore(db);
  try {
    const nodes: string[] = [];
    for (let n = 0; n < NODES; n++) {
      const name = `bench-node-${n}`;
      await store.nodes.upsert({ name, address: `10.2.0.${n + 1}`, agentVersion: "bench" });
      nodes.push(name);
    }
    const objs: string[] = [];
    for (let s = 0; s < servers; s++) {
      const server = `S${s}`;
      await store.servers.create({ application: "Bench", name: server, type: "binary" });
      for (let n = 0; n < NODES; n++) {
        const inst = await store.instances.create({
          application: "Bench", server, node: nodes[n]!, adapters: [{ obj: "GreeterObj", host: `10.2.0.${n + 1}`, port: 20000 + s }],
          desiredState: n < 2 ? "active" : "inactive",
        });
        await store.instances.reportObserved(inst.id, { state: "active", pid: 100 + n });
      }
      objs.push(`Bench.${server}.GreeterObj`);
    }
    return objs;
  } finally {
    await store.close();
  }
}

export async function runFindObjectBench(durationMs: number, concurrencies: number[]): Promise<string> {
  quietLogs();
  const dataDir = benchDataDir();
  const objs = await seedBenchObjs(`sqlite:${dataDir}/registry.db`);
  const registry = await startBenchRegistry(dataDir);
  const echo = await startBenchServer(["127.0.0.1:0"]);
  const comm = new Communicator();
  try {
    const query = comm.stringToProxy(QueryProxy, registry.address);
    const proxy = comm.stringToProxy(EchoProxy, `127.0.0.1:${echo.adapters[0]!.port}`);
    let i = 0;
    const findCall = () => query.findObject({ obj: objs[i++ % objs.length]! });
    const echoCall = () => proxy.say({ text: TEXT });
    const check = await findCall();
    if (check.active.length !== 2 || check.inactive.length !== 2) throw new Error(`unexpected FindObject answer: ${JSON.stringify(check)}`);
    await closedLoop(8, 500, echoCall);
    await closedLoop(8, 500, findCall);
    const rows: string[][] = [];
    for (const c of concurrencies) {
      const [e, f] = await bestOfAlternating(c, durationMs, echoCall, findCall);
      rows.push([String(c), "plain gRPC echo (100 B)", fmt(e.callsPerSec), fmt(e.p50Ms, 3), fmt(e.p99Ms, 3), String(e.errors), "1.00"]);
      rows.push([String(c), "FindObject (registry)", fmt(f.callsPerSec), fmt(f.p50Ms, 3), fmt(f.p99Ms, 3), String(f.errors), fmt(f.callsPerSec / e.callsPerSec, 2)]);
    }
    return table(["conc", "call", "calls/s", "p50 ms", "p99 ms", "errors", "x echo calls/s"], rows);
  } finally {
    comm.close();
    echo.stop();
    await registry.stop();
  }
}
