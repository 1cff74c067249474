/**
 * Helpers for the Admin API and task suites: a real RegistryServer (every
 * part, real gRPC) with an AdminProxy logged in as the first admin, users
 * with roles, patches recorded in the store, and SimAgent: a node agent
 * simulated over the real node session (REG-NODE's FakeAgent) that makes
 * instances reach what their desired state says, except those the test
 * holds back.
 */
import crypto from "node:crypto";
import type { CallOptions } from "sgridnext";
import { AdminProxy } from "sgridnext/gen/sgrid/registry/v1/admin.sgrid";
import type { InstanceObserved } from "sgridnext/gen/sgrid/registry/v1/node";
import type { TaskInfo } from "sgridnext/gen/sgrid/registry/v1/admin";
import type { RegistryServerOptions } from "../../../registry/server";
import type { PatchRecord, RegistryStore } from "../../../registry/store";
import { type DialectCase, type TestDatabase, uniq } from "./db";
import { CLUSTER_TOKEN, FakeAgent } from "./node-harness";
import { type TestRegistry, startTestRegistry, waitFor } from "./registry";

export { CLUSTER_TOKEN, uniq, waitFor };
export const ADMIN_PASSWORD = "test-admin-pw";

export interface AdminHarness {
  reg: TestRegistry;
  admin: AdminProxy;
  /** Login token of "admin". */
  token: string;
  /** Call options carrying a token. */
  as(token: string): CallOptions;
  /** Creates a user with the given grants (through the API) and returns its login token. */
  userWith(roles: Array<{ application: string; role: string }>, name?: string): Promise<{ name: string; token: string; password: string }>;
  cleanup(): Promise<void>;
}

export async function startAdminRegistry(d: DialectCase, opts: RegistryServerOptions = {}, existing?: TestDatabase): Promise<AdminHarness> {
  const reg = await startTestRegistry(d, { clusterToken: CLUSTER_TOKEN, adminPassword: ADMIN_PASSWORD, ...opts }, existing);
  const admin = reg.comm.stringToProxy(AdminProxy, reg.target);
  const as = (token: string): CallOptions => ({ metadata: { authorization: `Bearer ${token}` }, timeoutMs: 20_000 });
  const { token } = await admin.login({ user: "admin", password: ADMIN_PASSWORD });
  return {
    reg, admin, token, as,
    async userWith(roles, name = uniq("user")) {
      const password = `pw-${crypto.randomBytes(8).toString("hex")}`;
      await admin.createUser({ name, password, roles }, as(token));
      const login = await admin.login({ user: name, password });
      return { name, token: login.token, password };
    },
    cleanup: () => reg.cleanup(),
  };
}

/** Polls a task until it is over (success, failed or partial). */
export async function finishedTask(h: AdminHarness, id: number, timeoutMs = 30_000): Promise<TaskInfo> {
  return waitFor(`task ${id} to finish`, async () => {
    const t = await h.admin.getTask({ id }, h.as(h.token));
    return ["success", "failed", "partial"].includes(t.status) ? t : undefined;
  }, timeoutMs);
}

/**
 * A server `App<n>.Hello` (GreeterObj, port assigned) on `n` new nodes, one
 * SimAgent each (pushed to `agents` for the caller to close), running version
 * 1, with version 2 uploaded. Instance ids are in node order, so batches
 * follow it.
 */
export async function simCluster(h: AdminHarness, agents: SimAgent[], n: number) {
  const app = uniq("App");
  const nodes: string[] = [];
  const byNode = new Map<string, SimAgent>();
  for (let i = 0; i < n; i++) {
    const node = uniq("node");
    const agent = await connectAgent(h.reg.target, node);
    agents.push(agent);
    nodes.push(node);
    byNode.set(node, agent);
  }
  await h.admin.deploy({ application: app, server: "Hello", type: "node", nodes, adapters: [{ obj: "GreeterObj", host: "", port: 0, protocol: "", weight: 0 }] }, h.as(h.token));
  const v1 = await addPatch(h.reg.server.store, app, "Hello");
  const v2 = await addPatch(h.reg.server.store, app, "Hello");
  const list = (await h.admin.listInstances({ application: app, server: "", node: "" }, h.as(h.token))).instances;
  const ids = nodes.map((node) => list.find((i) => i.node === node)!.id);
  const start = await h.admin.createTask({ kind: "publish", instanceIds: ids, version: v1.version, batchSize: 0, stopOnFailure: false, batchTimeoutS: 0 }, h.as(h.token));
  const done = await finishedTask(h, start.id);
  if (done.status !== "success") throw new Error(`publishing version 1 to ${app}.Hello ended ${done.status}`);
  return {
    app, obj: `${app}.Hello.GreeterObj`, nodes, ids, v1, v2,
    /** The agent of an instance. */
    agentOf: (id: number) => byNode.get(list.find((i) => i.id === id)!.node)!,
    /** The agent of a node. */
    agentOn: (node: string) => byNode.get(node)!,
  };
}

/** Records a patch (no package bytes: the simulated agent never downloads). */
export async function addPatch(store: RegistryStore, application: string, server: string): Promise<PatchRecord> {
  const sha256 = crypto.randomBytes(32).toString("hex");
  return store.patches.create({ application, server, sha256, size: 100, uploader: "admin", storageKey: sha256 });
}

/** Creates an online node through a real session; returns the agent. */
export async function connectAgent(address: string, node: string): Promise<SimAgent> {
  const agent = new SimAgent(address, node);
  await waitFor(`node ${node} to get its desired state`, () => agent.fake.desiredStates().length > 0);
  return agent;
}

/**
 * A node agent that obeys: an instance desired active with a patch is
 * reported active on that version, one desired inactive is reported
 * inactive. Instances in `stuck` stay `activating`; those in `failing` are
 * reported `failed`. Re-evaluates on every desired state and on poke().
 */
export class SimAgent {
  readonly fake: FakeAgent;
  readonly stuck = new Set<number>();
  readonly failing = new Set<number>();
  /** Instances with a greater id than this fail too (instances the registry places itself, such as surges); 0 = none. */
  failAbove = 0;
  /** Instances with a greater id than this are never reported (as while their package downloads); 0 = none. */
  silentAbove = 0;
  /** Instances that crash right after each start: reported active, then activating (restarting), every 150 ms (less than the test registries' 600 ms task settle time). */
  readonly flapping = new Set<number>();
  private flapUp = false;
  private lastFlap = 0;
  /** Every report sent, in order. */
  readonly reports: InstanceObserved[] = [];
  private readonly last = new Map<number, string>();
  private seen = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(address: string, readonly node: string) {
    this.fake = new FakeAgent(address, node, { token: CLUSTER_TOKEN });
    this.timer = setInterval(() => this.react(false), 20);
  }

  /** Re-evaluates now (after changing stuck / failing). */
  poke(): void {
    this.react(true);
  }

  private react(force: boolean): void {
    const states = this.fake.desiredStates();
    if (this.flapping.size > 0 && Date.now() - this.lastFlap >= 150) {
      this.lastFlap = Date.now();
      this.flapUp = !this.flapUp;
      force = true;
    }
    if (states.length === this.seen && !force) return;
    this.seen = states.length;
    const desired = states.at(-1);
    if (!desired) return;
    const out: InstanceObserved[] = [];
    for (const inst of desired.instances) {
      if (this.silentAbove > 0 && inst.instanceId > this.silentAbove) continue;
      let r: InstanceObserved;
      const version = inst.patch?.version ?? 0;
      const base = { instanceId: inst.instanceId, pid: 0, version, restarts: 0, lastExitReason: "", event: "", startedAt: 0, portsInUse: [], eventDetail: "" };
      if (inst.state === "active" && inst.patch) {
        if (this.failing.has(inst.instanceId) || (this.failAbove > 0 && inst.instanceId > this.failAbove)) r = { ...base, state: "failed", lastExitReason: "exit code 3", event: "failed" };
        else if (this.stuck.has(inst.instanceId)) r = { ...base, state: "activating", pid: 4242 };
        else if (this.flapping.has(inst.instanceId)) r = this.flapUp ? { ...base, state: "active", pid: 6000, startedAt: Date.now() } : { ...base, state: "activating", lastExitReason: "exited with code 1" };
        else r = { ...base, state: "active", pid: 5000 + inst.instanceId, startedAt: Date.now() };
      } else {
        r = { ...base, state: "inactive", version: 0 };
      }
      const key = `${r.state}/${r.version}`;
      if (this.last.get(inst.instanceId) === key) continue;
      this.last.set(inst.instanceId, key);
      out.push(r);
    }
    if (out.length === 0) return;
    this.reports.push(...out);
    this.fake.send({ kind: { $case: "observed", value: { instances: out, full: false } } });
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.fake.close();
  }
}

/** The error `p` rejects with (fails when it resolves). */
export async function rejects(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error("expected a rejection");
}
