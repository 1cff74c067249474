/**
 * The store's parts that the node session adds: instances' launch options
 * (migration 0002) and the command relay table (migration 0003). Runs once
 * per dialect.
 */
import { expect } from "chai";
import { InvalidArgumentError } from "sgridnext";
import type { KnexStore } from "../../registry/store";
import { type DialectCase, forEachDialect, freshStore, rejects, uniq } from "./helpers/db";

forEachDialect("registry store: launch options and the command relay table", (d: DialectCase) => {
  let store: KnexStore;
  let cleanup: () => Promise<void>;
  before(async () => ({ store, cleanup } = await freshStore(d)));
  after(async () => cleanup?.());

  async function setup(): Promise<{ app: string; node: string }> {
    const app = uniq("App");
    const node = uniq("n");
    await store.nodes.upsert({ name: node, address: "10.0.0.1", agentVersion: "1" });
    await store.servers.create({ application: app, name: "Hello", type: "java" });
    return { app, node };
  }

  it("stores launch options on create and updateSpec, `{}` when none were given", async () => {
    const { app, node } = await setup();
    const launch = { args: ["--port", "10000"], jvmOptions: ["-Xmx256m"], nodeOptions: [], entry: "bin/app.jar", runAsUser: "svc_user", stopSignal: "SIGINT", stopGraceMs: 5000, keepaliveTimeoutMs: 0 };
    const inst = await store.instances.create({ application: app, server: "Hello", node, adapters: [], launch });
    // Empty lists are dropped (they mean the default); zero times are kept.
    expect(inst.launch).to.deep.equal({ args: ["--port", "10000"], jvmOptions: ["-Xmx256m"], entry: "bin/app.jar", runAsUser: "svc_user", stopSignal: "SIGINT", stopGraceMs: 5000, keepaliveTimeoutMs: 0 });
    expect((await store.instances.get(inst.id)).launch).to.deep.equal(inst.launch);
    const updated = await store.instances.updateSpec(inst.id, { launch: { args: ["a b", "$(rm -rf /)"] } });
    expect(updated.launch).to.deep.equal({ args: ["a b", "$(rm -rf /)"] });
    await store.servers.create({ application: app, name: "Other", type: "binary" });
    const plain = await store.instances.create({ application: app, server: "Other", node, adapters: [] });
    expect(plain.launch).to.deep.equal({});
  });

  it("refuses bad launch options with INVALID_ARGUMENT naming the key, and changes nothing", async () => {
    const { app, node } = await setup();
    const inst = await store.instances.create({ application: app, server: "Hello", node, adapters: [], launch: { args: ["x"] } });
    const bad: Array<[unknown, string]> = [
      [{ entry: "../outside.jar" }, "launch.entry"],
      [{ entry: "/abs/app.jar" }, "launch.entry"],
      [{ entry: "a\\b" }, "launch.entry"],
      [{ args: "--port 1" }, "launch.args"],
      [{ args: [1] }, "launch.args[0]"],
      [{ runAsUser: "root; rm" }, "launch.runAsUser"],
      [{ stopSignal: "TERM" }, "launch.stopSignal"],
      [{ stopGraceMs: -1 }, "launch.stopGraceMs"],
      [{ keepaliveTimeoutMs: 1e12 }, "launch.keepaliveTimeoutMs"],
      [{ shell: "sh -c" }, `unknown key "shell"`],
      [["x"], "launch options"],
    ];
    for (const [launch, named] of bad) {
      const err = await rejects(store.instances.updateSpec(inst.id, { launch: launch as never }));
      expect(err, JSON.stringify(launch)).to.be.instanceOf(InvalidArgumentError);
      expect(err.message).to.contain(named);
    }
    expect((await store.instances.get(inst.id)).launch).to.deep.equal({ args: ["x"] });
    const err = await rejects(store.instances.create({ application: app, server: "Hello", node: uniq("nx"), adapters: [], launch: { entry: ".." } }));
    expect(err).to.be.instanceOf(Error);
  });

  it("relays commands: enqueue, one claimer wins, complete, find, remove, prune", async () => {
    const node = uniq("n");
    const c1 = await store.commands.enqueue({ instanceId: 7, node, command: "sgrid.loadconfig", args: "a.conf", timeoutMs: 60_000, sender: "reg-a" });
    expect(c1).to.include({ instanceId: 7, node, command: "sgrid.loadconfig", args: "a.conf", status: "pending", sender: "reg-a", owner: null, ok: null });
    expect(c1.expiresAt - c1.createdAt).to.equal(60_000);
    // Other nodes' commands are not claimed.
    expect(await store.commands.claim(new Set(["someone-else"]), "reg-b")).to.deep.equal([]);
    const [x, y] = await Promise.all([store.commands.claim(new Set([node]), "reg-b"), store.commands.claim(new Set([node]), "reg-c")]);
    const won = [...x, ...y];
    expect(won.map((c) => c.id)).to.deep.equal([c1.id]);
    expect(won[0]!.status).to.equal("taken");
    expect(await store.commands.claim(new Set([node]), "reg-b")).to.deep.equal([]);
    await store.commands.complete(c1.id, { ok: false, error: "boom", errorCode: "COMMAND_FAILED" });
    expect(await store.commands.find(c1.id)).to.include({ status: "done", ok: false, error: "boom", errorCode: "COMMAND_FAILED" });
    await store.commands.remove(c1.id);
    expect(await store.commands.find(c1.id)).to.equal(undefined);
    // Expired commands are neither claimed nor kept.
    const c2 = await store.commands.enqueue({ instanceId: 8, node, command: "x", args: "", timeoutMs: 1, sender: "reg-a" });
    await new Promise((r) => setTimeout(r, 10));
    expect(await store.commands.claim(new Set([node]), "reg-b")).to.deep.equal([]);
    expect(await store.commands.prune(Date.now())).to.be.at.least(1);
    expect(await store.commands.find(c2.id)).to.equal(undefined);
    expect(await rejects(store.commands.enqueue({ instanceId: 8, node: "a/b", command: "x", args: "", timeoutMs: 1, sender: "r" }))).to.be.instanceOf(InvalidArgumentError);
    expect(await rejects(store.commands.enqueue({ instanceId: 8, node, command: "", args: "", timeoutMs: 1, sender: "r" }))).to.be.instanceOf(InvalidArgumentError);
  });
});
