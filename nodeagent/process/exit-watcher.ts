/**
 * Noticing that a servant process ended.
 *
 * Two sources: for the agent's own children, the ChildProcess 'exit' event
 * (exact code and signal); for processes adopted after an agent restart
 * (children of init now, so no SIGCHLD reaches the agent), a shared poll
 * of /proc every `pollIntervalMs` (default 200 ms, so an exit is noticed
 * well within 1 s). A poll counts as exited: no /proc entry, a zombie (some
 * inits reap late or never), or another start time (the pid was reused).
 *
 * One watch per process (pid + start time); every caller of get() shares
 * its promise, which never rejects. Finished exits are remembered for a
 * while, since a child may end before launch() has returned its handle.
 */
import type { ChildProcess } from "node:child_process";
import { PeriodicTask } from "sgridnext";
import { isLive, readProcStat } from "./proc-stat";
import { type ExitInfo, exitInfo } from "./exit-info";
import type { ProcessHandle } from "./spawn-spec";

interface Watch {
  handle: ProcessHandle;
  promise: Promise<ExitInfo>;
  finish: (code: number | null, signal: NodeJS.Signals | null, codeUnknown: boolean) => void;
  polled: boolean;
}

/** Reads the group's OOM-kill counter for a handle (0 when unknown); must not reject. */
export type OomCounter = (handle: ProcessHandle) => Promise<number>;

export function handleKey(handle: Pick<ProcessHandle, "pid" | "startTime">): string {
  return `${handle.pid}:${handle.startTime}`;
}

/** How many finished exits are remembered for late wait() callers (a child can end before launch() returns). */
const FINISHED_KEPT = 256;

export class ExitWatcher {
  private readonly watches = new Map<string, Watch>();
  private readonly finished = new Map<string, Promise<ExitInfo>>();
  // Never keeps the agent alive on its own (PeriodicTask unrefs); the agent's own work (its registry session) does.
  private readonly poller: PeriodicTask;

  constructor(pollIntervalMs: number, private readonly oomCount: OomCounter) {
    this.poller = new PeriodicTask(() => this.poll(), { intervalMs: pollIntervalMs });
  }

  /** The exit promise of a watched process, if it is watched. */
  get(handle: ProcessHandle): Promise<ExitInfo> | undefined {
    const key = handleKey(handle);
    return this.watches.get(key)?.promise ?? this.finished.get(key);
  }

  /** Watches the agent's own child through its 'exit' event. */
  watchChild(handle: ProcessHandle, child: ChildProcess): Promise<ExitInfo> {
    const watch = this.create(handle, false);
    child.once("exit", (code, signal) => watch.finish(code, signal, false));
    // A child that is already gone before the listener was attached (cannot happen synchronously, but cheap to cover).
    if (child.exitCode !== null || child.signalCode !== null) watch.finish(child.exitCode, child.signalCode, false);
    return watch.promise;
  }

  /** Watches an adopted process by polling /proc. */
  watchAdopted(handle: ProcessHandle): Promise<ExitInfo> {
    const existing = this.get(handle);
    if (existing) return existing;
    const watch = this.create(handle, true);
    this.ensureTimer();
    return watch.promise;
  }

  /** Stops watching (the agent is shutting down and leaves the process running). The promise stays pending. */
  forget(handle: ProcessHandle): void {
    this.watches.delete(handleKey(handle));
    this.maybeStopTimer();
  }

  /** Stops every watch and the poll timer. */
  close(): void {
    this.watches.clear();
    this.finished.clear();
    this.maybeStopTimer();
  }

  private create(handle: ProcessHandle, polled: boolean): Watch {
    const key = handleKey(handle);
    let resolve!: (info: ExitInfo) => void;
    const promise = new Promise<ExitInfo>((r) => { resolve = r; });
    let done = false;
    const watch: Watch = {
      handle,
      promise,
      polled,
      finish: (code, signal, codeUnknown) => {
        if (done) return;
        done = true;
        if (this.watches.get(key) === watch) this.watches.delete(key);
        this.finished.set(key, promise);
        if (this.finished.size > FINISHED_KEPT) this.finished.delete(this.finished.keys().next().value!);
        this.maybeStopTimer();
        void this.oomCount(handle).catch(() => handle.oomKillsAtStart).then((count) => {
          const oom = count > handle.oomKillsAtStart && (codeUnknown || signal === "SIGKILL");
          resolve(exitInfo(code, signal, oom, codeUnknown));
        });
      },
    };
    this.watches.set(key, watch);
    return watch;
  }

  private ensureTimer(): void {
    this.poller.start();
  }

  private maybeStopTimer(): void {
    if (!this.poller.running) return;
    for (const w of this.watches.values()) if (w.polled) return;
    void this.poller.stop();
  }

  private poll(): void {
    for (const watch of [...this.watches.values()]) {
      if (!watch.polled) continue;
      const stat = readProcStat(watch.handle.pid);
      if (!isLive(stat) || stat.startTime !== watch.handle.startTime) watch.finish(null, null, true);
    }
  }
}
