/**
 * Child process of the transport benchmark: one side (server or client) of
 * one stack, driven by the parent over IPC.
 *
 *   node child.js server <stack>          -> {ev:"ready", port}
 *   node child.js client <stack> <port>   -> {ev:"ready"}
 *
 * Commands (parent -> child), each answered with one message:
 *   {cmd:"cpu"}                      -> {ev:"cpu", cpu}            (both)
 *   {cmd:"start", concurrency}       -> {ev:"started"}             (client: closed loop of `concurrency` callers)
 *   {cmd:"mark"}                     -> {ev:"marked", cpu}         (client: the measured window starts now)
 *   {cmd:"collect"}                  -> {ev:"result", ...}         (client: stops the callers, reports the window)
 *   {cmd:"exit"}                                                   (both)
 */
import { makeClient, startServer, type BenchClient, type StackName } from "./stacks";

export interface WindowResult {
  calls: number;
  errors: number;
  firstError?: string;
  elapsedMs: number;
  p50Ms: number;
  p99Ms: number;
  cpu: NodeJS.CpuUsage;
}

type Command = { cmd: "cpu" } | { cmd: "start"; concurrency: number } | { cmd: "mark" } | { cmd: "collect" } | { cmd: "exit" };

function send(msg: unknown): void {
  process.send!(msg);
}

class ClosedLoop {
  private running = false;
  private workers: Promise<void>[] = [];
  private lat = new Float64Array(1 << 20);
  private n = 0;
  private errors = 0;
  private firstError: string | undefined;
  private markedAt = 0;

  constructor(private readonly client: BenchClient) {}

  start(concurrency: number): void {
    this.running = true;
    this.mark();
    for (let i = 0; i < concurrency; i++) this.workers.push(this.worker());
  }

  mark(): void {
    this.n = 0;
    this.errors = 0;
    this.firstError = undefined;
    this.markedAt = performance.now();
  }

  private async worker(): Promise<void> {
    const client = this.client;
    while (this.running) {
      const t0 = performance.now();
      try {
        await client.call();
      } catch (err) {
        this.errors++;
        this.firstError ??= (err as Error)?.message ?? String(err);
        continue;
      }
      const ms = performance.now() - t0;
      if (this.n === this.lat.length) {
        const bigger = new Float64Array(this.lat.length * 2);
        bigger.set(this.lat);
        this.lat = bigger;
      }
      this.lat[this.n++] = ms;
    }
  }

  /** Stops the callers; reports the window since the last mark. */
  async collect(): Promise<Omit<WindowResult, "cpu">> {
    const elapsedMs = performance.now() - this.markedAt;
    const n = this.n;
    const errors = this.errors;
    const firstError = this.firstError;
    const sorted = this.lat.slice(0, n).sort();
    this.running = false;
    await Promise.all(this.workers);
    this.workers = [];
    const q = (p: number) => (n === 0 ? 0 : sorted[Math.min(n - 1, Math.floor(n * p))]!);
    return { calls: n, errors, firstError, elapsedMs, p50Ms: q(0.5), p99Ms: q(0.99) };
  }
}

async function main(): Promise<void> {
  const [role, stack, portText] = process.argv.slice(2) as [string, StackName, string | undefined];
  let loop: ClosedLoop | undefined;
  let client: BenchClient | undefined;
  if (role === "server") {
    const port = await startServer(stack);
    send({ ev: "ready", port });
  } else {
    client = await makeClient(stack, Number(portText));
    await client.call(); // connect before the clock starts
    loop = new ClosedLoop(client);
    send({ ev: "ready" });
  }
  process.on("message", (m: Command) => {
    void (async () => {
      switch (m.cmd) {
        case "cpu":
          send({ ev: "cpu", cpu: process.cpuUsage() });
          break;
        case "start":
          loop!.start(m.concurrency);
          send({ ev: "started" });
          break;
        case "mark":
          loop!.mark();
          send({ ev: "marked", cpu: process.cpuUsage() });
          break;
        case "collect": {
          const cpu = process.cpuUsage();
          const r = await loop!.collect();
          send({ ev: "result", ...r, cpu });
          break;
        }
        case "exit":
          await client?.close().catch(() => undefined);
          process.exit(0);
      }
    })();
  });
  process.on("disconnect", () => process.exit(0));
}

main().catch((err) => {
  console.error(`bench child failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
