/**
 * The lifecycle hook interface: supervision split by phase, one small hook
 * per concern (as Nomad's task_lifecycle.go). The instance supervisor runs
 * the hooks of a phase in list order and awaits each.
 *
 *   prestart  -> before a process is launched (prepare the cgroup, kill leftovers)
 *   start     -> launch the process; exactly one hook implements it
 *   poststart -> the process runs (launched, or adopted after an agent restart):
 *                arm keepalive, start health checks
 *   update    -> the desired spec changed in a way applied in place (limits, timings)
 *   stop      -> the process is about to be stopped on purpose: stop watching it
 *   exited    -> the process ended (any reason): disarm whatever poststart armed
 *   destroy   -> the instance goes inactive or FAILED: release what it holds (the cgroup)
 *   detach    -> the agent shuts down and leaves the process running: stop timers only
 *
 * Hooks never decide about restarts: they report trouble through
 * `ctx.requestRestart(reason)`, and the RestartTracker decides.
 */
import type { Logger } from "sgridnext";
import type { ExitInfo, ProcessHandle } from "../../process";
import type { DesiredSpec } from "../desired-spec";

export interface HookContext {
  readonly instanceId: string;
  /** The desired spec being worked toward. */
  readonly desired: DesiredSpec;
  /** The running process, when there is one. */
  readonly handle: ProcessHandle | undefined;
  readonly log: Logger;
  /**
   * Asks the supervisor to restart the running process, counted as a
   * failure (the reason becomes lastExitReason). Safe to call at any time;
   * ignored unless the instance is active with that same process.
   */
  requestRestart(reason: string, handle: ProcessHandle): void;
  /** Records the outcome of a health check for the observed state. */
  setHealthy(healthy: boolean | null): void;
}

export interface LifecycleHook {
  readonly name: string;
  prestart?(ctx: HookContext): Promise<void>;
  start?(ctx: HookContext): Promise<ProcessHandle>;
  poststart?(ctx: HookContext & { handle: ProcessHandle }, adopted: boolean): Promise<void>;
  update?(ctx: HookContext, previous: DesiredSpec): Promise<void>;
  stop?(ctx: HookContext): Promise<void>;
  exited?(ctx: HookContext, exit: ExitInfo): Promise<void>;
  destroy?(ctx: HookContext): Promise<void>;
  detach?(ctx: HookContext): void;
}
