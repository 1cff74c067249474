/**
 * `npm run bench gateway`: unary ~100-byte echo through the gateway vs
 * straight to the servant, by the project's method (bench/harness.ts
 * runSuite: every process on its own, order rotated each round, rounds with
 * min..max, CPU per call of every process, steal, load average).
 *
 * The topology is production's: a real registry (SQLite, in this driver
 * process; it does no per-call work: the gateway caches the service map and
 * the endpoints), one servant process (Bench.EchoServer.EchoObj, registered
 * with the registry, found by the gateway through the registry's service map),
 * `sgrid gateway` in its own process (bench/gateway/gateway-process.ts), and a
 * client process per stack:
 *
 * - `direct`: generated proxy over gRPC -> the servant's gRPC adapter;
 * - `gateway`: the same client -> `sgrid gateway` -> the servant;
 * - `http-json`: JSON over keep-alive HTTP/1.1 -> `sgrid gateway --http` -> the servant.
 *
 * Pinning (taskset, 2 cores): the client alone on cpu 0, the whole server
 * side (servant, and the gateway in front of it) on cpu 1. Every stack then
 * gets the same load generator and one core of server side, so the ratio is
 * what the extra hop costs per core serving; the gateway cannot take CPU from
 * the client, nor get a core the direct stack does not have.
 *
 * The servant listens on a gRPC and a native (`sgrid://`) adapter; the
 * registry lists its native one (BENCH_GATEWAY_BACKEND=sgrid, the default: the
 * gateway learns the service over native reflection and forwards over the
 * native transport) or its gRPC one (`grpc`: gRPC on both hops). The
 * direct client uses the gRPC adapter either way: it stands for a client
 * outside the fleet, the gateway's users.
 *
 * Goal (issue 19): >= 0.5x direct calls/s at c=64.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { getLogLevel, setLogLevel } from "sgridnext";
import { RegistryServer } from "../../registry/server";
import type { ServiceIndex } from "../../registry/query/service-index";
import type { AdapterInput } from "../../registry/store/records";
import { BenchChild, formatSuite, runSuite, type Pinning, type ServerSide } from "../harness";
import { outputDir } from "../../test/helpers/paths";

export interface GatewayBenchOptions {
  durationMs: number;
  concurrencies: number[];
  rounds: number;
  warmupMs: number;
  json?: string;
}

const SERVICE = "bench.v1.Bench";

async function waitFor(what: string, ok: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`gateway bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function runGatewayBench(opts: GatewayBenchOptions): Promise<string> {
  const backend = process.env.BENCH_GATEWAY_BACKEND ?? "sgrid";
  if (backend !== "grpc" && backend !== "sgrid") throw new Error(`BENCH_GATEWAY_BACKEND must be grpc or sgrid, got "${backend}"`);
  const levelBefore = getLogLevel();
  setLogLevel(process.env.SGRID_LOG_LEVEL ?? "warn");
  const dataDir = outputDir("bench-gateway", { shared: true });
  const registry = new RegistryServer({ db: `sqlite:${path.join(dataDir, "registry.db")}`, listen: "127.0.0.1:0", dataDir, adminPassword: "bench-admin-pw", clusterToken: "bench-cluster-token", heartbeatTimeoutMs: 3_600_000 });
  const childModule = path.join(__dirname, "child.js");
  let servant: BenchChild | undefined;
  let servantPort = 0;
  try {
    await registry.start();
    const registryTarget = `127.0.0.1:${registry.address.port}`;
    const store = registry.store;
    await store.servers.create({ application: "Bench", name: "EchoServer", type: "node" });
    await store.nodes.upsert({ name: "bench-node", address: "127.0.0.1", agentVersion: "bench" });
    const startServerSide = async (stack: string, pin: Pinning): Promise<ServerSide> => {
      if (!servant) {
        servant = new BenchChild(childModule, ["servant"], pin.serverCpu, "servant");
        const { port, nativePort } = await servant.request<{ port: number; nativePort?: number }>("ready");
        servantPort = port;
        const adapters: AdapterInput[] = [backend === "sgrid" ? { obj: "EchoObj", host: "127.0.0.1", port: nativePort!, protocol: "sgrid" } : { obj: "EchoObj", host: "127.0.0.1", port, protocol: "grpc" }];
        const inst = await store.instances.create({ application: "Bench", server: "EchoServer", node: "bench-node", adapters, desiredState: "active" });
        await store.instances.reportObserved(inst.id, { state: "active", pid: servant.proc.pid ?? 1 });
        registry.changes.kick();
        const services = registry.part<{ services: ServiceIndex }>("query")!.services;
        await waitFor(`the registry's service map to list ${SERVICE}`, () => {
          try { return services.find(SERVICE).objs.length > 0; } catch { return false; }
        }, 20_000);
      }
      const s = servant;
      const servantSide = { role: "servant", cpu: () => s.cpu() };
      if (stack === "direct") return { port: servantPort, processes: [servantSide], stop: async () => undefined };
      const args = ["--listen", "127.0.0.1:0", "--registry", registryTarget, ...(stack === "http-json" ? ["--http", "127.0.0.1:0"] : [])];
      const gw = new BenchChild(path.join(__dirname, "gateway-process.js"), args, pin.serverCpu, `${stack}-gateway`);
      const ready = await gw.request<{ port: number; httpPort: number }>("ready").catch(async (err: unknown) => { await gw.stop(); throw err; });
      return { port: stack === "http-json" ? ready.httpPort : ready.port, processes: [{ role: "gateway", cpu: () => gw.cpu() }, servantSide], stop: () => gw.stop() };
    };
    const r = await runSuite({
      suite: "gateway",
      childModule,
      stacks: [
        { name: "direct", label: "generated proxy -> servant (gRPC)" },
        { name: "gateway", label: "generated proxy -> sgrid gateway -> servant (bytes forwarded)" },
        { name: "http-json", label: "HTTP/1.1 JSON client -> sgrid gateway --http -> servant (JSON transcoded)" },
      ],
      baseline: "direct",
      concurrencies: opts.concurrencies,
      rounds: opts.rounds,
      durationMs: opts.durationMs,
      warmupMs: opts.warmupMs,
      json: opts.json,
      startServerSide,
      placement: `client on cpu 0; servant and gateway on cpu 1 (taskset); registry in the driver, unpinned; the registry lists the servant's ${backend === "sgrid" ? "native (sgrid://)" : "gRPC"} adapter`,
    });
    return formatSuite(r);
  } finally {
    await servant?.stop();
    await registry.stop().catch(() => undefined);
    fs.rmSync(dataDir, { recursive: true, force: true });
    setLogLevel(levelBefore);
  }
}
