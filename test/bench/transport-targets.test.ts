import { expect } from "chai";
import type { Spread, SuiteResult, SuiteRow } from "../../bench/harness";
import { transportTargets } from "../../bench/transport/run";

const s = (median: number, min: number, max: number): Spread => ({ median, min, max });

function row(stack: string, concurrency: number, extra: Partial<SuiteRow>): SuiteRow {
  const one = s(1, 1, 1);
  return { stack, label: stack, concurrency, rounds: [], callsPerSec: one, p50Ms: one, p99Ms: one, cpuUsPerCall: one, cpuByProcess: {}, errors: 0, ...extra };
}

function suite(rows: SuiteRow[]): SuiteResult {
  return {
    suite: "transport", startedAt: "", node: "", cpus: 2, pinning: { pinned: false, reason: "test" }, durationMs: 1, warmupMs: 1,
    roundCount: 3, baseline: "tars", references: ["bare"], loadAvg: { start: [0, 0, 0], end: [0, 0, 0] }, rows,
  };
}

describe("bench transport targets", () => {
  it("says met, met on the median only, or not met for each of issue 14's native-path targets", () => {
    const text = transportTargets(suite([
      row("sgrid-proxy", 1, { vsBaseline: { callsPerSec: s(1.2, 1.1, 1.3), p99Ms: s(0.8, 0.5, 1.2), cpuUsPerCall: s(1, 1, 1) }, vsReference: { bare: s(0.95, 0.92, 0.99) } }),
      row("bare", 1, { vsBaseline: { callsPerSec: s(1.05, 0.9, 1.2), p99Ms: s(1, 1, 1), cpuUsPerCall: s(1, 1, 1) } }),
      row("tars", 1, {}),
      row("sgrid-proxy", 64, { vsBaseline: { callsPerSec: s(2.3, 2.1, 2.5), p99Ms: s(0.4, 0.3, 0.5), cpuUsPerCall: s(1, 1, 1) }, vsReference: { bare: s(0.45, 0.3, 0.91) } }),
      row("tars", 64, {}),
    ]));
    const lines = text.split("\n");
    expect(lines).to.include("  c=1 native calls/s x tars >= 2x: 1.20x (1.10..1.30) NOT met");
    expect(lines).to.include("  c=1 native p99 x tars <= 1x: 0.80x (0.50..1.20) met (median; not every round)");
    expect(lines).to.include("  c=1 native calls/s x bare >= 0.9x: 0.95x (0.92..0.99) met (every round)");
    expect(lines).to.include("  (c=1 the bare echo itself: 1.05x tars (0.90..1.20))");
    expect(lines).to.include("  c=64 native calls/s x tars >= 2x: 2.30x (2.10..2.50) met (every round)");
    expect(lines).to.include("  c=64 native calls/s x bare >= 0.9x: 0.45x (0.30..0.91) NOT met");
    // No bare echo at c=64 in this run: no line about it.
    expect(text).not.to.include("c=64 the bare echo itself");
  });

  it("prints nothing when the native stack did not run", () => {
    expect(transportTargets(suite([row("tars", 1, {}), row("bare", 1, {})]))).to.equal("");
  });
});
