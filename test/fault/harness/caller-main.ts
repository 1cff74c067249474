/**
 * The fault suite's caller: a process of its own that calls Echo.Say on
 * every Obj it is given, by Obj name through the registry (a Communicator
 * with its disk cache, as a servant would), at a steady total rate, and
 * counts what happens.
 *
 *   node caller-main.js <registry host:port> <cache dir> <calls/s> <Obj> [<Obj>...]
 *
 * Calls are spread round-robin over the Objs; at most MAX_IN_FLIGHT are in
 * flight (a call that cannot be started because of it is not made, so the
 * achieved rate is reported, never assumed). Every 250 ms it prints
 * `STATS <json>`; on SIGTERM or SIGINT it stops issuing, waits for the calls
 * in flight, prints `FINAL <json>` and exits 0. The JSON is a CallerCounts.
 */
import { Communicator, setLogLevel } from "sgridnext";
import { EchoProxy } from "../../gen/demo/echo.sgrid";
import type { CallerCounts } from "./counts";

const MAX_IN_FLIGHT = 256;
const CALL_TIMEOUT_MS = 3000;
const SAMPLE_ERRORS = 5;

async function main(): Promise<void> {
  const [registry, cacheDir, rateText, ...objs] = process.argv.slice(2);
  const rate = Number(rateText);
  if (!registry || !cacheDir || !(rate > 0) || objs.length === 0) {
    process.stderr.write("usage: caller-main <registry> <cache dir> <calls/s> <Obj>...\n");
    process.exit(2);
  }
  setLogLevel(process.env.SGRID_LOG_LEVEL ?? "warn");
  const comm = new Communicator({ registry, cacheDir, env: {} });
  const proxies = objs.map((o) => comm.stringToProxy(EchoProxy, o));
  const started = Date.now();
  const counts: CallerCounts = { ok: 0, failed: 0, byCode: {}, byObj: {}, errors: [], startedAt: started, elapsedMs: 0, failedAt: [] };
  for (const o of objs) counts.byObj[o] = { ok: 0, failed: 0 };
  let issued = 0;
  let inFlight = 0;
  let stopping = false;
  let drained: () => void = () => undefined;

  const one = (i: number): void => {
    const obj = objs[i % objs.length]!;
    inFlight++;
    proxies[i % objs.length]!.say({ text: `call ${i}` }, { timeoutMs: CALL_TIMEOUT_MS }).then(() => {
      counts.ok++;
      counts.byObj[obj]!.ok++;
    }, (err: { code?: string; message?: string }) => {
      const code = err.code ?? "UNKNOWN";
      counts.failed++;
      counts.byObj[obj]!.failed++;
      counts.byCode[code] = (counts.byCode[code] ?? 0) + 1;
      if (counts.failedAt.length < 10_000) counts.failedAt.push(Date.now() - started);
      if (counts.errors.filter((e) => e.startsWith(`${code} `)).length < SAMPLE_ERRORS) counts.errors.push(`${code} ${obj}: ${err.message ?? ""}`.slice(0, 300));
    }).finally(() => {
      inFlight--;
      if (stopping && inFlight === 0) drained();
    });
  };

  const tick = setInterval(() => {
    if (stopping) return;
    const due = Math.floor(((Date.now() - started) * rate) / 1000);
    while (issued < due && inFlight < MAX_IN_FLIGHT) one(issued++);
    // Behind by more than the in-flight cap allows: those calls are not made (the rate reported shows it).
    if (issued < due) issued = due;
  }, 5);
  const print = (tag: string): void => {
    counts.elapsedMs = Date.now() - started;
    process.stdout.write(`${tag} ${JSON.stringify({ ...counts, failedAt: tag === "FINAL" ? counts.failedAt : [] })}\n`);
  };
  const stats = setInterval(() => print("STATS"), 250);

  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    clearInterval(tick);
    clearInterval(stats);
    const done = new Promise<void>((resolve) => {
      drained = resolve;
      if (inFlight === 0) resolve();
    });
    void done.then(() => {
      print("FINAL");
      comm.close();
      process.exit(0);
    });
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err) => {
  process.stderr.write(`caller: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
