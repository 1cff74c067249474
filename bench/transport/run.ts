/**
 * Transport benchmark: unary ~100-byte echo, client and server in separate
 * processes, closed loop at each concurrency, for every stack in stacks.ts,
 * by the project's method (bench/harness.ts runSuite: pinned, rotated,
 * rounds with min..max, CPU per call of both processes, steal, JSON).
 * Ratios against @tars/rpc, and calls/s against the bare framed-TCP echo
 * (the ceiling the native transport is measured against).
 *
 *   node dist/bench/transport/run.js [--duration 3000] [--warmup 1000]
 *        [--concurrency 1,64] [--rounds 3] [--stacks sgrid-proxy,tars,...] [--json file]
 */
import * as path from "node:path";
import { formatSuite, runSuite, type Spread, type SuiteResult } from "../harness";
import { STACK_LABELS, STACKS, type StackName } from "./stacks";

/** The compiled child module both the transport and the grpc suites drive. */
export const STACKS_CHILD = path.join(__dirname, "child.js");

export interface TransportBenchOptions {
  /** Measured window per round, ms. */
  durationMs: number;
  /** Closed-loop concurrencies to measure. */
  concurrencies: number[];
  /** Warm-up before each window, ms. Default 1000. */
  warmupMs?: number;
  /** Rounds; figures are medians with min..max. Default 3. */
  rounds?: number;
  /** Stacks to run. Default all. */
  stacks?: readonly StackName[];
  /** The stack others are divided by. Default tars. */
  baseline?: StackName;
  /** Further stacks shown as a calls/s ratio column each ("x bare"). Default bare when it runs. */
  references?: readonly StackName[];
  /** JSON file (see SuiteOptions.json). */
  json?: string;
  /** Name of the suite in the JSON. Default transport. */
  suite?: string;
}

/** Runs the stacks (baseline included even if not listed) at every concurrency. */
export function runTransportBench(opts: TransportBenchOptions): Promise<SuiteResult> {
  const baseline = opts.baseline ?? "tars";
  const names = opts.stacks ?? STACKS;
  const stacks = (names.includes(baseline) ? names : [baseline, ...names]).map((name) => ({ name, label: STACK_LABELS[name] }));
  return runSuite({
    suite: opts.suite ?? "transport",
    childModule: STACKS_CHILD,
    stacks,
    baseline,
    references: opts.references ?? (stacks.some((s) => s.name === "bare") ? ["bare"] : []),
    concurrencies: opts.concurrencies,
    rounds: opts.rounds ?? 3,
    durationMs: opts.durationMs,
    warmupMs: opts.warmupMs ?? 1000,
    json: opts.json,
  });
}

/** Issue 14's goals for the native path, one line each in transportTargets(). */
export const TRANSPORT_TARGETS = Object.freeze({ vsTars: 2, vsBare: 0.9, p99VsTars: 1 });

/** The targets' headline, printed above the table. */
export const TRANSPORT_TARGETS_LINE =
  `Targets (native = generated proxy over sgrid): >= ${TRANSPORT_TARGETS.vsTars}x @tars/rpc calls/s and >= ${TRANSPORT_TARGETS.vsBare}x the bare framed-TCP echo, at c=1 and at c=64; p99 <= ${TRANSPORT_TARGETS.p99VsTars}x @tars/rpc's.`;

/**
 * Each target beside its figure from this run: the per-round ratio's median
 * (min..max), "met" when the median meets it, and whether every round did.
 * Lines for stacks that did not run are left out.
 */
export function transportTargets(r: SuiteResult): string {
  const lines: string[] = [];
  const check = (what: string, s: Spread | undefined, goal: number, atLeast: boolean) => {
    if (s === undefined) return;
    const ok = (v: number) => (atLeast ? v >= goal : v <= goal);
    const verdict = ok(s.median) ? (ok(atLeast ? s.min : s.max) ? "met (every round)" : "met (median; not every round)") : "NOT met";
    lines.push(`  ${what} ${atLeast ? ">=" : "<="} ${goal}x: ${s.median.toFixed(2)}x (${s.min.toFixed(2)}..${s.max.toFixed(2)}) ${verdict}`);
  };
  for (const c of new Set(r.rows.map((x) => x.concurrency))) {
    const native = r.rows.find((x) => x.stack === "sgrid-proxy" && x.concurrency === c);
    if (native === undefined) continue;
    if (r.baseline === "tars") {
      check(`c=${c} native calls/s x tars`, native.vsBaseline?.callsPerSec, TRANSPORT_TARGETS.vsTars, true);
      check(`c=${c} native p99 x tars`, native.vsBaseline?.p99Ms, TRANSPORT_TARGETS.p99VsTars, false);
    }
    check(`c=${c} native calls/s x bare`, native.vsReference?.bare, TRANSPORT_TARGETS.vsBare, true);
    // What the wire allows: a native figure x tars cannot go past the bare echo's.
    const bare = r.rows.find((x) => x.stack === "bare" && x.concurrency === c)?.vsBaseline?.callsPerSec;
    if (bare !== undefined && r.baseline === "tars") lines.push(`  (c=${c} the bare echo itself: ${bare.median.toFixed(2)}x tars (${bare.min.toFixed(2)}..${bare.max.toFixed(2)}))`);
  }
  return lines.length === 0 ? "" : ["Targets against this run:", ...lines].join("\n");
}

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (require.main === module) {
  const stacks = argValue("stacks")?.split(",").map((s) => s.trim()) as StackName[] | undefined;
  for (const s of stacks ?? []) {
    if (!(STACKS as readonly string[]).includes(s)) {
      console.error(`unknown stack "${s}" (known: ${STACKS.join(", ")})`);
      process.exit(2);
    }
  }
  const opts: TransportBenchOptions = {
    durationMs: Number(argValue("duration") ?? 3000),
    warmupMs: Number(argValue("warmup") ?? 1000),
    concurrencies: (argValue("concurrency") ?? "1,64").split(",").map(Number),
    rounds: Number(argValue("rounds") ?? 3),
    stacks,
    json: argValue("json"),
  };
  console.error(`transport bench: ${opts.durationMs} ms windows, ${opts.rounds} round(s), concurrency ${opts.concurrencies.join(",")}`);
  console.log(TRANSPORT_TARGETS_LINE);
  runTransportBench(opts).then((r) => {
    console.log(formatSuite(r));
    console.log(transportTargets(r));
  }, (err) => {
    console.error(err);
    process.exit(1);
  });
}
