/**
 * `npm run bench`: prints figures and ratios against baselines measured in
 * the same run. Never fails on the figures (exit 0); timing goals live here,
 * not in tests. BENCH_DURATION_MS sets the length of each measurement.
 * Suites: grpc, gateway, servant-start, resolve, transport, registry-find, registry-watch, registry-heartbeat (and the ones listed below); name some to run only
 * those: `node dist/bench/run.js transport`. `chaos` (the fault suite's
 * scenarios, minutes) runs only when named: `npm run bench chaos`; so do
 * `fanout` (a 50 MB publish to 1 vs 10 real agents, minutes) and
 * `agent-soak` (the agent suite with a 10-minute soak, BENCH_SOAK_MS).
 * BENCH_ROUNDS (default 3) sets the rounds of the suites on the shared method
 * (grpc, transport); they write JSON to bench-results/<suite>-<time>.json, or
 * to `--json <file>` when one such suite is named.
 */
import { runGrpcOverhead } from "./grpc-overhead";
import { runAgentBench } from "./agent/agent-bench";
import { runTransportBench, TRANSPORT_TARGETS_LINE, transportTargets } from "./transport/run";
import { fmt, formatSuite } from "./harness";
import { runFindObjectBench } from "./registry/find-object";
import { runWatchLatencyBench } from "./registry/watch-latency";
import { type HeartbeatBenchResult, runHeartbeatBench } from "./registry/heartbeat";
import { runResolveByNameBench } from "./resolve-by-name";
import { runChaosBench } from "./chaos";
import { runServantStartBench } from "./servant/servant-start";
import { runFanoutBench } from "./fanout";
import { runGatewayBench } from "./gateway/run";
import { keepPendingOutput } from "../test/helpers/output";
import { installReaper } from "../test/helpers/reaper";

async function main(): Promise<void> {
  // Everything a suite starts (children, the servants an agent starts, cgroups) ends with this process, also when
  // it is interrupted; what a SIGKILLed run left, the next run sweeps, with the scratch folders (outputDir) of runs
  // that did not end well.
  installReaper();
  const durationMs = Number(process.env.BENCH_DURATION_MS ?? 3000);
  const args = process.argv.slice(2);
  const jsonAt = args.indexOf("--json");
  const jsonArg = jsonAt >= 0 ? args.splice(jsonAt, 2)[1] : undefined;
  const only = args;
  const json = only.length === 1 ? jsonArg : undefined; // one file for one suite
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const warmupMs = Math.min(1000, durationMs);
  const want = (name: string) => only.length === 0 || only.includes(name);
  process.stdout.write(`sgrid benchmarks (${durationMs} ms per measurement, node ${process.version})\n\n`);
  if (want("grpc")) {
    process.stdout.write("## Generated proxy + servant over gRPC vs plain @grpc/grpc-js (unary ~100-byte echo, client and server in their own processes)\n");
    process.stdout.write("Targets: >= 1.0x plain calls/s at c=1 and c=64, p99 <= 1.0x, CPU per call <= 1.0x.\n");
    process.stdout.write(`${await runGrpcOverhead({ durationMs, concurrencies: [1, 64], rounds, warmupMs, json })}\n\n`);
  }
  if (want("agent") || only.includes("agent-soak")) {
    // agent-soak (only when named): the same suite with a 10-minute soak unless BENCH_SOAK_MS says otherwise.
    const soakMs = Number(process.env.BENCH_SOAK_MS ?? (only.includes("agent-soak") ? 600_000 : 20_000));
    const idleMs = Number(process.env.BENCH_IDLE_MS ?? 10_000);
    process.stdout.write(`## Node agent: restart latency, RSS and heap idle (${idleMs / 1000} s) and over a ${soakMs / 1000} s soak supervising 50 sleep-loop instances, CPU (\`sgrid node\` child, registry stand-in)\n`);
    process.stdout.write("Target: RSS < 60 MB idle, flat over a 10-minute soak with 50 instances (`npm run bench agent-soak`).\n");
    process.stdout.write(`${await runAgentBench({ idleMs, soakMs })}\n\n`);
  }
  if (want("servant-start")) {
    const rounds = Number(process.env.BENCH_SERVANT_ROUNDS ?? 5);
    process.stdout.write("## Servant footprint: a hello servant scaffolded by `sgrid create` vs a plain @grpc/grpc-js server with the same service (separate processes)\n");
    process.stdout.write(`${await runServantStartBench(rounds)}\n\n`);
  }
  if (want("transport")) {
    process.stdout.write("## Transports: native sgrid vs gRPC vs @tars/rpc vs moleculer (unary ~100-byte echo, separate processes)\n");
    process.stdout.write(`${TRANSPORT_TARGETS_LINE}\n`);
    const r = await runTransportBench({ durationMs, concurrencies: [1, 64], rounds, warmupMs, json });
    process.stdout.write(`${formatSuite(r)}\n${transportTargets(r)}\n\n`);
  }
  if (want("gateway")) {
    process.stdout.write("## Gateway: unary ~100-byte echo through `sgrid gateway` vs straight to the servant (servant, gateway and client each in its own process, a real registry in the driver)\n");
    process.stdout.write("Target: >= 0.5x direct calls/s at c=64.\n");
    process.stdout.write(`${await runGatewayBench({ durationMs, concurrencies: [1, 64], rounds, warmupMs, json })}\n\n`);
  }
  if (want("registry-find")) {
    process.stdout.write("## Registry FindObject vs a plain gRPC echo (registry on SQLite in another process, answers from memory)\n");
    process.stdout.write(`${await runFindObjectBench(durationMs, [1, 64])}\n\n`);
  }
  if (want("registry-watch")) {
    process.stdout.write("## Registry WatchObject propagation (a change until every watcher has the new list: this registry's own write, another writer's, across two registries on MariaDB)\n");
    process.stdout.write(`${await runWatchLatencyBench(durationMs)}\n\n`);
  }
  if (want("resolve")) {
    process.stdout.write("## Proxy by Obj name (real registry, 3 servant processes) vs plain @grpc/grpc-js round-robin over the same 3; registration -> first call\n");
    process.stdout.write(`${await runResolveByNameBench(durationMs, [1, 64])}\n\n`);
  }
  if (want("registry-heartbeat")) {
    // Its own length (BENCH_HEARTBEAT_MS, default 20 s): several heartbeat intervals are needed, whatever BENCH_DURATION_MS says.
    const hbMs = Number(process.env.BENCH_HEARTBEAT_MS ?? 20_000);
    const hbNodes = Number(process.env.BENCH_HEARTBEAT_NODES ?? 1000);
    process.stdout.write(`## Registry heartbeat capacity (${hbNodes} simulated agents x 10 instances, 5 s interval, ${hbMs / 1000} s, registry on SQLite in another process, agents in their own), on its native port and on its gRPC port${process.env.BENCH_HEARTBEAT_MYSQL ? ", then native on MySQL" : ""}\n`);
    // BENCH_HEARTBEAT_CLIENTS: agent processes (default one per 2,500 agents).
    const hbClients = process.env.BENCH_HEARTBEAT_CLIENTS ? Number(process.env.BENCH_HEARTBEAT_CLIENTS) : undefined;
    // BENCH_HEARTBEAT_TRANSPORTS: the registry ports measured, in this order (default: the native port, then the gRPC one as the baseline).
    const transports = (process.env.BENCH_HEARTBEAT_TRANSPORTS ?? "sgrid,grpc").split(",").map((t) => t.trim()).filter((t) => t !== "");
    for (const t of transports) if (t !== "grpc" && t !== "sgrid") throw new Error(`BENCH_HEARTBEAT_TRANSPORTS: unknown transport "${t}" (grpc or sgrid)`);
    const results = new Map<string, HeartbeatBenchResult>();
    for (const transport of transports as Array<"grpc" | "sgrid">) {
      const r = await runHeartbeatBench({ nodes: hbNodes, durationMs: hbMs, clients: hbClients, transport });
      results.set(transport, r);
      process.stdout.write(`${r.text}\n\n`);
    }
    // BENCH_HEARTBEAT_MYSQL=mysql://user:pass@host:port: one more run, native port, on a database made there (production's setup).
    const mysql = process.env.BENCH_HEARTBEAT_MYSQL;
    if (mysql) {
      const r = await runHeartbeatBench({ nodes: hbNodes, durationMs: hbMs, clients: hbClients, transport: "sgrid", mysql });
      process.stdout.write(`${r.text}\n\n`);
    }
    const native = results.get("sgrid");
    const grpcPort = results.get("grpc");
    if (native && grpcPort) {
      process.stdout.write(`registry CPU per heartbeat, native port vs gRPC port (same run): ${fmt(native.cpuPerHeartbeatUs)} µs vs ${fmt(grpcPort.cpuPerHeartbeatUs)} µs = ${(native.cpuPerHeartbeatUs / grpcPort.cpuPerHeartbeatUs).toFixed(2)}x (target <= 50 µs); RSS ${fmt(native.rssBytes / 1048576)} vs ${fmt(grpcPort.rssBytes / 1048576)} MiB\n\n`);
    }
  }
  if (only.includes("chaos")) {
    process.stdout.write("## Chaos: control-plane faults on a real cluster (registry, 2 agents in network namespaces), caller process at 250 calls/s by Obj name\n");
    process.stdout.write(`${await runChaosBench((line) => process.stdout.write(`${line}\n`))}\n\n`);
  }
  if (only.includes("fanout")) {
    process.stdout.write("## Fan-out: publishing a 50 MB package to 10 nodes vs 1 (registry, 10 agents in network namespaces; target <= 2x)\n");
    process.stdout.write(`${await runFanoutBench((line) => process.stdout.write(`${line}\n`))}\n\n`);
  }
}

main().then(() => process.exit(0), (err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack}\n`);
  // What it made under test-output/ (the chaos scenarios' clusters) stays to be looked at; the exit handler says where.
  keepPendingOutput();
  process.exit(1);
});
