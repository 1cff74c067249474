/**
 * What the registry wants an instance to be (desired), what the agent
 * reports it is (observed), and what the agent persists between its own
 * restarts (the record).
 *
 * A desired spec is plain JSON: it comes from the registry, is persisted in
 * the agent's state file, and is compared field by field to decide between
 * "apply in place" (limits, stop settings, keepalive, health) and "restart"
 * (version or launch spec changed).
 */
import type { ZodType } from "zod";
import { lazySchema } from "../lazy-schema";
import type { CgroupLimits } from "../cgroups";
import type { SpawnSpec, ProcessHandle, StopOptions } from "../process";
import { InvalidDesiredSpecError } from "../errors";

/** Optional health check of an instance. The probe itself is opaque here: a factory given in the options turns it into a function. */
export interface HealthSpec {
  /** Probe description for the health-check factory, e.g. { kind: "http", port: 8080, path: "/healthz" }. */
  probe: Record<string, unknown>;
  /** Wait after start before the first check, ms. Default 5000. */
  initialDelayMs?: number;
  /** Time between checks, ms. Default 10000. */
  intervalMs?: number;
  /** A check not answered within this is a failure, ms. Default 2000. */
  timeoutMs?: number;
  /** Consecutive failures that make the instance restart. Default 3. */
  failureThreshold?: number;
}

export interface DesiredSpec {
  /** "active": keep it running; "inactive": keep it stopped. */
  state: "active" | "inactive";
  /** Version label (patch version), reported back in the observed state. A new version restarts the instance. */
  version: string;
  /** How to run it (the instance id and limits are added by the supervisor). A change restarts the instance. */
  launch: Omit<SpawnSpec, "instanceId" | "limits">;
  /** Resource limits; a change is applied to the running group in place. Default: none. */
  limits?: CgroupLimits;
  /** How to stop it; default: the supervisor's stop options (SIGTERM, 10 s). */
  stop?: StopOptions;
  /** Keepalive from servants built on the framework; absent = not expected. */
  keepalive?: { timeoutMs?: number };
  /** Optional health check; absent = none. */
  health?: HealthSpec;
}

/** The supervisor states (Tars / supervisord names). */
export type InstanceState = "inactive" | "activating" | "active" | "deactivating" | "backoff" | "failed";

/** What the agent reports about one instance (emitted on every change). */
export interface ObservedState {
  instanceId: string;
  state: InstanceState;
  /** Main process pid while one runs, else null. */
  pid: number | null;
  /** Automatic restarts so far (after crashes, keepalive timeouts, failed health checks). */
  restarts: number;
  /** Why the last process ended: "exited with code N", "killed by SIGX", "oom killed", "keepalive timeout ...", ... */
  lastExitReason: string | null;
  /** Version of the running process, else of the desired spec. */
  version: string | null;
  /** With state "failed": why the agent gave up. */
  failedReason: string | null;
  /** With state "backoff": the delay before the next start, ms. */
  retryInMs: number | null;
  /** Last health check result (null: no check, or none yet). */
  healthy: boolean | null;
  /** True when the running process was adopted from an earlier agent. */
  adopted: boolean;
  /** When this state was entered, ms since the epoch. */
  since: number;
}

/** What the agent persists per instance. */
export interface InstanceRecord {
  desired: DesiredSpec;
  /** The process running the instance, when one does. */
  handle?: ProcessHandle;
  restarts: number;
  lastExitReason?: string | null;
  /** Set while the instance is FAILED: it stays failed across agent restarts. */
  failed?: { reason: string; at: number };
}

const specSchema = lazySchema((z) => {
  const noNul = z.string().refine((s) => !s.includes("\0"), "must not contain NUL");
  const absPath = noNul.refine((s) => s.startsWith("/"), "must be an absolute path");
  const ms = z.number().int().min(0);
  const signal = z.string().regex(/^SIG[A-Z0-9]+$/, "must be a signal name like SIGTERM") as unknown as ZodType<NodeJS.Signals>;

  return z.object({
    state: z.enum(["active", "inactive"]),
    version: z.string().max(200),
    launch: z.object({
      command: noNul.refine((s) => s.length > 0, "must not be empty"),
      args: z.array(noNul).optional(),
      env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), noNul).optional(),
      cwd: absPath.optional(),
      stdoutPath: absPath,
      stderrPath: absPath.optional(),
      uid: z.number().int().min(0).optional(),
      gid: z.number().int().min(0).optional(),
    }).strict(),
    limits: z.object({
      memoryBytes: z.number().positive().optional(),
      cpuCores: z.number().positive().optional(),
      pids: z.number().int().positive().optional(),
    }).strict().optional(),
    stop: z.object({ signal: signal.optional(), graceMs: ms.optional() }).strict().optional(),
    keepalive: z.object({ timeoutMs: z.number().int().positive().optional() }).strict().optional(),
    health: z.object({
      probe: z.record(z.string(), z.unknown()),
      initialDelayMs: ms.optional(),
      intervalMs: z.number().int().positive().optional(),
      timeoutMs: z.number().int().positive().optional(),
      failureThreshold: z.number().int().positive().optional(),
    }).strict().optional(),
  }).strict();
});

/** Validates a desired spec; throws InvalidDesiredSpecError (caller misuse) naming the first bad field. */
export function validateDesiredSpec(spec: DesiredSpec): DesiredSpec {
  const r = specSchema.safeParse(spec);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue?.path.join(".") ?? "";
    throw new InvalidDesiredSpecError(`invalid desired spec${where ? ` (${where})` : ""}: ${issue?.message ?? r.error.message}`, { field: where });
  }
  return r.data as DesiredSpec;
}

/** Stable JSON for comparisons (key order does not matter). */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b))) : v));
}

/** True when going from `a` to `b` needs a new process (version or launch changed). */
export function needsRestart(a: DesiredSpec, b: DesiredSpec): boolean {
  return a.version !== b.version || canonical(a.launch) !== canonical(b.launch);
}

/** True when anything applied in place changed (limits, stop, keepalive, health). */
export function changedInPlace(a: DesiredSpec, b: DesiredSpec): boolean {
  return canonical([a.limits, a.stop, a.keepalive, a.health]) !== canonical([b.limits, b.stop, b.keepalive, b.health]);
}
