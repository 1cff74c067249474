/**
 * A small real cluster for CLI tests: a RegistryServer on SQLite on a
 * loopback port, optionally node agents (in-process NodeAgent, no cgroups,
 * fast timings), and a way to run the `sgrid` CLI against it as a child
 * process with its own SGRID_HOME (token cache) and a known admin password.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { Communicator } from "sgridnext";
import { NodeAgent } from "../../../nodeagent";
import { AdminProxy } from "sgridnext/gen/sgrid/registry/v1/admin.sgrid";
import { PatchProxy } from "sgridnext/gen/sgrid/registry/v1/patch.sgrid";
import { RegistryServer } from "../../../registry/server";
import { CLI } from "../../helpers/paths";
import { pollUntil, type Check } from "../../helpers/wait";

export const ADMIN_PASSWORD = "cli-test-admin-password-7f3";

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Polls `check` until it returns something truthy; fails after `timeoutMs` naming `what`. */
export function waitFor<T>(what: string, check: Check<T>, timeoutMs = 30_000): Promise<T> {
  return pollUntil(what, check, { timeoutMs, everyMs: 100 });
}

export class CliCluster {
  readonly registry: RegistryServer;
  readonly agents: NodeAgent[] = [];
  readonly comm = new Communicator();
  admin!: AdminProxy;
  patch!: PatchProxy;
  target = "";
  private token = "";

  constructor(readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true });
    this.registry = new RegistryServer({
      db: `sqlite:${path.join(dir, "registry.db")}`, listen: "127.0.0.1:0", dataDir: path.join(dir, "registry"),
      adminPassword: ADMIN_PASSWORD, heartbeatIntervalMs: 1000, heartbeatTimeoutMs: 600_000, shutdownGraceMs: 1000,
    });
  }

  async start(): Promise<this> {
    await this.registry.start();
    this.target = `127.0.0.1:${this.registry.address.port}`;
    this.admin = this.comm.stringToProxy(AdminProxy, this.target);
    this.patch = this.comm.stringToProxy(PatchProxy, this.target);
    this.token = (await this.admin.login({ user: "admin", password: ADMIN_PASSWORD })).token;
    return this;
  }

  /** Call options of the admin user, for the test's own checks. */
  get as(): { metadata: Record<string, string> } {
    return { metadata: { authorization: `Bearer ${this.token}` } };
  }

  /** Starts an agent named `name` and waits until the registry sees it online. */
  async addAgent(name: string): Promise<NodeAgent> {
    const agent = new NodeAgent({
      registry: [this.target], name, dataDir: path.join(this.dir, `node-${name}`), address: "127.0.0.1",
      cgroups: { prefer: "none" }, process: { pollIntervalMs: 100 },
      supervisor: { restart: { initialDelayMs: 100, maxDelayMs: 1000, jitter: 0 }, stop: { graceMs: 2000 } },
      backoff: { initialMs: 100, maxMs: 1000 }, installRetry: { initialMs: 200, maxMs: 1000 }, heartbeatIntervalMs: 1000,
    });
    await agent.start();
    this.agents.push(agent);
    await waitFor(`node ${name} online`, async () => (await this.admin.listNodes({}, this.as)).nodes.some((n) => n.name === name && n.online));
    return agent;
  }

  /** Runs `sgrid <args>` against this registry. `env` adds to (or, with undefined, removes from) the defaults. */
  run(args: string[], opts: { env?: Record<string, string | undefined>; input?: string; cwd?: string; home?: string } = {}): Promise<CliRun> {
    const env: Record<string, string | undefined> = {
      ...process.env, SGRID_LOG_LEVEL: "warn", SGRID_REGISTRY: this.target, SGRID_PASSWORD: ADMIN_PASSWORD,
      SGRID_HOME: opts.home ?? path.join(this.dir, "home"), SGRID_TOKEN: undefined, SGRID_USER: undefined, ...opts.env,
    };
    for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd ?? this.dir, env: env as NodeJS.ProcessEnv, stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout!.setEncoding("utf8").on("data", (d: string) => { stdout += d; });
      child.stderr!.setEncoding("utf8").on("data", (d: string) => { stderr += d; });
      child.on("error", reject);
      child.on("exit", (code) => resolve({ code, stdout, stderr }));
      child.stdin!.end(opts.input ?? "");
    });
  }

  async stop(): Promise<void> {
    for (const a of this.agents) {
      await a.supervisor.stopAll().catch(() => undefined);
      await a.shutdown().catch(() => undefined);
    }
    this.comm.close();
    await this.registry.stop().catch(() => undefined);
  }
}
