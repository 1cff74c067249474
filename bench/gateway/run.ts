/**
 * `npm run bench gateway`: unary ~100-byte echo through the gateway vs
 * straight to the servant, by the project's method (bench/harness.ts
 * runSuite: client and server in their own processes, pinned, order rotated
 * each round, rounds with min..max, CPU per call, steal).
 * Goal (issue 19): >= 0.5x direct calls/s at c=64. The `http-json` stack is
 * the HTTP front: JSON over keep-alive HTTP/1.1, transcoded with reflection.
 */
import * as path from "node:path";
import { formatSuite, runSuite } from "../harness";

export interface GatewayBenchOptions {
  durationMs: number;
  concurrencies: number[];
  rounds: number;
  warmupMs: number;
  json?: string;
}

export async function runGatewayBench(opts: GatewayBenchOptions): Promise<string> {
  const r = await runSuite({
    suite: "gateway",
    childModule: path.join(__dirname, "child.js"),
    stacks: [
      { name: "direct", label: "generated proxy -> servant (gRPC)" },
      { name: "gateway", label: "generated proxy -> gateway -> servant (gRPC, bytes forwarded)" },
      { name: "http-json", label: "HTTP/1.1 JSON client -> gateway's HTTP front -> servant (JSON transcoded)" },
    ],
    baseline: "direct",
    concurrencies: opts.concurrencies,
    rounds: opts.rounds,
    durationMs: opts.durationMs,
    warmupMs: opts.warmupMs,
    json: opts.json,
  });
  return formatSuite(r);
}
