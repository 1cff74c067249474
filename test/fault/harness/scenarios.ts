/**
 * The control plane's faults (issue 12's table), as scenarios for the fault
 * suite and `npm run bench chaos`. Timeouts are the registry's flags: a
 * heartbeat every 500 ms, a node silent for 3 s is offline, so every outage
 * here is longer than the heartbeat timeout.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Scenario } from "./scenario";

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
    await cluster.startRegistry();
    back();
  },
};

export const agentKillQuick: Scenario = {
  name: "agent kill -9, restarted after 1 s",
  cluster: { nodes: NODES },
  async run({ cluster, mark, back }) {
    mark("agent down");
    await cluster.killAgent(0);
    await hold(1_000);
    mark("agent back");
    await cluster.startAgent(0);
    back();
  },
};

export const agentKillLong: Scenario = {
  name: "agent kill -9, back after 10 s (> timeout)",
  cluster: { nodes: NODES },
  async run({ cluster, mark, back }) {
    mark("agent down");
    await cluster.killAgent(0);
    await hold(10_000);
    mark("agent back");
    await cluster.startAgent(0);
    back();
  },
};

/** Every scenario of this file, in the order the bench runs them. */
export const CONTROL_PLANE_SCENARIOS: Scenario[] = [noFault, registryKill, agentKillQuick, agentKillLong];
