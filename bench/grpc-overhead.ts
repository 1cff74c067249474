/**
 * Issue 2 and 14's benchmark: ~100-byte unary echo to a server in another
 * process, through the generated proxy + servant over gRPC against plain
 * @grpc/grpc-js on both sides (static generated codecs, the same 3 s
 * deadline per call as the proxy's timeoutMs, the same grpc-js channel and
 * server options as Sgrid's connections and adapters). The stacks are the transport
 * suite's (bench/transport/stacks.ts), run by the project's method
 * (bench/harness.ts runSuite).
 * Targets: proxy + servant >= 1.0x plain calls/s at c=1 and c=64, p99 and CPU per call <= 1.0x.
 */
import { formatSuite } from "./harness";
import { runTransportBench } from "./transport/run";

export interface GrpcBenchOptions {
  durationMs: number;
  concurrencies: number[];
  rounds: number;
  warmupMs: number;
  json?: string;
}

export async function runGrpcOverhead(opts: GrpcBenchOptions): Promise<string> {
  const r = await runTransportBench({ ...opts, suite: "grpc", stacks: ["grpc-js", "grpc-proxy"], baseline: "grpc-js" });
  return formatSuite(r);
}
