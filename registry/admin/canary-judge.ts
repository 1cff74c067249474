/**
 * The verdict on a baking canary, from the service monitor's figures (the
 * calls the canary instances and the other instances served since the bake
 * started): pure, time given. A canary is judged as soon as it has served
 * `minCalls`: too many errors or too slow fails it at once (every call
 * it still took would be a call lost); it passes only once the bake time is
 * over. Not enough calls by then is no verdict: it is held for a person.
 */
import { quantileOf } from "./quantile";
import type { CanarySettings, StatSums } from "./canary-plan";

export type CanaryVerdict =
  | { verdict: "wait"; reason: string }
  | { verdict: "fail"; reason: string }
  | { verdict: "pass"; reason: string }
  | { verdict: "insufficient"; reason: string };

export function p99Of(s: StatSums): number {
  return quantileOf(s.buckets, 0.99);
}

function rate(s: StatSums): number {
  return s.calls > 0 ? (100 * s.errors) / s.calls : 0;
}

const pct = (v: number) => `${v.toFixed(v >= 10 ? 1 : 2)} %`;

/** What the figures say now (`now` and `bakeEndsAt` in ms). */
export function judgeCanary(input: { canary: StatSums; baseline: StatSums; settings: CanarySettings; now: number; bakeEndsAt: number }): CanaryVerdict {
  const { canary, baseline, settings: o } = input;
  const figures = `canary ${canary.errors} error(s) in ${canary.calls} call(s) (${pct(rate(canary))}, p99 ${p99Of(canary)} ms), old version ${baseline.errors} in ${baseline.calls} (${pct(rate(baseline))}, p99 ${p99Of(baseline)} ms)`;
  if (canary.calls >= o.minCalls) {
    const delta = rate(canary) - rate(baseline);
    if (delta > o.maxErrorRateDelta) {
      return { verdict: "fail", reason: `error rate ${pct(rate(canary))} is ${delta.toFixed(2)} points above the old version's ${pct(rate(baseline))} (at most ${o.maxErrorRateDelta} allowed): ${figures}` };
    }
    const p99c = p99Of(canary);
    const p99b = p99Of(baseline);
    if (baseline.calls > 0 && p99c > o.p99FloorMs && p99c > o.maxP99Ratio * p99b) {
      return { verdict: "fail", reason: `p99 ${p99c} ms is ${(p99c / Math.max(p99b, 1e-9)).toFixed(2)}x the old version's ${p99b} ms (at most ${o.maxP99Ratio}x allowed): ${figures}` };
    }
  }
  if (input.now < input.bakeEndsAt) {
    return { verdict: "wait", reason: `baking for ${Math.ceil((input.bakeEndsAt - input.now) / 1000)} s more: ${figures}` };
  }
  if (canary.calls < o.minCalls) {
    return { verdict: "insufficient", reason: `only ${canary.calls} call(s) reached the canary in the ${o.bakeS} s bake, fewer than the ${o.minCalls} needed to judge it: ${figures}` };
  }
  return { verdict: "pass", reason: `passed the ${o.bakeS} s bake: ${figures}` };
}
