/**
 * Scaffolded servers for the end-to-end tests, made the way a user makes
 * them: `sgrid create` (the CLI, as a child process; it vendors this
 * checkout's runtime and tools), `npm install`, a build in the new project
 * (`npm run build`: `sgrid-tools gen` + tsc) and `sgrid-tools package`, the
 * project's own dev dependency.
 *
 * Demo.CallerServer is the template with its proto and servant replaced:
 * `Caller.Call` calls Demo.HelloServer.GreeterObj through the generated
 * GreeterProxy, resolved by Obj name through the registry, and answers
 * with Hello's message and the node it ran on.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { CLI, outputDir } from "../../helpers/paths";


export interface Ran {
  code: number | null;
  out: string;
}

/** Runs a command (args as an array), collecting stdout+stderr; never rejects for a non-zero exit. */
export function runCommand(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}, timeoutMs = 900_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd,
      env: { ...process.env, SGRID_LOG_LEVEL: "warn", npm_config_update_notifier: "false", npm_config_fund: "false", npm_config_audit: "false", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => { out += d; });
    child.stderr!.setEncoding("utf8").on("data", (d: string) => { out += d; });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, out: signal ? `${out}\n[killed by ${signal}]` : out });
    });
  });
}

/** Like runCommand, but rejects (with the output) unless the exit code is 0. */
export async function mustRun(what: string, cmd: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<string> {
  const r = await runCommand(cmd, args, cwd, env);
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.out.slice(-4000)}`);
  return r.out;
}

export interface Project {
  dir: string;
  name: string;
}

/**
 * `sgrid create <name> --dir <dir>` (the CLI: it packs this checkout's
 * runtime and tools into the project's vendor/), then `npm install`.
 */
export async function createProject(name: string, dir: string, obj = "GreeterObj"): Promise<Project> {
  await mustRun(`sgrid create ${name}`, process.execPath, [CLI, "create", name, "--obj", obj, "--dir", dir], path.dirname(dir));
  await mustRun(`npm install (${name})`, "npm", ["install", "--prefer-offline", "--no-audit", "--no-fund"], dir);
  return { dir, name };
}

/** `npm run build` in the project (sgrid gen + tsc). */
export async function buildProject(p: Project): Promise<void> {
  await mustRun(`npm run build (${p.name})`, "npm", ["run", "build"], p.dir);
}

export interface Packaged {
  file: string;
  sha256: string;
  size: number;
}

/** `sgrid-tools package` (the project's own dev dependency); `version` sets the label (file name and manifest). */
export async function packageProject(p: Project, outDir: string, version?: string): Promise<Packaged> {
  const args = ["package", "--out", outDir, "--json", ...(version ? ["--version", version] : [])];
  for (let attempt = 1; ; attempt++) {
    const out = await mustRun(`sgrid package (${p.name})`, path.join(p.dir, "node_modules/.bin/sgrid-tools"), args, p.dir);
    const last = out.trim().split("\n").pop() ?? "";
    if (last.startsWith("{")) {
      const info = JSON.parse(last) as Packaged;
      return { file: info.file, sha256: info.sha256, size: info.size };
    }
    // Seen once on a loaded machine: `sgrid package` exited 0 without output, leaving its .tmp
    // archive half written (reported in notes/up-e2e.md). Retried once so the journeys still run.
    const note = `sgrid package ${args.join(" ")} in ${p.dir} exited 0 without printing its result (attempt ${attempt}); output: ${JSON.stringify(out)}`;
    fs.appendFileSync(path.join(outDir, "..", "scaffold-timings.txt"), `WARNING ${note}\n`);
    if (attempt >= 2) throw new Error(note);
    console.warn(`warning: ${note}; retrying`);
  }
}

// ---- Demo.CallerServer: a servant that calls Hello through a proxy resolved by Obj name ----------

const CALLER_PROTO = `// Demo.CallerServer.CallerObj: calls Demo.HelloServer.GreeterObj and returns its answer.
syntax = "proto3";

package demo.callerserver;

message CallRequest {
  string name = 1;
}

message CallReply {
  // Hello's answer.
  string message = 1;
  // The node this Caller instance runs on.
  string node = 2;
}

service Caller {
  rpc Call(CallRequest) returns (CallReply);
}
`;

const CALLER_SERVANT = `/**
 * CallerObj: asks Demo.HelloServer.GreeterObj (found by its Obj name through
 * the registry) and returns the answer with the node this instance runs on.
 */
import type { DeepPartial, ServerContext } from "sgridnext";
import { CallerServant } from "./gen/Caller.sgrid";
import type { CallReply, CallRequest } from "./gen/Caller";
import type { GreeterProxy } from "./gen/Greeter.sgrid";

export class Caller extends CallerServant {
  constructor(private readonly hello: GreeterProxy) {
    super();
  }

  async call(request: CallRequest, _ctx: ServerContext): Promise<DeepPartial<CallReply>> {
    const reply = await this.hello.sayHello({ name: request.name });
    return { message: reply.message, node: process.env.SGRID_NODE ?? "" };
  }
}
`;

const CALLER_MAIN = `/**
 * Entry point of Demo.CallerServer: hosts CallerObj, which calls
 * Demo.HelloServer.GreeterObj by its Obj name (resolved through SGRID_REGISTRY).
 */
import { Application, getLogger } from "sgridnext";
import { Caller } from "./caller";
import { GreeterProxy } from "./gen/Greeter.sgrid";

const log = getLogger("CallerServer");

async function main(): Promise<void> {
  const app = new Application({ app: process.env.SGRID_APP ?? "Demo", server: process.env.SGRID_SERVER ?? "CallerServer" });
  const hello = app.communicator.stringToProxy(GreeterProxy, "Demo.HelloServer.GreeterObj");
  app.addServant("CallerObj", new Caller(hello));
  await app.start();
  for (const a of app.adapters()) log.info({ obj: a.obj, host: a.endpoint.host, port: a.endpoint.port }, "serving");
}

main().catch((err: unknown) => {
  log.fatal({ err }, "cannot start");
  process.exit(1);
});
`;

/**
 * Turns a freshly created Demo.CallerServer (`--obj CallerObj`) into the
 * caller: its own proto and servant, Hello's proto (copied from Hello's
 * project, as a team shares IDL) for the generated GreeterProxy.
 */
export function writeCaller(caller: Project, hello: Project): void {
  fs.writeFileSync(path.join(caller.dir, "proto/Caller.proto"), CALLER_PROTO);
  fs.copyFileSync(path.join(hello.dir, "proto/Greeter.proto"), path.join(caller.dir, "proto/Greeter.proto"));
  fs.writeFileSync(path.join(caller.dir, "src/caller.ts"), CALLER_SERVANT);
  fs.writeFileSync(path.join(caller.dir, "src/main.ts"), CALLER_MAIN);
  // The template's test exercises the template's sayHello; this servant has none.
  fs.rmSync(path.join(caller.dir, "test"), { recursive: true, force: true });
}

export interface Scaffold {
  hello: Project;
  caller: Project;
  helloV1: Packaged;
  helloV2: Packaged;
  callerV1: Packaged;
}

const scaffolds = new Map<string, Promise<Scaffold>>();

/**
 * Hello and Caller created, built and packaged (Hello as 0.1.0 and 0.2.0,
 * Caller as 0.1.0) in a folder of their own; made once per process (the
 * second test file shares the first one's, so the folder is the process's,
 * not the first file's, which is removed when that file passes).
 */
export function scaffoldBoth(): Promise<Scaffold> {
  let s = scaffolds.get("both");
  if (!s) {
    s = (async () => {
      const root = outputDir("e2e-scaffold", { shared: true });
      const pkgs = path.join(root, "packages");
      // How long each step took, for reading after a slow run (test-output/.../scaffold-timings.txt).
      const timed = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
        const t0 = Date.now();
        const v = await fn();
        fs.appendFileSync(path.join(root, "scaffold-timings.txt"), `${what}: ${Date.now() - t0} ms\n`);
        return v;
      };
      const hello = await timed("create Hello", () => createProject("Demo.HelloServer", path.join(root, "HelloServer")));
      const caller = await timed("create Caller", () => createProject("Demo.CallerServer", path.join(root, "CallerServer"), "CallerObj"));
      writeCaller(caller, hello);
      await timed("build Hello", () => buildProject(hello));
      await timed("build Caller", () => buildProject(caller));
      const helloV1 = await timed("package Hello 0.1.0", () => packageProject(hello, pkgs, "0.1.0"));
      const helloV2 = await timed("package Hello 0.2.0", () => packageProject(hello, pkgs, "0.2.0"));
      const callerV1 = await timed("package Caller 0.1.0", () => packageProject(caller, pkgs, "0.1.0"));
      return { hello, caller, helloV1, helloV2, callerV1 };
    })();
    scaffolds.set("both", s);
    s.catch(() => scaffolds.delete("both"));
  }
  return s;
}
