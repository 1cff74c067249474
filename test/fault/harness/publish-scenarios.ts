/**
 * Publishes, restarts, rollbacks and bad config as fault scenarios (issue 12
 * items 4 and 5), for the fault suite (test/fault/publish.test.ts) and `npm
 * run bench chaos`. The caller calls both Objs throughout; every row must end
 * with 0 failed calls. `Fault.SoloServer` has one instance, so each of its
 * switches goes through a surge (registry/admin/surge.ts).
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { expect } from "chai";
import { Proc } from "../../e2e/helpers/procs";
import { AdminHttp } from "../../e2e/helpers/admin-http";
import { CLI } from "../../helpers/paths";
import { waitFor } from "../../helpers/wait";
import type { FaultCluster } from "./cluster";
import { echoPackage } from "./package";
import { ECHO_SERVER, SOLO_SERVER, type Scenario } from "./scenario";

const NODES = ["node-a", "node-b"];
const [APP, SOLO] = SOLO_SERVER.split(".") as [string, string];

/** Runs `sgrid <args>`; throws with its output unless it exits `code`. */
async function cli(cluster: FaultCluster, args: string[], code = 0, input?: string): Promise<string> {
  const env: Record<string, string> = {};
  let argv = args;
  if (input !== undefined) {
    const file = path.join(cluster.out, `input-${crypto.randomBytes(4).toString("hex")}`);
    fs.writeFileSync(file, input);
    argv = [...args, "--from", file];
  }
  const r = await cluster.cli(argv, env);
  if (r.code !== code) throw new Error(`sgrid ${args.join(" ")} exited ${r.code}, expected ${code}:\n${r.out}`);
  return r.out;
}

/** The id in `task <id>: ...` of a CLI's output. */
function taskId(out: string): number {
  const m = /^task (\d+): /m.exec(out);
  if (!m) throw new Error(`no task id in:\n${out}`);
  return Number(m[1]);
}

async function surgeEvents(cluster: FaultCluster): Promise<number> {
  return (await cluster.admin.listEvents({ kind: "instance.surge", targetPrefix: `${SOLO_SERVER}@`, actor: "", beforeId: 0, afterId: 0, limit: 100 }, cluster.as)).events.length;
}

export const publishBatchOneNodeOffline: Scenario = {
  name: "publish --batch 1, another node offline",
  cluster: { nodes: NODES },
  async run({ cluster, mark, back, note }) {
    mark("node-b agent killed");
    await cluster.killAgent(1);
    await waitFor("node-b offline", async () => (await cluster.listNodes()).find((n) => n.name === "node-b")?.online === false, 30_000, 100);
    mark("publish --batch 1 (node-b offline)");
    const publishing = cluster.publishEcho(ECHO_SERVER, NODES, "EchoObj", "2.0.0", ["--batch", "1", "--batch-timeout", "300"]);
    publishing.catch(() => undefined);
    const waiting = await waitFor("node-a switched and node-b's item waiting for its node", async () => {
      const [t] = (await cluster.admin.listTasks({ application: "Fault", server: "EchoServer", limit: 1, beforeId: 0 }, cluster.as)).tasks;
      const a = t?.items.find((i) => i.node === "node-a");
      const b = t?.items.find((i) => i.node === "node-b");
      return a?.status === "SUCCESS" && b?.status === "RUNNING" && b.reason.includes("offline") ? b.reason : undefined;
    }, 120_000, 200);
    note(`node-b's item while its node was offline: ${waiting}`);
    expect(waiting).to.include('node "node-b" is offline: waiting for it to come back');
    const surges = (await cluster.admin.listEvents({ kind: "instance.surge", targetPrefix: `${ECHO_SERVER}@node-a`, actor: "", beforeId: 0, afterId: 0, limit: 10 }, cluster.as)).events;
    expect(surges, "node-a's instance was the last serving one: it switched with a surge").to.have.length(1);
    mark("node-b agent back");
    await cluster.startAgent(1);
    back();
    const out = await publishing;
    expect(out).to.match(/task \d+ success: 2 succeeded/);
    const versions = (await cluster.instances("Fault", "EchoServer")).map((i) => i.observedVersion);
    expect(versions).to.deep.equal([2, 2]);
  },
};

export const singleInstanceCli: Scenario = {
  name: "one instance: publish, restart, rollback (CLI)",
  cluster: { nodes: NODES },
  async run({ cluster, mark, note }) {
    mark("sgrid publish (one instance)");
    const published = taskId(await cluster.publishEcho(SOLO_SERVER, [NODES[0]!], "SoloObj", "2.0.0"));
    mark("sgrid restart (one instance)");
    await cli(cluster, ["restart", SOLO_SERVER]);
    mark("sgrid rollback (one instance)");
    await cli(cluster, ["rollback", String(published)]);
    const [inst] = await cluster.instances(APP, SOLO);
    expect(inst!.observedVersion).to.equal(1);
    expect((await cluster.instances(APP, SOLO)).length, "surges are gone").to.equal(1);
    const surges = await surgeEvents(cluster);
    expect(surges, "publish, restart and rollback each went through a surge").to.equal(3);
    note(`${surges} surges (publish, restart, rollback); the instance kept port ${inst!.adapters[0]!.port}`);
  },
};

/** `sgrid admin` in front of the cluster's registry, logged in as the admin user. */
async function startAdmin(cluster: FaultCluster): Promise<{ api: AdminHttp; proc: Proc }> {
  const proc = new Proc("admin", process.execPath, [CLI, "admin", "--registry", cluster.registryAddr, "--listen", "127.0.0.1:0"], {
    cwd: cluster.out, env: { SGRID_LOG_LEVEL: "info" }, logFile: path.join(cluster.out, "admin.log"),
  });
  const url = (await proc.waitForLine(/sgrid admin serving on (\S+) /))[1]!;
  const api = new AdminHttp(url);
  await api.login("admin", cluster.adminPassword);
  return { api, proc };
}

export const singleInstanceAdmin: Scenario = {
  name: "one instance: publish, restart, rollback (admin app)",
  cluster: { nodes: NODES },
  async run({ cluster, mark, note }) {
    const { api, proc } = await startAdmin(cluster);
    try {
      const file = await echoPackage(path.join(cluster.out, "packages"), APP, SOLO, "2.0.0");
      const sha256 = crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
      const version = await api.upload(APP, SOLO, file, sha256, "v2 from the admin app");
      const [inst] = await api.instances(APP, SOLO);
      mark("admin: publish (one instance)");
      const published = await api.publish([inst!.id], version, 0);
      await api.waitTask(published.id);
      mark("admin: restart (one instance)");
      const restarted = await api.post<{ id: number }>("/api/tasks", { kind: "restart", instanceIds: [inst!.id] });
      await api.waitTask(restarted.id);
      mark("admin: rollback (one instance)");
      await api.waitTask((await api.rollback(published.id)).id);
      const after = await api.instances(APP, SOLO);
      expect(after.map((i) => i.observedVersion)).to.deep.equal([1]);
      const surges = await surgeEvents(cluster);
      expect(surges).to.equal(3);
      note(`${surges} surges through the admin app's JSON API`);
    } finally {
      await proc.stop(5000).catch(() => undefined);
    }
  },
};

export const badConfigThenRestart: Scenario = {
  name: "config set of bad JSON, then restart",
  cluster: { nodes: NODES },
  async run({ cluster, mark, note }) {
    const scope = ["--app", APP, "--server", SOLO];
    await cli(cluster, ["config", "set", "fault.json", ...scope], 0, '{"greeting": "v1"}\n');
    mark("restart with a good config");
    await cli(cluster, ["restart", SOLO_SERVER]);
    mark("config set of JSON that does not parse");
    const refused = await cli(cluster, ["config", "set", "fault.json", ...scope], 1, '{\n  "greeting": "v2",,\n}\n');
    expect(refused).to.include("not valid JSON: line 2, column 20").and.include("nothing was stored");
    note(`refused: ${refused.trim().split("\n").at(-1)}`);
    mark("restart after the refused set");
    await cli(cluster, ["restart", SOLO_SERVER]);
    mark("levels that do not merge, then restart");
    // Valid JSON, but not an object: the merged view for the instance cannot be built.
    await cli(cluster, ["config", "set", "fault.json", "--app", APP], 0, '["not", "an", "object"]\n');
    await cli(cluster, ["restart", SOLO_SERVER]);
    const events = (await cluster.admin.listEvents({ kind: "config.invalid", targetPrefix: `${SOLO_SERVER}@`, actor: "", beforeId: 0, afterId: 0, limit: 10 }, cluster.as)).events;
    expect(events.length, "the registry logged why the servant runs on its last good copy").to.be.at.least(1);
    note(`servants started on their last good copy; event: ${events[0]!.message}`);
  },
};

export const surgePortTaken: Scenario = {
  name: "one instance: publish, the surge's port taken by another program",
  cluster: { nodes: NODES },
  async run({ cluster, mark, note }) {
    // The port the registry gives the surge next: the lowest of its range not used on node-a.
    const used = new Set<number>();
    for (const [app, server] of [["Fault", "EchoServer"], [APP, SOLO]] as const) {
      for (const i of await cluster.instances(app, server)) if (i.node === NODES[0]) for (const a of i.adapters) used.add(a.port);
    }
    let next = 20000;
    while (used.has(next)) next++;
    const address = cluster.lab.nodes[0]!.address;
    const [cmd, argv] = cluster.lab.wrap(0, process.execPath, ["-e", `require("net").createServer().listen(${next}, ${JSON.stringify(address)}, () => console.log("holding"))`]);
    const holder = new Proc("port holder", cmd, argv, { cwd: cluster.out, logFile: path.join(cluster.out, "port-holder.log") });
    try {
      await holder.waitForLine(/holding/);
      mark(`publish (port ${next} on node-a held by another program)`);
      await cluster.publishEcho(SOLO_SERVER, [NODES[0]!], "SoloObj", "2.0.0");
      const moved = (await cluster.admin.listEvents({ kind: "instance.port_moved", targetPrefix: `${SOLO_SERVER}@`, actor: "", beforeId: 0, afterId: 0, limit: 10 }, cluster.as)).events;
      expect(moved.length, "the surge was moved off the taken port").to.equal(1);
      expect(moved[0]!.message).to.include(`moved SoloObj from port ${next} to `);
      const taken = (await cluster.admin.listEvents({ kind: "instance.port_in_use", targetPrefix: `${SOLO_SERVER}@`, actor: "", beforeId: 0, afterId: 0, limit: 10 }, cluster.as)).events;
      note(`agent: ${taken[0]?.message ?? "(no event)"}`);
      note(`registry: ${moved[0]!.message}`);
      expect((await cluster.instances(APP, SOLO)).map((i) => i.observedVersion)).to.deep.equal([2]);
    } finally {
      await holder.stop(2000).catch(() => undefined);
    }
  },
};

/** Every scenario of this file, in the order the bench runs them. */
export const PUBLISH_SCENARIOS: Scenario[] = [publishBatchOneNodeOffline, singleInstanceCli, singleInstanceAdmin, badConfigThenRestart, surgePortTaken];
