/** What the fault suite's caller process counts (printed as JSON lines), and how the suite prints it. */
export interface CallerCounts {
  ok: number;
  failed: number;
  /** Failed calls by Sgrid error code (`NO_ENDPOINT`, `UNAVAILABLE`, `DEADLINE_EXCEEDED`...). */
  byCode: Record<string, number>;
  byObj: Record<string, { ok: number; failed: number }>;
  /** Up to 5 sample messages per code, `<code> <Obj>: <message>`. */
  errors: string[];
  startedAt: number;
  elapsedMs: number;
  /** Ms since start of each failed call (FINAL only; the first 10,000). */
  failedAt: number[];
}

/** The difference of two snapshots of one caller (what happened between them). */
export function countsBetween(before: CallerCounts, after: CallerCounts): Pick<CallerCounts, "ok" | "failed" | "byCode"> & { ms: number } {
  const byCode: Record<string, number> = {};
  for (const [k, v] of Object.entries(after.byCode)) {
    const d = v - (before.byCode[k] ?? 0);
    if (d > 0) byCode[k] = d;
  }
  return { ok: after.ok - before.ok, failed: after.failed - before.failed, byCode, ms: after.elapsedMs - before.elapsedMs };
}

/** `ok 5123, failed 0` or `ok 5000, failed 12 (NO_ENDPOINT 10, UNAVAILABLE 2)`. */
export function formatCounts(c: Pick<CallerCounts, "ok" | "failed" | "byCode">): string {
  const codes = Object.entries(c.byCode).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(", ");
  return `ok ${c.ok}, failed ${c.failed}${codes ? ` (${codes})` : ""}`;
}
