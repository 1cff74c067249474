/**
 * Servant footprint (`npm run bench servant-start`): a hello servant made the
 * way `sgrid create` scaffolds it (the node template, its proto generated
 * with `sgrid gen`, compiled with tsc against this checkout's runtime
 * `sgridnext`: the project's node_modules is this checkout's, so no
 * `npm install`) against a plain @grpc/grpc-js server with the same service
 * and the same generated messages (plain-hello.ts).
 *
 * Each round spawns each stack (order rotated every round, the child pinned
 * to one CPU with taskset when there is one) and measures:
 * - cold start: spawn -> first successful SayHello (a fresh grpc-js client
 *   once the port accepts), and the child's CPU time until then;
 * - RSS right after that first call, and after 1000 more (10 at a time).
 * Figures are min..max and medians over BENCH_SERVANT_ROUNDS (default 5)
 * rounds, with the servant / plain ratio of the medians.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { createProject } from "../../cli/create";
import { processCpuMs, table } from "../harness";
import { outputDir } from "../../test/helpers/paths";

const REPO = path.resolve(__dirname, "../../..");
const CLI = path.join(REPO, "dist/cli/main.js");

function run(what: string, cmd: string, args: string[], cwd: string): void {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", env: { ...process.env, SGRID_LOG_LEVEL: "warn" } });
  if (r.status !== 0) throw new Error(`servant bench: ${what} failed (exit ${r.status}): ${r.stdout}${r.stderr}`);
}

interface Hello {
  dir: string;
  main: string;
  gen: string;
  service: string;
}

/** `sgrid create Bench.HelloServer`, `sgrid gen`, tsc: the scaffold's own build, without the npm install. */
function buildHello(tmp: string): Hello {
  const dir = path.join(tmp, "HelloServer");
  createProject({ name: "Bench.HelloServer", dir, fromRegistry: true });
  fs.symlinkSync(path.join(REPO, "node_modules"), path.join(dir, "node_modules"), "dir");
  run("sgrid gen", process.execPath, [CLI, "gen", "proto", "--out", "src/gen"], dir);
  run("tsc", process.execPath, [path.join(REPO, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], dir);
  const proto = fs.readFileSync(path.join(dir, "proto", fs.readdirSync(path.join(dir, "proto"))[0]!), "utf8");
  const pkg = /^package\s+([\w.]+);/m.exec(proto)![1];
  const svc = /^service\s+(\w+)/m.exec(proto)![1];
  const gen = fs.readdirSync(path.join(dir, "dist/src/gen")).find((f) => /^\w+\.js$/.test(f) && !f.endsWith(".sgrid.js"))!;
  return { dir, main: path.join(dir, "dist/src/main.js"), gen: path.join(dir, "dist/src/gen", gen), service: `${pkg}.${svc}` };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    }).on("error", reject);
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, "127.0.0.1");
    c.once("connect", () => { c.destroy(); resolve(true); });
    c.once("error", () => resolve(false));
  });
}

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Steal ticks of the whole machine so far (the 8th value of /proc/stat's cpu line). */
function stealTicks(): { steal: number; total: number } {
  const f = fs.readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { steal: f[7] ?? 0, total: f.reduce((a, b) => a + b, 0) };
}

interface Round {
  startMs: number;
  cpuToServingMs: number;
  rssStart: number;
  rss1000: number;
}

const enc = (name: string) => Buffer.from([0x0a, Buffer.byteLength(name), ...Buffer.from(name)]); // SayHelloRequest{name}

function sayHello(client: grpc.Client, service: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(`/${service}/SayHello`, (b: Buffer) => b, (b: Buffer) => b, enc("bench"), { deadline: Date.now() + 5000 }, (err, res) => (err ? reject(err) : resolve(res!)));
  });
}

async function measure(cmd: string[], env: Record<string, string>, port: number, service: string, pin: boolean): Promise<Round> {
  const argv = pin ? ["taskset", "-c", String(os.cpus().length - 1), ...cmd] : cmd;
  const t0 = performance.now();
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, SGRID_LOG_LEVEL: "error", ...env } });
  let client: grpc.Client | undefined;
  try {
    const exited = new Promise<never>((_, reject) => child.once("exit", (code) => reject(new Error(`${cmd.join(" ")} exited with ${code} before serving`))));
    exited.catch(() => undefined);
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (Date.now() > deadline) throw new Error(`${cmd.join(" ")}: not serving after 30 s`);
      if (!(await Promise.race([accepts(port), exited]))) {
        await new Promise((r) => setTimeout(r, 2));
        continue;
      }
      client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
      try {
        await Promise.race([sayHello(client, service), exited]);
        break;
      } catch (err) {
        client.close();
        client = undefined;
        if ((err as Error).message.includes("before serving")) throw err;
      }
    }
    const startMs = performance.now() - t0;
    const cpuToServingMs = processCpuMs(child.pid!);
    const rssStart = rssBytes(child.pid!);
    const c = client!;
    await Promise.all(Array.from({ length: 10 }, async () => {
      for (let i = 0; i < 100; i++) await sayHello(c, service);
    }));
    return { startMs, cpuToServingMs, rssStart, rss1000: rssBytes(child.pid!) };
  } finally {
    client?.close();
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once("exit", r));
      child.kill("SIGKILL");
      await gone;
    }
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

export async function runServantStartBench(rounds: number): Promise<string> {
  const tmp = outputDir("bench-servant-start", { shared: true });
  try {
    const hello = buildHello(tmp);
    const pin = fs.existsSync("/usr/bin/taskset") && os.cpus().length > 1;
    const stacks: Array<{ name: string; cmd: (port: number) => string[]; env: (port: number) => Record<string, string> }> = [
      { name: "plain @grpc/grpc-js", cmd: (port) => [process.execPath, path.join(__dirname, "plain-hello.js"), hello.gen, hello.service, String(port)], env: () => ({}) },
      { name: "scaffolded servant (sgridnext)", cmd: () => [process.execPath, hello.main], env: (port) => ({ SGRID_TARGET_PORT: String(port), SGRID_TARGET_HOST: "127.0.0.1" }) },
    ];
    const results = new Map<string, Round[]>(stacks.map((s) => [s.name, []]));
    const s0 = stealTicks();
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? stacks : [...stacks].reverse();
      for (const s of order) {
        const port = await freePort();
        results.get(s.name)!.push(await measure(s.cmd(port), s.env(port), port, hello.service, pin));
      }
    }
    const s1 = stealTicks();
    const mb = (b: number) => (b / 1024 / 1024).toFixed(1);
    const span = (xs: number[], f: (n: number) => string) => `${f(median(xs))} (${f(Math.min(...xs))}..${f(Math.max(...xs))})`;
    const pick = (name: string, k: keyof Round) => results.get(name)!.map((x) => x[k]);
    const rows = stacks.map((s) => [
      s.name,
      span(pick(s.name, "startMs"), (n) => n.toFixed(0)),
      span(pick(s.name, "cpuToServingMs"), (n) => n.toFixed(0)),
      span(pick(s.name, "rssStart"), mb),
      span(pick(s.name, "rss1000"), mb),
    ]);
    const [plain, servant] = stacks.map((s) => s.name) as [string, string];
    const ratio = (k: keyof Round) => (median(pick(servant, k)) / median(pick(plain, k))).toFixed(2);
    rows.push(["servant / plain (medians)", `${ratio("startMs")}x`, `${ratio("cpuToServingMs")}x`, `${ratio("rssStart")}x`, `${ratio("rss1000")}x`]);
    const steal = s1.total > s0.total ? ((s1.steal - s0.steal) / (s1.total - s0.total)) * 100 : 0;
    return `${table(["stack", "spawn -> first call, ms", "CPU to serving, ms", "RSS after start, MB", "RSS after 1000 calls, MB"], rows)}\n`
      + `(median (min..max) of ${rounds} rounds, order rotated each round${pin ? ", children pinned with taskset" : ""}; steal ${steal.toFixed(1)} % of CPU time during the run; BENCH_SERVANT_ROUNDS sets the rounds)`;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
