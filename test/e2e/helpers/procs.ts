/**
 * Long-running `sgrid` child processes for the end-to-end tests (registry,
 * agents, admin, `sgrid up`), with their output kept in memory (stdout,
 * where the CLI says what it does) and in files under the test's folder
 * (both streams, for reading after a failure); plus finding servant
 * processes and removing cgroups, for assertions and teardown.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { pollUntil, type Check } from "../../helpers/wait";

/** Polls `check` until it returns something truthy; rejects after `timeoutMs` naming `what` (and the last error). */
export function waitFor<T>(what: string, check: Check<T>, timeoutMs = 60_000, everyMs = 200): Promise<T> {
  return pollUntil(what, check, { timeoutMs, everyMs });
}

export class Proc {
  readonly child: ChildProcess;
  stdout = "";
  stderr = "";
  exitCode: number | null | undefined;
  exitSignal: NodeJS.Signals | null | undefined;
  readonly exited: Promise<void>;

  /** Starts `cmd args`; `logFile` gets both streams. The child is its own process group leader (no terminal signals). */
  constructor(readonly name: string, cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string>; logFile: string }) {
    fs.mkdirSync(path.dirname(opts.logFile), { recursive: true });
    const log = fs.createWriteStream(opts.logFile, { flags: "a" });
    log.write(`$ ${cmd} ${args.join(" ")}\n`);
    this.child = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
    this.child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      this.stdout += d;
      log.write(d);
    });
    this.child.stderr!.setEncoding("utf8").on("data", (d: string) => {
      this.stderr += d;
      log.write(d);
    });
    this.exited = new Promise((resolve) => {
      this.child.on("exit", (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        resolve();
      });
    });
    // After the streams' last data (which can come after "exit").
    this.child.on("close", (code, signal) => log.end(`\n[exit ${code ?? signal}]\n`));
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** Resolves with the first match of `re` in stdout; rejects when the process exits first or after `timeoutMs`. */
  async waitForLine(re: RegExp, timeoutMs = 60_000): Promise<RegExpExecArray> {
    return waitFor(`${this.name} to print ${re}`, () => {
      const m = re.exec(this.stdout);
      if (m) return m;
      if (!this.running) throw new Error(`${this.name} exited (${this.exitCode ?? this.exitSignal}) before printing ${re}; stdout: ${this.stdout.slice(-2000)} stderr: ${this.stderr.slice(-3000)}`);
      return undefined;
    }, timeoutMs).catch((err: Error) => {
      throw new Error(`${err.message}\n--- ${this.name} stdout:\n${this.stdout.slice(-2000)}\n--- stderr:\n${this.stderr.slice(-3000)}`);
    });
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  /** SIGTERM, then SIGKILL after `graceMs`. Never throws. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.signal("SIGTERM");
    const timer = setTimeout(() => this.signal("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Pids of processes whose working directory is inside `dir` (servants run in their unpacked release). */
export function processesUnder(dir: string): number[] {
  const prefix = dir.endsWith("/") ? dir : `${dir}/`;
  const out: number[] = [];
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cwd = fs.readlinkSync(`/proc/${name}/cwd`);
      const state = /\) (\S)/.exec(fs.readFileSync(`/proc/${name}/stat`, "utf8"))?.[1];
      if (state !== "Z" && (cwd === dir || cwd.startsWith(prefix))) out.push(Number(name));
    } catch {
      // gone, or not ours to read
    }
  }
  return out.sort((a, b) => a - b);
}

/** Kills every process whose working directory is inside `dir`. Never throws. */
export function killProcessesUnder(dir: string): void {
  for (const pid of processesUnder(dir)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
}

/**
 * Removes cgroup folder `group` (and the instance folders in it) from every
 * mounted hierarchy, killing what is left inside first. Never throws.
 */
export async function removeCgroupGroup(group: string): Promise<void> {
  if (!/^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(group)) return;
  const roots: string[] = [];
  const base = "/sys/fs/cgroup";
  if (fs.existsSync(path.join(base, "cgroup.controllers"))) roots.push(base);
  else {
    for (const d of fs.existsSync(base) ? fs.readdirSync(base) : []) roots.push(path.join(base, d));
  }
  for (const root of roots) {
    const dir = path.join(root, group);
    if (!fs.existsSync(dir)) continue;
    for (let attempt = 0; attempt < 20; attempt++) {
      const subs = fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => path.join(dir, e.name));
      for (const cg of [...subs, dir]) {
        try {
          for (const pid of fs.readFileSync(path.join(cg, "cgroup.procs"), "utf8").split("\n").filter(Boolean)) {
            try {
              process.kill(Number(pid), "SIGKILL");
            } catch {
              // gone
            }
          }
        } catch {
          // no procs file
        }
      }
      for (const cg of subs) {
        try {
          fs.rmdirSync(cg);
        } catch {
          // busy: next attempt
        }
      }
      try {
        fs.rmdirSync(dir);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
}
