/**
 * A fault scenario and how one is run, shared by the fault suite
 * (test/fault/*.test.ts, which asserts 0 failed calls) and `npm run bench
 * chaos` (which prints them all in one table).
 *
 * Every scenario runs on a cluster of its own (./cluster.ts) with the same
 * services: `Fault.EchoServer` on every node (EchoObj) and
 * `Fault.SoloServer` on the first node only (SoloObj: one instance, so a
 * fault around it has no other endpoint to fail over to). A caller process
 * calls both by Obj name at RATE calls/s from before the fault until the
 * cluster has recovered and a few seconds more. Each phase of the fault is
 * counted on its own (`phases`), and recovery time runs from the moment the
 * faulty part is started again (`back()`) until the scenario's own run is
 * over (a database scenario waits there until heartbeats are recorded again),
 * every endpoint is listed active again, and no call fails any more.
 */
import { FaultCluster, type FaultClusterOptions } from "./cluster";
import { countsBetween, formatCounts, type CallerCounts } from "./counts";
import type { Caller } from "./caller";

export const ECHO_SERVER = "Fault.EchoServer";
export const ECHO_OBJ = `${ECHO_SERVER}.EchoObj`;
export const SOLO_SERVER = "Fault.SoloServer";
export const SOLO_OBJ = `${SOLO_SERVER}.SoloObj`;
/** Total calls per second of the caller. */
export const RATE = 250;
/** Successful calls per Obj the caller must make after recovery before it is stopped. */
const CALLS_AFTER = 400;

export interface Phase {
  name: string;
  ok: number;
  failed: number;
  byCode: Record<string, number>;
  ms: number;
}

export interface ScenarioResult {
  scenario: string;
  ok: number;
  failed: number;
  byCode: Record<string, number>;
  /** Calls per second over the whole run. */
  rate: number;
  /** From the faulty part's return to every endpoint active again and the last failed call, ms (undefined: nothing came back). */
  recoveryMs?: number;
  phases: Phase[];
  errors: string[];
  /** What the scenario checked beside the counts (shown by the test). */
  notes: string[];
}

export interface ScenarioContext {
  cluster: FaultCluster;
  caller: Caller;
  /** Ends the current phase (counts since the last mark) and names the next one. */
  mark(next: string): void;
  /** Remembers when the faulty part came back (recovery is measured from here). */
  back(): void;
  note(text: string): void;
  /** Every endpoint the cluster should have, for FindObject. */
  expected: Record<string, number>;
}

export interface Scenario {
  name: string;
  cluster: Omit<FaultClusterOptions, "name">;
  /**
   * Runs before the cluster starts (a database of the scenario's own...);
   * `db` replaces the cluster's database, `cleanup` runs after its teardown.
   */
  prepare?(): Promise<{ db?: string; cleanup(): Promise<void> }>;
  /** Runs the fault; the caller is calling throughout. */
  run(ctx: ScenarioContext): Promise<void>;
  /** Checks after recovery (what else a user would look at); throws naming what is wrong. The caller still calls. */
  verify?(ctx: ScenarioContext): Promise<void>;
}

/** Runs one scenario on a fresh cluster and tears it down; resolves with its counts. */
export async function runScenario(s: Scenario, log: (line: string) => void = () => undefined): Promise<ScenarioResult> {
  const prepared = await s.prepare?.();
  try {
    return await runOnCluster(s, { ...s.cluster, ...(prepared?.db ? { db: prepared.db } : {}) }, log);
  } finally {
    await prepared?.cleanup();
  }
}

async function runOnCluster(s: Scenario, options: Omit<FaultClusterOptions, "name">, log: (line: string) => void): Promise<ScenarioResult> {
  const cluster = await FaultCluster.start({ name: s.name.replace(/\W+/g, "-").slice(0, 40), ...options });
  try {
    const nodes = cluster.nodes;
    await cluster.publishEcho(ECHO_SERVER, nodes, "EchoObj", "1.0.0");
    await cluster.publishEcho(SOLO_SERVER, [nodes[0]!], "SoloObj", "1.0.0");
    const expected = { [ECHO_OBJ]: nodes.length, [SOLO_OBJ]: 1 };
    await cluster.waitAllActive(expected);
    const caller = await cluster.startCaller([ECHO_OBJ, SOLO_OBJ], RATE);
    await caller.waitOk(100);
    const phases: Phase[] = [];
    const notes: string[] = [];
    let phaseName = "before";
    let phaseStart: CallerCounts = { ...caller.counts(), ok: 0, failed: 0, byCode: {}, elapsedMs: 0 };
    let backAt: number | undefined;
    const mark = (next: string): void => {
      const now = caller.counts();
      const d = countsBetween(phaseStart, now);
      phases.push({ name: phaseName, ...d });
      log(`  ${s.name}: ${phaseName}: ${formatCounts(d)} in ${(d.ms / 1000).toFixed(1)} s`);
      phaseName = next;
      phaseStart = now;
    };
    const ctx: ScenarioContext = { cluster, caller, mark, back: () => { backAt = Date.now(); }, note: (t) => notes.push(t), expected };
    await s.run(ctx);
    await cluster.waitAllActive(expected, 120_000);
    const allActiveAt = Date.now();
    await s.verify?.(ctx);
    await caller.waitOk(CALLS_AFTER);
    const final = await caller.stop();
    // Recovered: every endpoint listed active again, and no call failing any more.
    const lastFailAt = final.failedAt.length > 0 ? final.startedAt + final.failedAt[final.failedAt.length - 1]! : 0;
    const recoveryMs = backAt === undefined ? undefined : Math.max(allActiveAt, lastFailAt) - backAt;
    const d = countsBetween(phaseStart, final);
    phases.push({ name: phaseName, ...d });
    log(`  ${s.name}: ${phaseName}: ${formatCounts(d)} in ${(d.ms / 1000).toFixed(1)} s`);
    const result: ScenarioResult = {
      scenario: s.name, ok: final.ok, failed: final.failed, byCode: final.byCode, rate: final.ok / (final.elapsedMs / 1000),
      recoveryMs, phases, errors: final.errors, notes,
    };
    log(`${s.name}: ${formatCounts(final)} at ${result.rate.toFixed(0)} calls/s${recoveryMs === undefined ? "" : `, recovered in ${(recoveryMs / 1000).toFixed(1)} s`}`);
    for (const e of final.errors) log(`  ${e}`);
    for (const n of notes) log(`  ${n}`);
    return result;
  } finally {
    await cluster.stop();
  }
}

/** One table: scenario, ok, failed (by code), recovery time. */
export function formatResults(results: ScenarioResult[]): string {
  const rows = results.map((r) => [r.scenario, String(r.ok), r.failed === 0 ? "0" : formatCounts(r).replace(/^ok \d+, failed /, ""),
    `${r.rate.toFixed(0)}`, r.recoveryMs === undefined ? "-" : `${(r.recoveryMs / 1000).toFixed(1)} s`]);
  const head = ["scenario", "ok", "failed (by code)", "calls/s", "recovery"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(head), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}
