/**
 * `npm run bench`: prints figures and ratios against baselines measured in
 * the same run. Never fails on the figures (exit 0); timing goals live here,
 * not in tests. BENCH_DURATION_MS sets the length of each measurement.
 */
import { runGrpcOverhead } from "./grpc-overhead";

async function main(): Promise<void> {
  const durationMs = Number(process.env.BENCH_DURATION_MS ?? 3000);
  const only = process.argv.slice(2);
  const want = (name: string) => only.length === 0 || only.includes(name);
  process.stdout.write(`sgrid benchmarks (${durationMs} ms per measurement, node ${process.version})\n\n`);
  if (want("grpc")) {
    process.stdout.write("## Generated proxy vs plain @grpc/grpc-js (unary ~100-byte echo, server in another process)\n");
    process.stdout.write(`${await runGrpcOverhead(durationMs, [1, 64])}\n\n`);
  }
}

main().then(() => process.exit(0), (err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack}\n`);
  process.exit(0);
});
