/**
 * Quantiles of the framework's latency histograms (framework/stats.ts
 * buckets), as the service monitor and the canary's judge read them.
 */
import { LATENCY_BUCKETS_MS } from "sgridnext";

/** Upper bound of the bucket holding quantile q of a histogram (framework's buckets); 0 without calls. */
export function quantileOf(buckets: number[], q: number): number {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total === 0) return 0;
  const target = Math.ceil(total * q);
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i] ?? 0;
    if (seen >= target) return LATENCY_BUCKETS_MS[i] ?? LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.length - 1]! * 2;
  }
  return 0;
}
