/**
 * A real cluster for the fault suite: `sgrid registry` (SQLite or MySQL /
 * MariaDB), one `sgrid node` agent per node name, each in its own network
 * namespace with its own address (test/helpers/netns.ts; loopback addresses
 * when namespaces cannot be made, said on stderr), real cgroups, servants
 * published with `sgrid publish`, and a caller process (./caller.ts).
 *
 * Everything is a child process that can be killed with SIGKILL and started
 * again on the same address, data directory and database: the registry
 * listens on a port reserved once (helpers/ports.ts), agents keep their data
 * directories. Timeouts are shortened with the parts' own flags
 * (`--heartbeat-interval`, `--heartbeat-timeout`), never by special code.
 *
 * Teardown: {@link FaultCluster.stop} kills what it started, the namespaces
 * with what runs in them, servants (by working directory) and cgroups. When
 * the run itself is killed, the reaper (test/helpers/reaper.ts) does the same:
 * the children carry SGRID_TEST_RUN, servants run under the run's
 * test-output folder, cgroups are `sgrid-test-<pid>-...`, namespaces
 * `sge2e-<pid>-<i>`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Communicator } from "sgridnext";
import { AdminProxy } from "sgridnext/gen/sgrid/registry/v1/admin.sgrid";
import type { NodeInfo } from "sgridnext/gen/sgrid/registry/v1/admin";
import type { InstanceInfo } from "sgridnext/gen/sgrid/registry/v1/types";
import { QueryProxy } from "sgridnext/gen/sgrid/registry/v1/query.sgrid";
import type { FindObjectReply } from "sgridnext/gen/sgrid/registry/v1/query";
import { createNetnsLab, type NetnsLab } from "../../helpers/netns";
import { CLI, outputDir } from "../../helpers/paths";
import { reservePort } from "../../helpers/ports";
import { killProcessesUnder, Proc, removeCgroupGroup } from "../../e2e/helpers/procs";
import { runCommand, type Ran } from "../../e2e/helpers/scaffold";
import { waitFor } from "../../helpers/wait";
import { Caller } from "./caller";
import { echoPackage } from "./package";

export interface FaultClusterOptions {
  /** Output folder name (under test-output/). */
  name: string;
  /** Node names; agent i runs in namespace i. */
  nodes: string[];
  /** Database URL; default SQLite in the registry's data directory. */
  db?: string;
  /** `--heartbeat-interval` of the registry, ms. Default 500. */
  heartbeatIntervalMs?: number;
  /**
   * `--heartbeat-timeout` of the registry, ms. Default 6000: short, but like
   * any real setting above the agents' longest reconnect delay (3 s + 50 %
   * jitter), or a restarted registry would judge nodes before they are back.
   */
  heartbeatTimeoutMs?: number;
  /** `--tag` values of agent i (placement by node tags). Default none. */
  nodeTags?: string[][];
  /** More `sgrid registry` flags (e.g. `--placement-grace 2s`). */
  registryArgs?: string[];
  /** Flags of `node` itself for the registry and the agents (e.g. `--cpu-prof`, which NODE_OPTIONS does not take). Default none. */
  nodeFlags?: string[];
}

const ADMIN_USER = "admin";

export class FaultCluster {
  readonly out: string;
  readonly token = `fault-cluster-token-${process.pid}`;
  readonly adminPassword = `fault-admin-password-${process.pid}`;
  readonly heartbeatIntervalMs: number;
  readonly heartbeatTimeoutMs: number;
  readonly db: string;
  lab!: NetnsLab;
  registry: Proc | undefined;
  /** Agent processes by node index (undefined while killed). */
  readonly agents: Array<Proc | undefined> = [];
  /** Further agents started with startExtraAgent (a second agent with a taken name...). */
  readonly extraAgents: Proc[] = [];
  registryAddr = "";
  private registryPort = 0;
  private readonly comm = new Communicator({ env: {} });
  private adminToken = "";
  private readonly callers: Caller[] = [];
  private readonly cgroupGroups: string[] = [];
  private readonly dataDirs: string[] = [];
  private registryStarts = 0;

  private constructor(readonly options: FaultClusterOptions) {
    this.out = outputDir(`fault-${options.name}`);
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 500;
    this.heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 6000;
    this.db = options.db ?? `sqlite:${path.join(this.out, "registry", "registry.db")}`;
  }

  /** Makes the namespaces, starts the registry and every agent, and waits until every node is online. */
  static async start(options: FaultClusterOptions): Promise<FaultCluster> {
    const c = new FaultCluster(options);
    try {
      c.lab = await createNetnsLab(options.nodes.length);
      if (!c.lab.available) process.stderr.write(`fault suite: network namespaces not available (${c.lab.reason}); agents run on ${c.lab.nodes.map((n) => n.address).join(", ")}\n`);
      c.registryPort = await reservePort();
      await c.startRegistry();
      for (let i = 0; i < options.nodes.length; i++) c.agents.push(undefined);
      await Promise.all(options.nodes.map((_, i) => c.startAgent(i)));
      await c.waitNodesOnline();
      return c;
    } catch (err) {
      await c.stop();
      throw err;
    }
  }

  /** The SQLite database file (undefined on MySQL). */
  get sqliteFile(): string | undefined {
    return this.db.startsWith("sqlite:") ? this.db.slice("sqlite:".length) : undefined;
  }

  get nodes(): string[] {
    return this.options.nodes;
  }

  /** Call options of the admin user. */
  get as(): { metadata: Record<string, string> } {
    return { metadata: { authorization: `Bearer ${this.adminToken}` } };
  }

  get admin(): AdminProxy {
    return this.comm.stringToProxy(AdminProxy, this.registryAddr);
  }

  get query(): QueryProxy {
    return this.comm.stringToProxy(QueryProxy, this.registryAddr);
  }

  // ---- registry -------------------------------------------------------------------------
  /** Starts `sgrid registry` on its reserved port (the same one after a kill) and logs the admin in. */
  async startRegistry(extraArgs: string[] = []): Promise<Proc> {
    const tag = ++this.registryStarts;
    const dataDir = path.join(this.out, "registry");
    const args = [...(this.options.nodeFlags ?? []), CLI, "registry", "--listen", `${this.lab.hostAddress}:${this.registryPort}`, "--data-dir", dataDir, "--db", this.db,
      "--heartbeat-interval", `${this.heartbeatIntervalMs}ms`, "--heartbeat-timeout", `${this.heartbeatTimeoutMs}ms`, ...(this.options.registryArgs ?? []), ...extraArgs];
    const proc = new Proc(`registry (start ${tag})`, process.execPath, args, {
      cwd: this.out, env: { SGRID_CLUSTER_TOKEN: this.token, SGRID_ADMIN_PASSWORD: this.adminPassword, SGRID_LOG_LEVEL: "info" },
      logFile: path.join(this.out, "registry.log"),
    });
    this.registry = proc;
    this.registryAddr = (await proc.waitForLine(/sgrid registry serving on (\S+) /))[1]!;
    this.adminToken = (await this.admin.login({ user: ADMIN_USER, password: this.adminPassword })).token;
    return proc;
  }

  /** kill -9 of the registry; resolves once it is gone. */
  async killRegistry(): Promise<void> {
    const r = this.registry;
    this.registry = undefined;
    r?.signal("SIGKILL");
    await r?.exited;
  }

  // ---- agents ----------------------------------------------------------------------------
  private agentArgs(i: number, name: string, dataDir: string, group: string): [string, string[]] {
    const config = path.join(this.out, "agent-config.json");
    if (!fs.existsSync(config)) {
      // Faster supervision than a production node: restarts within a second, short stop grace.
      fs.writeFileSync(config, JSON.stringify({ supervisor: { restart: { initialDelayMs: 200, maxDelayMs: 2000 }, stop: { graceMs: 3000 } } }));
    }
    const args = [...(this.options.nodeFlags ?? []), CLI, "node", "--registry", this.registryAddr, "--name", name, "--data-dir", dataDir,
      "--address", this.lab.nodes[i]!.address, "--cgroup-group", group, "--config", config, ...(this.options.nodeTags?.[i] ?? []).flatMap((t) => ["--tag", t])];
    return this.lab.wrap(i, process.execPath, args);
  }

  private agentProc(i: number, name: string, label: string, dataDir: string, group: string): Proc {
    if (!this.dataDirs.includes(dataDir)) this.dataDirs.push(dataDir);
    if (!this.cgroupGroups.includes(group)) this.cgroupGroups.push(group);
    const [cmd, argv] = this.agentArgs(i, name, dataDir, group);
    return new Proc(label, cmd, argv, {
      cwd: this.out, env: { SGRID_CLUSTER_TOKEN: this.token, SGRID_LOG_LEVEL: "info" }, logFile: path.join(this.out, `agent-${label.replace(/\W+/g, "-")}.log`),
    });
  }

  /** Starts node i's agent (its own data directory, kept across restarts) and waits for it to say it started. */
  async startAgent(i: number): Promise<Proc> {
    const name = this.nodes[i]!;
    const proc = this.agentProc(i, name, `agent ${name}`, path.join(this.out, `node-${name}`), `sgrid-test-${process.pid}-fault-${i}`);
    this.agents[i] = proc;
    await proc.waitForLine(/sgrid node: started/);
    return proc;
  }

  /** kill -9 of node i's agent (its servants keep running); resolves once it is gone. */
  async killAgent(i: number): Promise<void> {
    const a = this.agents[i];
    this.agents[i] = undefined;
    a?.signal("SIGKILL");
    await a?.exited;
  }

  /**
   * Starts one more agent in namespace `i` under node name `name` (e.g. a
   * name another agent holds), with its own data directory and cgroup
   * folder. Does not wait for anything.
   */
  startExtraAgent(i: number, name: string, label: string): Proc {
    const k = this.extraAgents.length;
    const proc = this.agentProc(i, name, label, path.join(this.out, `extra-${k}-${name}`), `sgrid-test-${process.pid}-fault-extra-${k}`);
    this.extraAgents.push(proc);
    return proc;
  }

  // ---- the registry's view ------------------------------------------------------------------
  async listNodes(): Promise<NodeInfo[]> {
    return (await this.admin.listNodes({}, this.as)).nodes;
  }

  async instances(app: string, server: string): Promise<InstanceInfo[]> {
    return (await this.admin.listInstances({ application: app, server }, this.as)).instances;
  }

  async find(obj: string): Promise<FindObjectReply> {
    return this.query.findObject({ obj });
  }

  /** Waits until the registry says every node is online. */
  async waitNodesOnline(timeoutMs = 60_000): Promise<void> {
    await waitFor("every node online", async () => {
      const list = await this.listNodes();
      return this.nodes.every((n) => list.some((x) => x.name === n && x.online));
    }, timeoutMs, 100);
  }

  /** Waits until FindObject lists `count` active endpoints of every Obj (and none inactive); resolves with the time it took, ms. */
  async waitAllActive(objs: Record<string, number>, timeoutMs = 60_000): Promise<number> {
    const t0 = Date.now();
    await waitFor(`every endpoint active (${JSON.stringify(objs)})`, async () => {
      for (const [obj, count] of Object.entries(objs)) {
        const r = await this.find(obj);
        if (r.active.length !== count || r.inactive.length !== 0) return false;
      }
      return true;
    }, timeoutMs, 50);
    return Date.now() - t0;
  }

  // ---- the CLI ---------------------------------------------------------------------------------
  /** Runs `sgrid <args>` against this registry as the admin user. */
  cli(args: string[], env: Record<string, string> = {}): Promise<Ran> {
    return runCommand(process.execPath, [CLI, ...args], this.out, {
      SGRID_REGISTRY: this.registryAddr, SGRID_PASSWORD: this.adminPassword, SGRID_USER: ADMIN_USER, SGRID_HOME: path.join(this.out, "home"), ...env,
    }, 300_000);
  }

  /**
   * Builds the fault servant's package for `App.Server` (version `version`)
   * and publishes it with `sgrid publish --deploy` on `nodes` with one Obj;
   * resolves once the task succeeded. `publishArgs` go to sgrid publish.
   */
  async publishEcho(fullServer: string, nodes: string[], obj: string, version: string, publishArgs: string[] = []): Promise<string> {
    const [app, server] = fullServer.split(".") as [string, string];
    const pkgDir = path.join(this.out, "packages");
    fs.mkdirSync(pkgDir, { recursive: true });
    const file = await echoPackage(pkgDir, app, server, version);
    const r = await this.cli(["publish", fullServer, file, "--nodes", nodes.join(","), "--deploy", "--obj", obj, ...publishArgs]);
    if (r.code !== 0) throw new Error(`sgrid publish ${fullServer} failed (exit ${r.code}):\n${r.out}`);
    return r.out;
  }

  // ---- callers -------------------------------------------------------------------------------
  /** Starts a caller process calling `objs` by name at `rate` calls/s in total (./caller.ts). */
  async startCaller(objs: string[], rate = 250): Promise<Caller> {
    const c = await Caller.start({ registry: this.registryAddr, objs, rate, dir: path.join(this.out, `caller-${this.callers.length}`) });
    this.callers.push(c);
    return c;
  }

  // ---- teardown --------------------------------------------------------------------------------
  /** Ends everything this cluster started. Never throws; idempotent. */
  async stop(): Promise<void> {
    for (const c of this.callers) c.proc.signal("SIGKILL");
    for (const a of [...this.agents, ...this.extraAgents]) a?.signal("SIGKILL");
    this.comm.close();
    await this.registry?.stop(5000).catch(() => undefined);
    await this.lab?.destroy();
    for (const d of this.dataDirs) killProcessesUnder(d);
    for (const g of this.cgroupGroups) await removeCgroupGroup(g);
  }
}
