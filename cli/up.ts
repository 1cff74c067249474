/**
 * `sgrid up`: the all-in-one local cluster for a new user, in one process:
 * a registry on embedded SQLite, one node agent and the admin web app, all
 * keeping their data under one folder.
 *
 *   <data-dir>/                 default ./sgrid-data (made absolute)
 *     up.lock                   pid + start time of the running `sgrid up` (one per data dir)
 *     cluster-token             the agents' cluster token (mode 0600), made on first start
 *     admin-password            the first admin's password (mode 0600), made on first start
 *     registry/                 registry.db (SQLite) and packages/
 *     node/                     the agent: servers/, cache/, state/
 *     admin/tmp/                uploads being hashed before they go to the registry
 *
 * Defaults, and why:
 * - host 127.0.0.1: a local dev cluster is not reachable from the network
 *   until you say so; the registry listens there, servants' adapters bind
 *   there and it is what proxies are told.
 * - registry port 9500, admin port 9600: the defaults of `sgrid registry`
 *   and `sgrid admin`, so what a user learns here carries over. 0 picks free
 *   ports (tests, several clusters side by side).
 * - node name: the host name, or `local` when the host name is not a valid
 *   node name.
 * - cgroup group `sgrid-up-<8 hex of the data dir path>`: two clusters on one
 *   machine never share instance cgroups (instance ids start at 1 in each).
 * - logs: level `warn` on stderr unless SGRID_LOG_LEVEL says otherwise; the
 *   step lines on stdout say what happens.
 *
 * The admin password: from SGRID_ADMIN_PASSWORD on first start, else
 * generated; either way written to `<data-dir>/admin-password` (0600) and
 * printed with the admin URL on every start. That is a convenience for a
 * local dev cluster (anyone who can read the data dir or the terminal can
 * log in); production clusters use `sgrid registry` / `sgrid admin`, which
 * print a generated password once and store none. A password changed later
 * in the admin app is not tracked: the printed one is the first one.
 *
 * Ctrl-C (SIGINT) or SIGTERM: admin stops, the agent stops every instance
 * (in this mode only: `sgrid node` leaves servants running), the registry
 * stops, the lock is released. A second signal exits at once. A second
 * `sgrid up` on the same data dir while one runs fails with the pid of the
 * first (a lock left by a dead process is taken over).
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Command } from "commander";
import { ConfigError, formatHostPort, getLogger, isNameOf, nameProblem, setLogLevel } from "sgridnext";
import { AdminServer } from "../admin";
import { NodeAgent } from "../nodeagent";
import { RegistryServer } from "../registry/server";
import { tuneRegistryHeap } from "../registry/server/heap-tuning";
import { acquireLock, adminPassword, clusterToken, UP_FILES } from "./up-data-dir";

export { acquireLock, adminPassword, clusterToken, UP_FILES } from "./up-data-dir";

/** The defaults (see the file comment for why). */
export const UP_DEFAULTS = Object.freeze({
  dataDir: "./sgrid-data",
  host: "127.0.0.1",
  registryPort: 9500,
  adminPort: 9600,
  /** How long to wait for the agent's session before saying it is not connected yet (it keeps trying), ms. */
  connectWaitMs: 20_000,
  logLevel: "warn",
});


export interface UpOptions {
  dataDir: string;
  host: string;
  registryPort: number;
  adminPort: number;
  nodeName: string;
}

interface UpFlags {
  dataDir?: string;
  host?: string;
  registryPort?: string;
  adminPort?: string;
  nodeName?: string;
}

function parsePort(text: string | undefined, fallback: number, what: string): number {
  if (text === undefined || text === "") return fallback;
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) throw new ConfigError(`${what} must be a port number from 0 to 65535, got "${text}"`);
  return Number(text);
}

/** The default node name: the host name when it is a valid node name, else `local`. */
export function defaultNodeName(hostname = os.hostname()): string {
  return isNameOf("node", hostname) ? hostname : "local";
}

/** Flags > env (SGRID_DATA_DIR, SGRID_UP_HOST, SGRID_REGISTRY_PORT, SGRID_ADMIN_PORT, SGRID_NODE_NAME) > defaults. */
export function resolveUpOptions(flags: UpFlags, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): UpOptions {
  const pick = (flag: string | undefined, name: string) => (flag !== undefined && flag !== "" ? flag : env[name] || undefined);
  const nodeName = pick(flags.nodeName, "SGRID_NODE_NAME") ?? defaultNodeName();
  const problem = nameProblem("node", nodeName);
  if (problem !== undefined) throw new ConfigError(`invalid node name ${JSON.stringify(nodeName)}: ${problem}`);
  const host = pick(flags.host, "SGRID_UP_HOST") ?? UP_DEFAULTS.host;
  if (/[\s/]/.test(host) || host === "") throw new ConfigError(`--host "${host}" is not a host name or IP address`);
  return {
    dataDir: path.resolve(cwd, pick(flags.dataDir, "SGRID_DATA_DIR") ?? UP_DEFAULTS.dataDir),
    host,
    registryPort: parsePort(pick(flags.registryPort, "SGRID_REGISTRY_PORT"), UP_DEFAULTS.registryPort, "--registry-port"),
    adminPort: parsePort(pick(flags.adminPort, "SGRID_ADMIN_PORT"), UP_DEFAULTS.adminPort, "--admin-port"),
    nodeName,
  };
}

// ---- the cluster --------------------------------------------------------------------------

export interface UpCluster {
  registry: RegistryServer;
  agent: NodeAgent;
  admin: AdminServer;
  adminUrl: string;
  /** Stops admin, every servant, the agent and the registry; releases the lock. Idempotent; never rejects. */
  stop(): Promise<void>;
}

/** The cgroup folder of the instances of the cluster kept in `dataDir` (see the file comment). */
export function cgroupGroupFor(dataDir: string): string {
  return `sgrid-up-${crypto.createHash("sha256").update(dataDir).digest("hex").slice(0, 8)}`;
}

function waitConnected(agent: NodeAgent, ms: number): Promise<boolean> {
  if (agent.session.connected) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      agent.session.off("connected", onConnected);
      resolve(false);
    }, ms);
    const onConnected = () => {
      clearTimeout(timer);
      resolve(true);
    };
    agent.session.once("connected", onConnected);
  });
}

/**
 * Starts the cluster, printing each step with `say`. On a failure, whatever
 * was started is stopped again (servants included) before it rejects.
 */
export async function startUp(o: UpOptions, say: (line: string) => void, env: NodeJS.ProcessEnv = process.env): Promise<UpCluster> {
  fs.mkdirSync(o.dataDir, { recursive: true, mode: 0o755 });
  const release = acquireLock(o.dataDir);
  let registry: RegistryServer | undefined;
  let agent: NodeAgent | undefined;
  let admin: AdminServer | undefined;
  let stopping: Promise<void> | undefined;
  const log = getLogger("up");

  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      const step = async (what: string, fn: () => Promise<unknown>) => {
        try {
          await fn();
        } catch (err) {
          log.warn({ err, step: what }, "error while stopping");
          say(`${what} failed: ${(err as Error)?.message ?? String(err)}`);
        }
      };
      if (admin) await step("stopping admin", () => admin!.stop());
      if (agent) {
        const a = agent;
        // The session first, so no new desired state starts anything while the servants stop.
        await step("closing the node session", () => a.session.stop());
        await step("waiting for installs in progress", () => a.idle());
        const running = a.supervisor.observed().filter((s) => s.state !== "inactive").length;
        if (running > 0) say(`stopping ${running} servant instance${running === 1 ? "" : "s"}...`);
        await step("stopping servants", () => a.supervisor.stopAll());
        await step("stopping the node agent", () => a.shutdown());
      }
      if (registry) await step("stopping the registry", () => registry!.stop());
      release();
    })();
    return stopping;
  };

  try {
    say(`data in ${o.dataDir}`);
    const { token, source } = clusterToken(o.dataDir, env);
    say(`cluster token from ${source}`);
    const pw = adminPassword(o.dataDir, env);
    // The admin app and the registry run in this process: a fresh token each run.
    const adminAppToken = crypto.randomBytes(32).toString("hex");
    if (pw.note) say(pw.note);

    const registryDir = path.join(o.dataDir, UP_FILES.registry);
    tuneRegistryHeap();
    registry = new RegistryServer({
      dataDir: registryDir,
      db: `sqlite:${path.join(registryDir, "registry.db")}`,
      listen: formatHostPort(o.host, o.registryPort),
      clusterToken: token,
      adminAppToken,
      adminPassword: pw.password,
      shutdownGraceMs: 2000,
    });
    const addr = await registry.start();
    const registryTarget = `${o.host === "0.0.0.0" || o.host === "::" ? "127.0.0.1" : o.host}:${addr.port}`;
    say(`registry on ${addr.address} (advertised ${addr.advertise}, database ${registry.store.safeUrl})`);

    agent = new NodeAgent({
      registry: [registryTarget],
      name: o.nodeName,
      dataDir: path.join(o.dataDir, UP_FILES.node),
      token,
      ...(o.host === "0.0.0.0" || o.host === "::" ? {} : { address: o.host }),
      cgroups: { groupName: cgroupGroupFor(o.dataDir) },
    });
    await agent.start();
    say(`node agent "${o.nodeName}" started (cgroups: ${agent.supervisor.cgroups.name}, data ${agent.options.dataDir})`);
    const a = agent;
    if (await waitConnected(a, UP_DEFAULTS.connectWaitMs)) say(`node agent "${o.nodeName}" connected to the registry`);
    else say(`node agent "${o.nodeName}" not connected yet; it keeps trying (see the log on stderr)`);
    a.session.on("disconnected", (reason) => {
      if (!stopping) say(`node agent "${o.nodeName}" lost the registry session (${reason}); reconnecting`);
    });
    a.session.on("connected", () => {
      if (!stopping) say(`node agent "${o.nodeName}" connected to the registry`);
    });

    const adminTmp = path.join(o.dataDir, UP_FILES.admin, "tmp");
    fs.mkdirSync(adminTmp, { recursive: true, mode: 0o700 });
    admin = new AdminServer({
      registry: registryTarget,
      listen: formatHostPort(o.host, o.adminPort),
      tmpDir: adminTmp,
      appToken: adminAppToken,
    });
    const { url } = await admin.start();
    say(pw.password !== undefined ? `admin at ${url} user admin password ${pw.password}` : `admin at ${url} user admin`);
    return { registry, agent, admin, adminUrl: url, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export function registerUp(program: Command): void {
  program
    .command("up")
    .description("run an all-in-one local cluster: registry (SQLite), one node agent and the admin app, data in one folder")
    .option("--data-dir <dir>", `where everything is kept [SGRID_DATA_DIR] (default: ${UP_DEFAULTS.dataDir})`)
    .option("--host <addr>", `address the registry and admin listen on and servants bind [SGRID_UP_HOST] (default: ${UP_DEFAULTS.host})`)
    .option("--registry-port <port>", `registry gRPC port, 0 = any free port [SGRID_REGISTRY_PORT] (default: ${UP_DEFAULTS.registryPort})`)
    .option("--admin-port <port>", `admin web app port, 0 = any free port [SGRID_ADMIN_PORT] (default: ${UP_DEFAULTS.adminPort})`)
    .option("--node-name <name>", "the node agent's name [SGRID_NODE_NAME] (default: the host name, else local)")
    .addHelpText("after", [
      "",
      "The first admin password comes from SGRID_ADMIN_PASSWORD, else it is generated; it is kept in",
      "<data-dir>/admin-password (0600) and printed on every start: a local dev cluster, not production.",
      "Ctrl-C stops everything, servants included. Logs (stderr) are at level warn unless SGRID_LOG_LEVEL is set.",
    ].join("\n"))
    .action(async (flags: UpFlags) => {
      if (!process.env.SGRID_LOG_LEVEL) setLogLevel(UP_DEFAULTS.logLevel);
      const options = resolveUpOptions(flags);
      const say = (line: string) => process.stdout.write(`sgrid up: ${line}\n`);
      // Handlers first: a Ctrl-C while starting stops what was started once start() is done.
      const state: { cluster?: UpCluster; stopRequested?: NodeJS.Signals } = {};
      let signals = 0;
      const stopNow = (signal: NodeJS.Signals, c: UpCluster) => {
        say(`${signal}: stopping...`);
        c.stop().then(() => {
          say("stopped.");
          process.exit(0);
        }, () => process.exit(1));
      };
      const onSignal = (signal: NodeJS.Signals) => {
        if (++signals > 1) {
          say(`${signal} again: exiting now; servants may be left running (the next sgrid up re-adopts them)`);
          process.exit(130);
        }
        if (state.cluster) stopNow(signal, state.cluster);
        else {
          state.stopRequested = signal;
          say(`${signal}: stopping as soon as the start is done...`);
        }
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      const cluster = await startUp(options, say);
      state.cluster = cluster;
      if (state.stopRequested) {
        stopNow(state.stopRequested, cluster);
        return;
      }
      say("ready. Ctrl-C stops the cluster and its servants.");
    });
}
