/**
 * A canary publish, decided before anything runs: its options checked and
 * filled with the defaults, which instances take the new version first, and
 * the endpoint weights that give them the share of calls asked for. Pure: no
 * store, no clock. The runner's side is ./canary.ts; the verdict
 * ./canary-judge.ts.
 */
import { InvalidArgumentError } from "sgridnext";
import type { CanaryOptions } from "sgridnext/gen/sgrid/registry/v1/admin";
import type { InstanceRecord, JsonObject, TaskRecord } from "../store/records";

/** The thresholds and times a canary uses when the request leaves them out (README, "Canary publish"). */
export const CANARY_DEFAULTS = Object.freeze({
  /** Seconds the canary runs before it is judged passed. Flagger's analysis is 5 steps of 1 min by default. */
  bakeS: 300,
  /** Most the canary's error rate may be above the other instances', percentage points. */
  maxErrorRateDelta: 1,
  /** Most the canary's p99 may be, as a multiple of the other instances' p99. */
  maxP99Ratio: 1.5,
  /** Fewest calls the canary must have served before any verdict. */
  minCalls: 100,
  /** p99s at or under this are never judged too slow, ms (the latency buckets are coarse: 0.5, 1, 2, 5, 10 ms...). */
  p99FloorMs: 10,
});

/** Longest bake a request may ask for: one day. */
export const MAX_CANARY_BAKE_S = 86_400;
/** Endpoint weights (registry/store/validate.ts). */
const MAX_WEIGHT = 10_000;

/** A canary's options with every default filled in, as stored with the task (params.canary.options). */
export interface CanarySettings {
  /** Share of calls asked for (0 < percent < 100), or 0 when `instances` was asked for. */
  percent: number;
  instances: number;
  bakeS: number;
  maxErrorRateDelta: number;
  maxP99Ratio: number;
  minCalls: number;
  p99FloorMs: number;
  hold: boolean;
}

export interface CanaryPlan {
  settings: CanarySettings;
  /** The instances that take the new version first (batch 1), in request order. */
  canaryIds: number[];
  /** Weights to set per canary instance and Obj while it bakes (empty when the count was asked for). */
  weights: Record<string, Record<string, number>>;
  /** Their weights before (restored when the canary ends). */
  originalWeights: Record<string, Record<string, number>>;
  /** The canary's share of calls (0..1) with those weights, on the first Obj. */
  share: number;
}

function bad(message: string, field: string): InvalidArgumentError {
  return new InvalidArgumentError(message, { kind: "canary", field });
}

function wholeIn(v: number, field: string, what: string, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) throw bad(`canary ${what} must be a whole number from ${min} to ${max}, got ${v}`, field);
  return v;
}

/** Checks a request's canary options against the task's instances and fills in the defaults. INVALID_ARGUMENT for anything wrong. */
export function canarySettings(raw: CanaryOptions, instanceCount: number): CanarySettings {
  const percent = raw.percent;
  const instances = raw.instances;
  if (!Number.isFinite(percent)) throw bad(`canary share must be a number of percent, got ${percent}`, "percent");
  if (percent !== 0 && instances !== 0) throw bad("give the canary either a share of calls (percent) or a number of instances, not both", "percent");
  if (percent === 0 && instances === 0) throw bad("a canary needs a share of calls over 0 % or a number of instances of at least 1", "percent");
  if (instanceCount < 2) throw bad(`a canary needs at least 2 instances (one to try the new version, one to compare it with); this publish has ${instanceCount}`, "instances");
  if (percent !== 0 && !(percent > 0 && percent < 100)) {
    throw bad(`canary share ${percent} % is out of range: it must be over 0 % and under 100 % (100 % leaves no instance on the old version to compare with; publish without a canary)`, "percent");
  }
  if (instances !== 0) {
    if (instances > instanceCount) throw bad(`canary of ${instances} instances is above the ${instanceCount} instance(s) this publish covers`, "instances");
    if (instances === instanceCount) throw bad(`canary of ${instances} instances is every instance of this publish: leave at least one on the old version to compare with (at most ${instanceCount - 1})`, "instances");
  }
  const maxErrorRateDelta = raw.maxErrorRateDelta ?? CANARY_DEFAULTS.maxErrorRateDelta;
  if (!Number.isFinite(maxErrorRateDelta) || maxErrorRateDelta < 0 || maxErrorRateDelta > 100) {
    throw bad(`canary max error-rate delta must be 0 to 100 percentage points, got ${maxErrorRateDelta}`, "max_error_rate_delta");
  }
  const maxP99Ratio = raw.maxP99Ratio || CANARY_DEFAULTS.maxP99Ratio;
  if (!Number.isFinite(maxP99Ratio) || maxP99Ratio < 1 || maxP99Ratio > 1000) throw bad(`canary max p99 ratio must be from 1 to 1000, got ${maxP99Ratio}`, "max_p99_ratio");
  const p99FloorMs = raw.p99FloorMs || CANARY_DEFAULTS.p99FloorMs;
  if (!Number.isFinite(p99FloorMs) || p99FloorMs < 0 || p99FloorMs > 3_600_000) throw bad(`canary p99 floor must be 0 to 3600000 ms, got ${p99FloorMs}`, "p99_floor_ms");
  return {
    percent, instances,
    bakeS: wholeIn(raw.bakeS || CANARY_DEFAULTS.bakeS, "bake_s", "bake time (s)", 1, MAX_CANARY_BAKE_S),
    maxErrorRateDelta, maxP99Ratio, p99FloorMs,
    minCalls: wholeIn(raw.minCalls || CANARY_DEFAULTS.minCalls, "min_calls", "minimum calls", 1, 1_000_000_000),
    hold: raw.hold === true,
  };
}

/**
 * Which instances go first and with what weights. By count: the first
 * `instances` of the request, weights untouched. By share: as few
 * instances as the share rounds to (at least one, at most all but one),
 * each Obj's weight on them set so that they get `percent` of that Obj's
 * calls against the others' weights.
 */
export function planCanary(settings: CanarySettings, instances: InstanceRecord[]): CanaryPlan {
  const n = instances.length;
  const k = settings.instances > 0 ? settings.instances : Math.min(n - 1, Math.max(1, Math.round((settings.percent / 100) * n)));
  const canary = instances.slice(0, k);
  const rest = instances.slice(k);
  const weightsOf = (i: InstanceRecord) => Object.fromEntries(i.adapters.map((a) => [a.obj, a.weight]));
  const originalWeights = Object.fromEntries(canary.map((i) => [String(i.id), weightsOf(i)]));
  const weights: Record<string, Record<string, number>> = {};
  if (settings.percent > 0) {
    const p = settings.percent / 100;
    for (const i of canary) {
      weights[String(i.id)] = Object.fromEntries(i.adapters.map((a) => {
        const others = rest.reduce((sum, r) => sum + (r.adapters.find((x) => x.obj === a.obj)?.weight ?? 0), 0);
        return [a.obj, Math.min(MAX_WEIGHT, Math.max(1, Math.round((p * others) / ((1 - p) * k))))];
      }));
    }
  }
  const firstObj = instances[0]?.adapters[0]?.obj;
  const weightOn = (i: InstanceRecord) => weights[String(i.id)]?.[firstObj ?? ""] ?? i.adapters.find((a) => a.obj === firstObj)?.weight ?? 0;
  const mine = canary.reduce((s, i) => s + weightOn(i), 0);
  const total = mine + rest.reduce((s, i) => s + weightOn(i), 0);
  return { settings, canaryIds: canary.map((i) => i.id), weights, originalWeights, share: total > 0 ? mine / total : k / n };
}

/** The canary's stored state (params.canary), as the runner and the API read it. */
export interface CanaryState extends CanaryPlan {
  state: "starting" | "baking" | "held" | "promoted" | "rolled_back";
  reason: string;
  bakeStartedAt: number;
  bakeEndsAt: number;
  /** Sums of the call stats rows at bake start (subtracted from later sums): canary, then the other instances. */
  at0?: { canary: StatSums; baseline: StatSums; fromMinute: number };
  last?: { canary: StatSums; baseline: StatSums };
  rollbackTaskId: number;
  decidedBy: string;
}

/** Server-side calls of a set of instances: counts and the latency histogram (framework/stats.ts buckets). */
export interface StatSums {
  calls: number;
  errors: number;
  buckets: number[];
}

export function toJsonState(s: CanaryState): JsonObject {
  return JSON.parse(JSON.stringify(s)) as JsonObject;
}

export function canaryOf(task: TaskRecord): CanaryState | undefined {
  const c = task.params.canary;
  return c && typeof c === "object" && !Array.isArray(c) ? (c as unknown as CanaryState) : undefined;
}

export function decisionOf(task: TaskRecord): { action: "promote" | "rollback"; by: string } | undefined {
  const d = task.params.canaryDecision as { action?: unknown; by?: unknown } | undefined;
  if (!d || (d.action !== "promote" && d.action !== "rollback")) return undefined;
  return { action: d.action, by: typeof d.by === "string" ? d.by : "?" };
}

