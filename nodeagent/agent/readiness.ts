/**
 * Readiness: an instance is reported `active` to the registry only once it
 * serves. The supervisor calls a process active as soon as it is launched,
 * but a servant needs a moment (hundreds of ms for Node, seconds for a JVM)
 * before its ports accept connections; reporting it active earlier would
 * let a publish put it in load balancing (and drain the old one) while it
 * still refuses connections.
 *
 * Ready for a given pid when either:
 * - a servant built on the framework said "adapters ready" on the local
 *   channel (markReady), or
 * - every adapter port accepts a TCP connection (probed every PROBE_INTERVAL_MS
 *   on the adapter's host and on 127.0.0.1, since a servant may bind either).
 * An instance without adapters is ready at once. Until ready, it is reported
 * `activating`, and so never becomes an active endpoint: a servant that
 * never listens stays out of load balancing (and its publish item times out).
 *
 * What is known ready is kept on disk (`state/readiness.json`, instance id
 * -> pid, written atomically on every change): an agent restarted after
 * `kill -9` re-adopts its servants and, for a pid it re-adopted, knows at
 * once that it serves, so it reports it `active` from its first message
 * instead of `activating` until a probe (which made the registry drop every
 * endpoint of the node for a moment). A pid is taken back only when the
 * supervisor re-adopted that very process (pid and start time match).
 */
import { getLogger, LatestWriter, readFileIfExists } from "sgridnext";
import { tcpCheck, type HealthTarget } from "../health";

const log = getLogger("agent.readiness");

interface ReadinessFile {
  version: 1;
  /** instance id -> pid known ready */
  ready: Record<string, number>;
}

export const READINESS_DEFAULTS = Object.freeze({ probeIntervalMs: 100, connectTimeoutMs: 500 });

export type ProbeTarget = Pick<HealthTarget, "host" | "port">;

async function listening(t: ProbeTarget, timeoutMs: number): Promise<boolean> {
  const hosts = [t.host === "" || t.host === "0.0.0.0" || t.host === "::" ? "127.0.0.1" : t.host];
  if (hosts[0] !== "127.0.0.1") hosts.push("127.0.0.1");
  for (const host of hosts) if ((await tcpCheck.check({ host, port: t.port }, timeoutMs)).ok) return true;
  return false;
}

export class Readiness {
  /** instance id -> pid known ready. */
  private readonly ready = new Map<string, number>();
  /** instance id -> pid being probed. */
  private readonly probing = new Map<string, number>();
  private stopped = false;
  private readonly writer = new LatestWriter((file, err) => log.warn({ file, err: (err as Error)?.message }, "could not record readiness (kept in memory)"));

  /** `file`: where readiness is kept across agent restarts (none: memory only). */
  constructor(private readonly onReady: (id: string) => void, private readonly opts = READINESS_DEFAULTS, private readonly file?: string) {}

  /**
   * Takes back what a previous agent knew ready, for every instance whose
   * re-adopted process is the one it recorded (`currentPid`). Returns how
   * many; an unreadable file counts as none (the probes find out again).
   */
  async restore(currentPid: (id: string) => number | null | undefined): Promise<number> {
    if (!this.file) return 0;
    let saved: ReadinessFile | undefined;
    try {
      const text = await readFileIfExists(this.file);
      saved = text === undefined ? undefined : (JSON.parse(text) as ReadinessFile);
    } catch (err) {
      log.warn({ file: this.file, err: (err as Error).message }, "ignoring an unreadable readiness file");
    }
    let n = 0;
    if (saved?.version === 1 && saved.ready && typeof saved.ready === "object") {
      for (const [id, pid] of Object.entries(saved.ready)) {
        if (Number.isInteger(pid) && pid > 0 && currentPid(id) === pid) {
          this.ready.set(id, pid);
          n++;
        }
      }
    }
    this.persist();
    return n;
  }

  /** Resolves once what is known ready is on disk. */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  /**
   * Whether `pid` of instance `id` serves; starts probing `targets` when not
   * known yet (the callback fires once it is).
   */
  isReady(id: string, pid: number, targets: ProbeTarget[]): boolean {
    if (targets.length === 0) return true;
    if (this.ready.get(id) === pid) return true;
    if (this.probing.get(id) !== pid) {
      this.probing.set(id, pid);
      void this.probe(id, pid, targets);
    }
    return false;
  }

  /** The servant said its adapters listen (local channel). */
  markReady(id: string, pid: number): void {
    if (this.ready.get(id) === pid) return;
    this.ready.set(id, pid);
    this.persist();
    this.onReady(id);
  }

  forget(id: string): void {
    if (this.ready.delete(id)) this.persist();
    this.probing.delete(id);
  }

  private persist(): void {
    if (!this.file) return;
    const content: ReadinessFile = { version: 1, ready: Object.fromEntries(this.ready) };
    this.writer.write(this.file, `${JSON.stringify(content)}\n`);
  }

  stop(): void {
    this.stopped = true;
  }

  private async probe(id: string, pid: number, targets: ProbeTarget[]): Promise<void> {
    while (!this.stopped && this.probing.get(id) === pid && this.ready.get(id) !== pid) {
      let all = true;
      for (const t of targets) {
        if (!(await listening(t, this.opts.connectTimeoutMs))) {
          all = false;
          break;
        }
      }
      if (all) {
        if (this.probing.get(id) === pid) this.probing.delete(id);
        this.markReady(id, pid);
        return;
      }
      await new Promise((r) => setTimeout(r, this.opts.probeIntervalMs).unref());
    }
  }
}
