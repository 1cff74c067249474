/**
 * From the supervisor's ObservedState to the node session's
 * InstanceObserved, with the event the registry logs.
 *
 * States: the supervisor's "backoff" (waiting out a restart delay) is
 * reported as "activating", the Tars name of an instance on its way up;
 * the others keep their names.
 *
 * Events, classified on the transition that produced them (once each):
 * - "oom":       the process ended by an OOM kill and a restart is scheduled
 * - "keepalive": restarted because its keepalive timed out
 * - "crash":     any other unexpected end (exit, signal, failed health
 *                check, failed start) with a restart scheduled
 * - "failed":    the crash-loop limit was hit; FAILED until someone acts
 * - "install_failed": (set by the agent) a new version could not be
 *                installed; the running version stays
 * - "pids_limit", "cpu_throttled": (set by the agent, ./limit-events.ts)
 *                the group's pids limit refused forks / its CPU quota
 *                throttled it; the detail says how often
 * - "":          anything else (start, stop, adoption)
 */
import type { InstanceObserved } from "sgridnext/gen/sgrid/registry/v1/node";
import type { InstanceState, ObservedState } from "../supervisor";

/** "install_failed" is set by the agent (a package refused or not downloadable), never by classifyEvent. */
export type ObservedEvent = "" | "crash" | "oom" | "failed" | "keepalive" | "install_failed" | "port_in_use" | "pids_limit" | "cpu_throttled";

/** The session's state name of a supervisor state. */
export function wireState(state: InstanceState): string {
  return state === "backoff" ? "activating" : state;
}

/** The event of a transition from `prev` (undefined: first report) to `next`. */
export function classifyEvent(prev: InstanceState | undefined, next: ObservedState): ObservedEvent {
  if (next.state === "failed") return prev === "failed" ? "" : "failed";
  if (next.state !== "backoff" || prev === "backoff") return "";
  const reason = next.lastExitReason ?? "";
  if (reason === "oom killed") return "oom";
  if (reason.startsWith("keepalive timeout")) return "keepalive";
  return "crash";
}

/** A release version label as the session's number (0 when not numeric). */
export function wireVersion(version: string | null): number {
  if (version === null || !/^\d+$/.test(version)) return 0;
  const n = Number(version);
  return n <= 0xffffffff ? n : 0;
}

export interface ObservedExtras {
  event?: ObservedEvent;
  /** When the running process started, ms since the epoch (0: none). */
  startedAt?: number;
  /** Overrides lastExitReason (e.g. why a new version could not be installed). */
  reason?: string;
}

/** The wire form of one instance's observed state. */
export function toInstanceObserved(s: ObservedState, extras: ObservedExtras = {}): InstanceObserved {
  const reason = extras.reason ?? (s.state === "failed" && s.failedReason ? s.failedReason : s.lastExitReason) ?? "";
  return {
    instanceId: Number(s.instanceId),
    state: wireState(s.state),
    pid: s.pid ?? 0,
    version: wireVersion(s.version),
    restarts: s.restarts,
    lastExitReason: reason,
    event: extras.event ?? "",
    startedAt: s.pid !== null ? extras.startedAt ?? 0 : 0,
    portsInUse: [],
    eventDetail: "",
  };
}
