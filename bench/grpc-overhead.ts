/**
 * Issue 2's benchmark: ~100-byte unary echo to a servant in another process,
 * through the generated proxy (gRPC transport) and through a plain
 * @grpc/grpc-js client written as a careful user would (proto-loader,
 * one client, deadline per call). Same run, same server.
 * Targets: proxy throughput >= 0.95x plain, p99 <= 1.1x plain.
 */
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Communicator } from "sgridnext";
import { EchoProxy } from "../test/gen/demo/echo.sgrid";
import { bestOfAlternating, closedLoop, fmt, startBenchServer, table } from "./harness";

const TEXT = "x".repeat(100);

export async function runGrpcOverhead(durationMs: number, concurrencies: number[]): Promise<string> {
  const server = await startBenchServer(["127.0.0.1:0"]);
  const port = server.adapters[0]!.port;
  const root = path.resolve(__dirname, "../..");
  const def = protoLoader.loadSync(path.join(root, "test/fixtures/protos/demo/echo.proto"), { includeDirs: [path.join(root, "test/fixtures/protos")] });
  const Echo = (grpc.loadPackageDefinition(def) as any).demo.echo.v1.Echo as grpc.ServiceClientConstructor;
  const plain = new Echo(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as any;
  const comm = new Communicator();
  const proxy = comm.stringToProxy(EchoProxy, `127.0.0.1:${port}`);
  const plainCall = () => new Promise((resolve, reject) =>
    plain.say({ text: TEXT }, { deadline: Date.now() + 3000 }, (err: Error | null, res: unknown) => (err ? reject(err) : resolve(res))));
  const proxyCall = () => proxy.say({ text: TEXT });
  // Warm both paths up.
  await closedLoop(8, 500, plainCall);
  await closedLoop(8, 500, proxyCall);
  const rows: string[][] = [];
  for (const c of concurrencies) {
    const [p, x] = await bestOfAlternating(c, durationMs, plainCall, proxyCall);
    rows.push([String(c), "plain @grpc/grpc-js", fmt(p.callsPerSec), fmt(p.p50Ms, 3), fmt(p.p99Ms, 3), "1.00", "1.00"]);
    rows.push([String(c), "sgrid proxy (grpc)", fmt(x.callsPerSec), fmt(x.p50Ms, 3), fmt(x.p99Ms, 3), fmt(x.callsPerSec / p.callsPerSec, 2), fmt(x.p99Ms / p.p99Ms, 2)]);
  }
  plain.close();
  comm.close();
  server.stop();
  return table(["conc", "client", "calls/s", "p50 ms", "p99 ms", "x plain calls/s", "x plain p99"], rows);
}
