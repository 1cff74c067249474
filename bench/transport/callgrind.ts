/**
 * Instructions per call of one side of a transport stack, counted by
 * callgrind: repeatable whatever else the machine does, so it proves a
 * per-call change where calls/s on a noisy machine cannot. Not part of
 * `npm run bench` (valgrind is not installed everywhere); run it directly:
 *
 *   node dist/bench/transport/callgrind.js            # sgrid-proxy, both sides, c=64
 *   CG_STACKS=sgrid-proxy,bare CG_SIDES=client CG_C=1 node dist/bench/transport/callgrind.js
 *
 * Method: for each stack and side, two runs of the same pair of processes
 * (bench/transport/stacks.ts's server and client, the measured side under
 * `valgrind --tool=callgrind`), one of CG_BASE calls and one of CG_CALLS;
 * instructions per call = (total of the longer - total of the shorter) /
 * (CG_CALLS - CG_BASE), so start-up, warm-up and exit cancel out. Node runs
 * with --no-concurrent-recompilation: otherwise much of the window runs
 * baseline code while the optimizer's thread waits under valgrind (the
 * proxy measured 15.4k instructions per call that way against 11.6k).
 * The counts still depend on batching (how many frames one socket read or
 * write carries, which the unmeasured side's speed sets): compare runs
 * made back to back on the same machine, under the same load.
 * Each run's callgrind file stays in test-output/bench-callgrind/ for
 * `callgrind_annotate --inclusive=yes <file>`; add `--perf-basic-prof` to
 * CG_NODE_ARGS to map JIT addresses through /tmp/perf-<pid>.map.
 *
 * Env: CG_STACKS (comma-separated, default sgrid-proxy), CG_SIDES
 * (client,server), CG_C (calls in flight, 64), CG_CALLS (25000), CG_BASE
 * (5000), CG_NODE_ARGS (extra node options of the measured side).
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as readline from "node:readline";
import { STACKS, type StackName, makeClient, startServer } from "./stacks";
import { outputDir } from "../../test/helpers/paths";
import { installReaper } from "../../test/helpers/reaper";

type Side = "client" | "server";

const NODE_ARGS = ["--no-concurrent-recompilation"];

/** The child roles: `server <stack>` prints its port and serves until stdin ends; `client <stack> <port> <calls> <c>`. */
async function child(role: string, stack: StackName, rest: string[]): Promise<void> {
  if (role === "server") {
    const port = await startServer(stack);
    process.stdout.write(`PORT ${port}\n`);
    process.stdin.resume();
    process.stdin.on("end", () => process.exit(0));
    return;
  }
  const [port, calls, c] = rest.map(Number) as [number, number, number];
  const client = await makeClient(stack, port);
  await client.call();
  let left = calls;
  const worker = async (): Promise<void> => {
    while (left > 0) {
      left--;
      await client.call();
    }
  };
  await Promise.all(Array.from({ length: c }, worker));
  await client.close();
  process.exit(0);
}

function nodeCommand(measured: boolean, out: string, script: string[]): [string, string[]] {
  const extra = (process.env.CG_NODE_ARGS ?? "").split(" ").filter((a) => a !== "");
  if (!measured) return [process.execPath, script];
  return ["valgrind", ["-q", "--tool=callgrind", "--smc-check=all-non-file", `--callgrind-out-file=${out}`, process.execPath, ...NODE_ARGS, ...extra, ...script]];
}

function exited(p: ChildProcess): Promise<number | null> {
  return new Promise((resolve, reject) => {
    p.once("error", reject);
    p.once("exit", (code) => resolve(code));
  });
}

/** Total instructions (callgrind's summary line) of the measured side of one run of `calls` calls. */
async function measure(stack: StackName, side: Side, calls: number, c: number, dir: string): Promise<number> {
  const out = path.join(dir, `callgrind.${stack}.${side}.c${c}.${calls}.out`);
  const self = [__filename];
  const env = { ...process.env, SGRID_LOG_LEVEL: "warn", BENCH_CALL_TIMEOUT_MS: "120000" };
  const [sCmd, sArgs] = nodeCommand(side === "server", out, [...self, "server", stack]);
  const server = spawn(sCmd, sArgs, { env, stdio: ["pipe", "pipe", "inherit"] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const lines = readline.createInterface({ input: server.stdout! });
      lines.on("line", (l) => {
        const m = /^PORT (\d+)$/.exec(l);
        if (m) resolve(Number(m[1]));
      });
      server.once("exit", (code) => reject(new Error(`the ${stack} server exited (${code}) before serving`)));
    });
    const [cCmd, cArgs] = nodeCommand(side === "client", out, [...self, "client", stack, String(port), String(calls), String(c)]);
    const code = await exited(spawn(cCmd, cArgs, { env, stdio: ["ignore", "inherit", "inherit"] }));
    if (code !== 0) throw new Error(`the ${stack} client exited ${code}`);
  } finally {
    server.stdin!.end();
  }
  await exited(server);
  const summary = /^(?:summary|totals): (\d+)/m.exec(fs.readFileSync(out, "utf8"));
  if (!summary) throw new Error(`no instruction total in ${out}`);
  return Number(summary[1]);
}

async function main(): Promise<void> {
  const stacks = (process.env.CG_STACKS ?? "sgrid-proxy").split(",") as StackName[];
  const sides = (process.env.CG_SIDES ?? "client,server").split(",") as Side[];
  const c = Number(process.env.CG_C ?? 64);
  const calls = Number(process.env.CG_CALLS ?? 25_000);
  const base = Number(process.env.CG_BASE ?? 5000);
  for (const s of stacks) if (!(STACKS as readonly string[]).includes(s)) throw new Error(`unknown stack "${s}" (one of ${STACKS.join(", ")})`);
  for (const s of sides) if (s !== "client" && s !== "server") throw new Error(`unknown side "${s}" (client or server)`);
  if (!(calls > base && base > 0 && c >= 1)) throw new Error("CG_CALLS must exceed CG_BASE, both positive, and CG_C at least 1");
  const dir = outputDir("bench-callgrind", { shared: true });
  console.log(`callgrind, instructions per call ((${calls} calls - ${base} calls) / ${calls - base}), c=${c}, node ${NODE_ARGS.join(" ")}; files in ${dir}`);
  for (const stack of stacks) {
    for (const side of sides) {
      const short = await measure(stack, side, base, c, dir);
      const long = await measure(stack, side, calls, c, dir);
      console.log(`${stack} ${side}: ${Math.round((long - short) / (calls - base)).toLocaleString("en-US")} instructions per call`);
    }
  }
}

if (require.main === module) {
  const [role, stack, ...rest] = process.argv.slice(2);
  if (role === "server" || role === "client") {
    child(role, stack as StackName, rest).catch((err) => {
      console.error(err);
      process.exit(1);
    });
  } else {
    installReaper();
    main().catch((err) => {
      console.error((err as Error).message);
      process.exit(1);
    });
  }
}
