/**
 * The control plane's faults (issue 12's table), as scenarios for the fault
 * suite and `npm run bench chaos`. Timeouts are the registry's flags: a
 * heartbeat every 500 ms, a node silent for 6 s is offline (FaultCluster's
 * defaults), so every outage here is longer than the heartbeat timeout.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { processesUnder } from "../../e2e/helpers/procs";
import { outputDir } from "../../helpers/paths";
import { waitFor } from "../../helpers/wait";
import type { FaultCluster } from "./cluster";
import { lockSqlite, OwnMariaDb } from "./databases";
import type { Scenario, ScenarioContext } from "./scenario";

const NODES = ["node-a", "node-b"];

/** Lets the caller call through a fault for `ms` (the fault's own length: a real duration, not a wait for a condition). */
const hold = (ms: number): Promise<void> => sleep(ms);

/** The baseline: the same cluster and caller with no fault (the harness's own check). */
export const noFault: Scenario = {
  name: "no fault (baseline)",
  cluster: { nodes: NODES },
  async run({ mark }) {
    mark("steady");
    await hold(3_000);
  },
};

export const registryKill: Scenario = {
  name: "registry kill -9, 20 s down, back",
  cluster: { nodes: NODES },
  async run({ cluster, mark, back }) {
    mark("registry down");
    await cluster.killRegistry();
    await hold(20_000);
    mark("registry back");
    back();
    await cluster.startRegistry();
  },
  // Started again long after the heartbeat timeout: the start-up grace kept the nodes online.
  verify: noNodeMarkedOffline,
};

/**
 * kill -9 of node-a's agent (its servants keep running), started again after
 * `awayMs`; `offline` says whether the registry must have marked node-a
 * offline meanwhile (away longer than the heartbeat timeout: SoloObj's only
 * endpoint was then a suspect one, called as the proxies' fallback).
 */
function agentKill(name: string, awayMs: number, offline: boolean): Scenario {
  return {
    name,
    cluster: { nodes: NODES },
    async run({ cluster, mark, back }) {
      mark("agent down");
      await cluster.killAgent(0);
      await hold(awayMs);
      mark("agent back");
      back();
      await cluster.startAgent(0);
    },
    async verify({ cluster, note }) {
      const events = await offlineEvents(cluster);
      if (offline && events.length === 0) throw new Error(`node-a was away ${awayMs} ms but never marked offline: the fallback was not exercised`);
      if (!offline && events.length > 0) throw new Error(`a node was marked offline: ${events.join("; ")}`);
      note(offline ? `node-a was marked offline meanwhile (${events.length} node.offline event): calls went on to its servants as suspect endpoints` : "no node was marked offline");
    },
  };
}

export const agentKillQuick = agentKill("agent kill -9, restarted after 1 s", 1_000, false);
export const agentKillLong = agentKill("agent kill -9, back after 10 s (> timeout)", 10_000, true);

export const duplicateNodeName: Scenario = {
  name: "a second agent with a node name in session",
  cluster: { nodes: NODES },
  async run({ cluster, mark, note }) {
    const before = (await cluster.listNodes()).find((n) => n.name === NODES[0])!;
    mark("second agent refused");
    // In node-b's namespace, under node-a's name, with a data directory of its own.
    const second = cluster.startExtraAgent(1, NODES[0]!, "second agent named node-a");
    const refusal = await waitFor("the second agent to be refused", () => /sgrid node: the registry refused this agent: (.*)/.exec(second.stderr), 30_000, 50);
    note(`the second agent was told: ${refusal[1]}`);
    if (!refusal[1]!.includes(`node name "${NODES[0]}" is in use`)) throw new Error(`the refusal does not name the node: ${refusal[1]}`);
    // It keeps trying (the first might go away) for several reconnect delays, and is refused each time.
    await hold(8_000);
    const after = (await cluster.listNodes()).find((n) => n.name === NODES[0])!;
    if (after.address !== before.address || !after.online) throw new Error(`node-a changed: ${JSON.stringify(before)} -> ${JSON.stringify(after)}`);
    const events = (await cluster.admin.listEvents({ kind: "node.online", targetPrefix: NODES[0]!, limit: 100 }, cluster.as)).events.filter((e) => e.target === NODES[0]);
    if (events.length !== 1) throw new Error(`node-a came online ${events.length} times (expected once): ${events.map((e) => e.message).join("; ")}`);
    const dir = path.join(cluster.out, `extra-0-${NODES[0]}`);
    const servants = processesUnder(dir);
    if (servants.length > 0 || fs.existsSync(path.join(dir, "servers"))) throw new Error(`the second agent started servants: pids ${servants.join(", ")}`);
    note(`node-a kept its session (${after.address}, one node.online event); the second agent started no servant`);
    second.signal("SIGKILL");
    await second.exited;
  },
};

/** Events `node.offline` the registry logged (a node marked offline). */
async function offlineEvents(cluster: FaultCluster): Promise<string[]> {
  return (await cluster.admin.listEvents({ kind: "node.offline", limit: 100 }, cluster.as)).events.map((e) => e.message);
}

/** Waits until the registry records heartbeats of every node again (it writes to its database): the end of a database outage's recovery. */
async function heartbeatsRecorded(cluster: FaultCluster, since: number): Promise<void> {
  await waitFor("every node's heartbeat recorded again", async () => {
    const nodes = await cluster.listNodes();
    return cluster.nodes.every((n) => Number(nodes.find((x) => x.name === n)?.lastHeartbeatAt ?? 0) >= since);
  }, 60_000, 100);
}

/** Past a heartbeat timeout and a second after the return (the sweep has judged the nodes by then), no node.offline event. */
async function noNodeMarkedOffline({ cluster, note }: ScenarioContext): Promise<void> {
  await hold(cluster.heartbeatTimeoutMs + 1_000);
  const offline = await offlineEvents(cluster);
  if (offline.length > 0) throw new Error(`nodes were marked offline: ${offline.join("; ")}`);
  note("no node was marked offline");
}

/** The database away for 10 s (over three heartbeat timeouts), the registry never restarted. */
const DB_OUTAGE_MS = 10_000;

export const sqliteDown: Scenario = {
  name: "database down 10 s, back (SQLite locked)",
  cluster: { nodes: NODES },
  async run({ cluster, mark, back }) {
    mark("database locked");
    const lock = await lockSqlite(cluster.sqliteFile!, cluster.out);
    await hold(DB_OUTAGE_MS);
    mark("database back");
    await lock.release();
    back();
    await heartbeatsRecorded(cluster, Date.now());
  },
  verify: noNodeMarkedOffline,
};

/** The same with MariaDB: a mariadbd of the scenario's own, stopped and started again. */
export function mariadbDown(): Scenario {
  let db: OwnMariaDb | undefined;
  return {
    name: "database down 10 s, back (MariaDB stopped)",
    cluster: { nodes: NODES },
    async prepare() {
      db = await OwnMariaDb.create(outputDir("fault-mariadb"));
      return { db: db.url("sgrid_fault"), cleanup: async () => db?.destroy() };
    },
    async run({ cluster, mark, back }) {
      mark("mariadbd stopped");
      await db!.stop();
      await hold(DB_OUTAGE_MS);
      mark("mariadbd back");
      back();
      const started = Date.now();
      await db!.start();
      await heartbeatsRecorded(cluster, started);
    },
    verify: noNodeMarkedOffline,
  };
}

/** Every scenario of this file, in the order the bench runs them. */
export const CONTROL_PLANE_SCENARIOS: Scenario[] = [noFault, registryKill, agentKillQuick, agentKillLong, duplicateNodeName, sqliteDown, mariadbDown()];
