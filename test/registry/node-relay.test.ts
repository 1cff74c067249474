/**
 * Several registry processes, one database, from the node session's side:
 * an agent holds its session on registry A; an admin command sent through
 * registry B reaches it (through the commands table) and B gets the reply;
 * a desired-state change written through B reaches the agent on A. Runs on
 * MySQL (the multi-registry production setup) when SGRID_TEST_MYSQL_URL is
 * set, and on SQLite (two pools on one file) always.
 */
import { expect } from "chai";
import { DeadlineExceededError, UnavailableError } from "sgridnext";
import { CommandFailedError } from "../../registry/node";
import { type DialectCase, forEachDialect } from "./helpers/db";
import { FakeAgent, type NodeRegistry, startNodeRegistry, waitFor } from "./helpers/node-harness";

let seq = 0;
function uniq(prefix: string): string {
  return `${prefix}${process.pid}r${++seq}`;
}

async function rejects(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected a rejection");
}

forEachDialect("registry node sessions across registry processes", (d: DialectCase) => {
  let a: NodeRegistry;
  let b: NodeRegistry;
  let drop: () => Promise<void>;
  const agents: FakeAgent[] = [];

  before(async function () {
    this.timeout(120_000);
    const db = await d.create();
    drop = () => db.drop();
    [a, b] = await Promise.all([
      startNodeRegistry(db.url, { processId: "reg-a" }),
      startNodeRegistry(db.url, { processId: "reg-b" }),
    ]);
  });
  afterEach(async () => {
    await Promise.all(agents.splice(0).map((x) => x.close()));
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await drop?.();
  });

  async function setup(): Promise<{ node: string; app: string; instanceId: number; agent: FakeAgent }> {
    const node = uniq("n-");
    const app = uniq("App");
    const agent = new FakeAgent(a.address, node);
    agents.push(agent);
    await waitFor("the session on A", () => agent.lastDesired());
    await b.store.servers.create({ application: app, name: "Hello", type: "node" });
    const inst = await b.store.instances.create({ application: app, server: "Hello", node, adapters: [{ obj: "GreeterObj", host: "0.0.0.0", port: 21000 + seq }] });
    await waitFor("the placement on the agent", () => agent.lastDesired()?.instances.length === 1);
    return { node, app, instanceId: inst.id, agent };
  }

  it("delivers a command sent through registry B to the agent held by registry A, and B gets the reply", async () => {
    const { node, instanceId, agent } = await setup();
    expect(a.hub.localNodes()).to.include(node);
    expect(b.hub.localNodes()).to.not.include(node);
    agent.onCommand = (cmd) => cmd.command === "sgrid.loadconfig" ? { ok: true, output: `loaded ${cmd.args}` } : { ok: false, error: "no such command" };
    const relayedBefore = b.hub.stats.commandsRelayed;
    expect(await b.hub.sendCommand(instanceId, "sgrid.loadconfig", "db.conf", 5000)).to.equal("loaded db.conf");
    expect(b.hub.stats.commandsRelayed).to.equal(relayedBefore + 1);
    const err = await rejects(b.hub.sendCommand(instanceId, "custom.x", "", 5000));
    expect(err).to.be.instanceOf(CommandFailedError);
    expect(err.message).to.contain("no such command");
    // The relay table is left empty.
    expect(await b.store.commands.claim(new Set([node]), "probe")).to.deep.equal([]);
  });

  it("returns DEADLINE_EXCEEDED when the agent held by A does not answer in time", async () => {
    const { node, instanceId, agent } = await setup();
    agent.onCommand = () => undefined;
    const err = await rejects(b.hub.sendCommand(instanceId, "sgrid.viewstatus", "", 800));
    expect(err).to.be.instanceOf(DeadlineExceededError);
    expect(err.message).to.contain(`"${node}"`).and.contain("no reply");
  });

  it("returns DEADLINE_EXCEEDED naming the cause when no registry holds an online node's session", async () => {
    const node = uniq("orphan-");
    const app = uniq("App");
    await b.store.nodes.upsert({ name: node, address: "127.0.0.1", agentVersion: "1" });
    await b.store.servers.create({ application: app, name: "Hello", type: "node" });
    const inst = await b.store.instances.create({ application: app, server: "Hello", node, adapters: [] });
    const err = await rejects(b.hub.sendCommand(inst.id, "sgrid.viewstatus", "", 600));
    expect(err).to.be.instanceOf(DeadlineExceededError);
    expect(err.message).to.contain("no registry process holding its session picked it up");
    await b.store.nodes.setOnline(node, false);
    expect(await rejects(b.hub.sendCommand(inst.id, "sgrid.viewstatus", "", 600))).to.be.instanceOf(UnavailableError);
  });

  it("pushes a desired change written through B (a publish step) to the agent connected to A", async () => {
    const { instanceId, agent, app } = await setup();
    const patch = await b.store.patches.create({ application: app, server: "Hello", sha256: "b".repeat(64), size: 10, uploader: "t", storageKey: "b".repeat(64) });
    await b.store.instances.setDesired(instanceId, { state: "active", patchId: patch.id });
    const got = await waitFor("the new desired state on A's agent", () => {
      const i = agent.lastDesired()?.instances[0];
      return i?.state === "active" && i.patch?.id === patch.id && i;
    });
    expect(got.patch).to.deep.equal({ id: patch.id, version: 1, sha256: "b".repeat(64), size: 10 });
  });
});
