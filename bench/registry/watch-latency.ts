/**
 * Registry benchmark 2: WatchObject propagation latency. A writer (this
 * process, on the registry's own database) flips one instance's desired
 * state; the time from the commit until each of W watchers (streams held on
 * the registry) receives the new list is one sample. p50 / p99 over all
 * samples. The registry finds the write by polling its revision counters
 * (default every 200 ms), as it would a write made by another registry
 * process, so the expected p50 is about half a poll period plus a reload.
 */
import { Communicator } from "sgridnext";
import type { FindObjectReply } from "sgridnext/gen/sgrid/registry/v1/query";
import { QueryProxy } from "sgridnext/gen/sgrid/registry/v1/query.sgrid";
import { openStore } from "../../registry/store";
import { fmt, table } from "../harness";
import { quietLogs, seedBenchObjs } from "./find-object";
import { benchDataDir, startBenchRegistry } from "./registry-process";

const WATCHERS = 20;

function quantile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]! : 0;
}

export async function runWatchLatencyBench(durationMs: number): Promise<string> {
  quietLogs();
  const dataDir = benchDataDir();
  const db = `sqlite:${dataDir}/registry.db`;
  const objs = await seedBenchObjs(db, 10);
  const registry = await startBenchRegistry(dataDir);
  const store = await openStore(db);
  const comm = new Communicator();
  const controllers = Array.from({ length: WATCHERS }, () => new AbortController());
  try {
    const obj = objs[0]!;
    const inst = (await store.instances.list({ application: "Bench", server: "S0" })).find((i) => i.desiredState === "active")!;
    const query = comm.stringToProxy(QueryProxy, registry.address);
    // Each watcher records when it sees an answer with `want` active endpoints.
    let want = 2;
    let pending: { t0: number; left: number; done: () => void } | undefined;
    const samples: number[] = [];
    const watchers = controllers.map(async (ac) => {
      for await (const r of query.watchObject({ obj }, { signal: ac.signal }) as AsyncIterable<FindObjectReply>) {
        if (pending && r.active.length === want) {
          samples.push(performance.now() - pending.t0);
          if (--pending.left === 0) pending.done();
        }
      }
    });
    for (const w of watchers) w.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 500)); // every watch open and past its first answer
    const rounds = Math.max(10, Math.floor(durationMs / 400));
    let state: "active" | "inactive" = "active";
    for (let round = 0; round < rounds; round++) {
      state = state === "active" ? "inactive" : "active";
      want = state === "active" ? 2 : 1;
      // Timed from the start of the write (its commit, a few ms on SQLite, is included).
      const seen = new Promise<void>((resolve) => {
        pending = { t0: performance.now(), left: WATCHERS, done: resolve };
      });
      await store.instances.setDesired(inst.id, { state });
      const timeout = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 5000));
      if ((await Promise.race([seen, timeout])) === "timeout") throw new Error(`round ${round}: not every watcher saw the change within 5 s`);
      pending = undefined;
      // Spread the writes over the poll period so samples do not lock onto its phase.
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 200));
    }
    samples.sort((a, b) => a - b);
    return table(["watchers", "changes", "samples", "p50 ms", "p99 ms", "max ms"], [[
      String(WATCHERS), String(rounds), String(samples.length), fmt(quantile(samples, 0.5), 1), fmt(quantile(samples, 0.99), 1), fmt(samples[samples.length - 1] ?? 0, 1),
    ]]);
  } finally {
    controllers.forEach((ac) => ac.abort());
    comm.close();
    await store.close();
    await registry.stop();
  }
}
