/**
 * Canary publishes from the command line: `sgrid publish ... --canary 10%`
 * (a share of calls) or `--canary 2` (instances), its thresholds, and
 * the canary's state as `sgrid publish` and `sgrid canary` print it
 * (./canary-decide.ts: promote|rollback). The registry judges and acts
 * (registry/admin/canary.ts); this file turns flags into CanaryOptions.
 */
import type { Command } from "commander";
import { InvalidArgumentError } from "sgridnext";
import type { CanaryInfo, CanaryOptions, TaskInfo } from "sgridnext/gen/sgrid/registry/v1/admin";
import { decimal, int } from "./flags";

/** `10%` -> a share of calls, `2` -> a number of instances. INVALID_ARGUMENT for anything else, 0 % and over 100 %. */
export function parseCanaryShare(text: string): Pick<CanaryOptions, "percent" | "instances"> {
  const t = text.trim();
  const pct = /^(\d+(?:\.\d+)?)\s*%$/.exec(t);
  if (pct) {
    const percent = Number(pct[1]);
    if (!(percent > 0) || percent >= 100) {
      throw new InvalidArgumentError(`--canary ${t}: a share must be over 0 % and under 100 % (100 % leaves no instance on the old version to compare with)`, { field: "canary" });
    }
    return { percent, instances: 0 };
  }
  if (/^\d+$/.test(t)) {
    const instances = Number(t);
    if (instances < 1 || !Number.isSafeInteger(instances)) throw new InvalidArgumentError(`--canary ${t}: a number of instances must be at least 1`, { field: "canary" });
    return { percent: 0, instances };
  }
  throw new InvalidArgumentError(`--canary ${JSON.stringify(text)} is neither a share of calls (e.g. 10%) nor a number of instances (e.g. 2)`, { field: "canary" });
}

export interface CanaryFlags {
  canary?: string;
  canaryBake?: number;
  canaryMaxErrorDelta?: number;
  canaryMaxP99Ratio?: number;
  canaryMinCalls?: number;
  canaryHold?: boolean;
}

/** The CanaryOptions the flags ask for; undefined without --canary (a thresholds flag alone is refused). */
export function canaryOptions(flags: CanaryFlags): CanaryOptions | undefined {
  if (flags.canary === undefined) {
    const stray = ["canaryBake", "canaryMaxErrorDelta", "canaryMaxP99Ratio", "canaryMinCalls", "canaryHold"].filter((k) => (flags as Record<string, unknown>)[k] !== undefined);
    if (stray.length > 0) throw new InvalidArgumentError(`--${stray[0]!.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} needs --canary <share>`, { field: "canary" });
    return undefined;
  }
  return {
    ...parseCanaryShare(flags.canary), bakeS: flags.canaryBake ?? 0, maxErrorRateDelta: flags.canaryMaxErrorDelta,
    maxP99Ratio: flags.canaryMaxP99Ratio ?? 0, minCalls: flags.canaryMinCalls ?? 0, p99FloorMs: 0, hold: flags.canaryHold === true,
  };
}

/** Adds the canary flags to `sgrid publish`. */
export function withCanaryOptions(cmd: Command): Command {
  return cmd
    .option("--canary <share>", "publish a canary first: a share of calls (10%) or a number of instances (2), judged against the other instances")
    .option("--canary-bake <s>", "seconds the canary runs before it is judged passed (default 300)", int("--canary-bake"))
    .option("--canary-max-error-delta <points>", "most the canary's error rate may be above the old version's, percentage points (default 1)", decimal("--canary-max-error-delta"))
    .option("--canary-max-p99-ratio <x>", "most the canary's p99 may be, as a multiple of the old version's (default 1.5)", decimal("--canary-max-p99-ratio"))
    .option("--canary-min-calls <n>", "fewest calls the canary must serve before it is judged (default 100)", int("--canary-min-calls"))
    .option("--canary-hold", "after a good bake, wait for `sgrid canary promote|rollback <task-id>` instead of promoting");
}

/** One line on the canary's state, for the task's followers. */
export function describeCanary(c: CanaryInfo): string {
  const share = `${(100 * c.share).toFixed(1)} % of calls on instance(s) ${c.instanceIds.join(", ")}`;
  return `canary ${c.state.replace("_", " ")} (${share})${c.reason ? `: ${c.reason}` : ""}${c.rollbackTaskId ? `; rollback task ${c.rollbackTaskId}` : ""}`;
}

/** Prints canary state changes of a followed task (call with each TaskInfo). */
export function canaryPrinter(out: (l: string) => void): (t: TaskInfo) => void {
  let last = "";
  return (t) => {
    if (!t.canary) return;
    // The running figures change every poll: print a line when the state changes, not each figure.
    const key = `${t.canary.state}|${t.canary.state === "baking" ? "" : t.canary.reason}`;
    if (key === last) return;
    last = key;
    out(`  ${describeCanary(t.canary)}`);
  };
}
