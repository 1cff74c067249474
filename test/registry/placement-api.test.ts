/**
 * Placement through the Admin API against a real registry (SQLite always,
 * MySQL when SGRID_TEST_MYSQL_URL is set), its reconciler running: Deploy by
 * a query with a count, a query that does not parse (nothing stored), a
 * query that matches no node (the reason, nothing placed, then placed when
 * a matching node joins), a lost node's instance placed elsewhere, node
 * tags people set winning over the agent's, and who may set them.
 */
import { expect } from "chai";
import { InvalidArgumentError, PermissionDeniedError } from "sgridnext";
import { type DialectCase, forEachDialect } from "./helpers/db";
import { type AdminHarness, rejects, startAdminRegistry, uniq, waitFor } from "./helpers/admin-harness";

const GiB = 1024 ** 3;

forEachDialect("registry placement by node tags", (d: DialectCase) => {
  let h: AdminHarness;
  before(async () => {
    h = await startAdminRegistry(d, { placementGraceMs: 1000 });
  });
  after(async () => {
    await h?.cleanup();
  });

  async function addNode(tags: string[], cpus = 4): Promise<string> {
    const name = uniq("pnode");
    await h.reg.server.store.nodes.upsert({
      name, address: "10.7.0.1:9600", agentVersion: "test", tags,
      hostInfo: { cpuCount: cpus, cpuAvailable: cpus, memory: { totalBytes: 8 * GiB }, platform: "linux", arch: "x64" },
    });
    return name;
  }

  const adapters = [{ obj: "EchoObj", host: "", port: 0, protocol: "", weight: 0 }];
  const servers = async (app: string) => (await h.admin.listServers({ application: app }, h.as(h.token))).servers;
  const instances = async (app: string) => (await h.admin.listInstances({ application: app, server: "", node: "" }, h.as(h.token))).instances;

  it("places count instances on nodes the query matches, one per node, and shows the status", async () => {
    const tag = uniq("t");
    const [a, b] = [await addNode([tag, "zone=a"], 8), await addNode([tag, "zone=b"], 8)];
    await addNode([tag], 2);
    await addNode(["other"], 16);
    const app = uniq("Pl");
    const reply = await h.admin.deploy({ application: app, server: "Echo", type: "node", adapters, place: `tags:${tag} AND cpus>4`, count: 2 }, h.as(h.token));
    expect(reply.instances.map((i) => i.node).sort()).to.deep.equal([a, b].sort());
    expect(new Set(reply.instances.map((i) => i.adapters[0]!.port)).size).to.be.greaterThan(0);
    expect(reply.server!.placement).to.deep.include({ query: `tags:${tag} AND cpus>4`, count: 2, placed: 2, state: "placed", reasons: [] });
    expect(reply.server!.placement!.matching.sort()).to.deep.equal([a, b].sort());
    const [s] = await servers(app);
    expect(s!.placement!.placed).to.equal(2);
    expect(s!.instanceCount).to.equal(2);
  });

  it("refuses a query that does not parse with the column, and stores nothing", async () => {
    const app = uniq("Bad");
    const err = await rejects(h.admin.deploy({ application: app, server: "Echo", type: "node", adapters, place: "tags:ssd AND (cpus>4 OR", count: 2 }, h.as(h.token)));
    expect(err).to.be.instanceOf(InvalidArgumentError);
    expect(err.message).to.contain("at column 24").and.contain("expected a term");
    expect((err as InvalidArgumentError).data).to.deep.include({ column: 24 });
    expect(await servers(app)).to.deep.equal([]);
    const both = await rejects(h.admin.deploy({ application: app, server: "Echo", type: "node", adapters, nodes: ["x"], place: "tags:ssd", count: 1 }, h.as(h.token)));
    expect(both.message).to.contain("not both");
    expect(await servers(app)).to.deep.equal([]);
  });

  it("says why when no node matches, places nothing, and places once a matching node joins", async () => {
    const tag = uniq("gpu");
    const app = uniq("None");
    const reply = await h.admin.deploy({ application: app, server: "Echo", type: "node", adapters, place: `tags:${tag}`, count: 1 }, h.as(h.token));
    expect(reply.instances).to.deep.equal([]);
    expect(reply.server!.placement).to.deep.include({ placed: 0, state: "no_match" });
    expect(reply.server!.placement!.reasons[0]).to.contain(`no node matches tags:${tag}`);
    expect(await instances(app)).to.deep.equal([]);
    const n = await addNode([tag]);
    const placed = await waitFor("placed on the new node", async () => {
      const list = await instances(app);
      return list.length === 1 ? list : undefined;
    });
    expect(placed[0]!.node).to.equal(n);
    expect((await servers(app))[0]!.placement).to.deep.include({ placed: 1, state: "placed" });
  });

  it("places a lost node's instance on another matching node and removes it from the lost one", async () => {
    const tag = uniq("lost");
    const [a, b] = [await addNode([tag]), await addNode([tag])];
    const app = uniq("Lost");
    const reply = await h.admin.deploy({ application: app, server: "Echo", type: "node", adapters, place: `tags:${tag}`, count: 1 }, h.as(h.token));
    const first = reply.instances[0]!.node;
    const other = first === a ? b : a;
    await h.reg.server.store.nodes.heartbeat(first, Date.now() - 10_000);
    await h.reg.server.store.nodes.setOnline(first, false);
    const moved = await waitFor("moved to the other node", async () => {
      const list = await instances(app);
      return list.length === 1 && list[0]!.node === other ? list : undefined;
    });
    expect(moved[0]!.node).to.equal(other);
    const events = (await h.admin.listEvents({ kind: "instance.unplace", targetPrefix: `${app}.`, actor: "", beforeId: 0, afterId: 0, limit: 10 }, h.as(h.token))).events;
    expect(events[0]!.message).to.contain(`removed from ${first}`).and.contain("offline for more than 1 s");
  });

  it("says not enough matching nodes when the count is more than the nodes that match", async () => {
    const tag = uniq("few");
    await addNode([tag]);
    const app = uniq("Few");
    const reply = await h.admin.deploy({ application: app, server: "Echo", type: "node", adapters, place: `tags:${tag}`, count: 3 }, h.as(h.token));
    expect(reply.instances).to.have.length(1);
    expect(reply.server!.placement).to.deep.include({ placed: 1, count: 3, state: "short" });
    expect(reply.server!.placement!.reasons[0]).to.contain("not enough matching nodes: 3 wanted, 1 possible");
  });

  it("lets people's tags win over the agent's, hides agent tags on request, and keeps them across hellos", async () => {
    const n = await addNode(["ssd", "zone=a"]);
    const set = await h.admin.setNodeTags({ node: n, tags: ["zone=b", "rack=r1"], unset: ["ssd"] }, h.as(h.token));
    expect(set.tags).to.deep.equal(["rack=r1", "zone=b"]);
    expect(set.agentTags).to.deep.equal(["ssd", "zone=a"]);
    expect(set.adminTags).to.deep.equal(["rack=r1", "zone=b"]);
    expect(set.adminUnset).to.deep.equal(["ssd"]);
    await h.reg.server.store.nodes.upsert({ name: n, address: "10.7.0.1:9600", agentVersion: "test", tags: ["ssd", "zone=c", "new"] });
    const listed = (await h.admin.listNodes({}, h.as(h.token))).nodes.find((x) => x.name === n)!;
    expect(listed.tags).to.deep.equal(["new", "rack=r1", "zone=b"]);
    const bad = await rejects(h.admin.setNodeTags({ node: n, tags: ["bad tag"], unset: [] }, h.as(h.token)));
    expect(bad).to.be.instanceOf(InvalidArgumentError);
    expect(bad.message).to.contain("invalid tag key");
    const both = await rejects(h.admin.setNodeTags({ node: n, tags: ["zone=x"], unset: ["zone"] }, h.as(h.token)));
    expect(both.message).to.contain("both set and unset");
    expect((await h.admin.listNodes({}, h.as(h.token))).nodes.find((x) => x.name === n)!.tags).to.deep.equal(["new", "rack=r1", "zone=b"]);
    const viewer = await h.userWith([{ application: "*", role: "viewer" }]);
    expect(await rejects(h.admin.setNodeTags({ node: n, tags: [], unset: [] }, h.as(viewer.token)))).to.be.instanceOf(PermissionDeniedError);
    const operator = await h.userWith([{ application: uniq("App"), role: "operator" }]);
    expect((await h.admin.setNodeTags({ node: n, tags: [], unset: [] }, h.as(operator.token))).tags).to.deep.equal(["new", "ssd", "zone=c"]);
  });

  it("keeps the count exactly with two registry processes reconciling one database", async () => {
    const second = await startAdminRegistry(d, { placementGraceMs: 1000, processId: "second" }, h.reg.db);
    try {
      const tag = uniq("two");
      const nodes = [await addNode([tag]), await addNode([tag]), await addNode([tag])];
      const app = uniq("Two");
      // Deployed through the second registry, with both reconcilers waking on the change.
      await second.admin.deploy({ application: app, server: "Echo", type: "node", adapters, place: `tags:${tag}`, count: 2 }, second.as(second.token));
      const first = (await instances(app)).map((i) => i.node);
      expect(first).to.have.length(2);
      const lost = first[0]!;
      await h.reg.server.store.nodes.heartbeat(lost, Date.now() - 10_000);
      await h.reg.server.store.nodes.setOnline(lost, false);
      const spare = nodes.find((n) => !first.includes(n))!;
      await waitFor("replaced on the spare node", async () => {
        const list = (await instances(app)).map((i) => i.node).sort();
        return list.length === 2 && list.includes(spare) && !list.includes(lost) ? list : undefined;
      });
      // Several more passes of both processes change nothing: never three, never a second one per node.
      for (let k = 0; k < 3; k++) {
        await Promise.all([h.reg.server.part<any>("admin")!.placements.reconcile((await h.reg.server.store.placements.find(app, "Echo"))!.id),
          second.reg.server.part<any>("admin")!.placements.reconcile((await second.reg.server.store.placements.find(app, "Echo"))!.id)]);
      }
      expect((await instances(app)).map((i) => i.node).sort()).to.deep.equal([first[1]!, spare].sort());
    } finally {
      second.reg.comm.close();
      await second.reg.server.stop();
    }
  });

  it("moves an instance off a node whose tags stop matching once its replacement serves", async () => {
    const tag = uniq("mv");
    const [a, b] = [await addNode([tag]), await addNode([])];
    const app = uniq("Move");
    await h.admin.deploy({ application: app, server: "Echo", type: "node", adapters, place: `tags:${tag}`, count: 1 }, h.as(h.token));
    expect((await instances(app)).map((i) => i.node)).to.deep.equal([a]);
    await h.admin.setNodeTags({ node: b, tags: [tag], unset: [] }, h.as(h.token));
    await h.admin.setNodeTags({ node: a, tags: [], unset: [tag] }, h.as(h.token));
    const both = await waitFor("a replacement on b", async () => {
      const list = await instances(app);
      return list.length === 2 ? list : undefined;
    });
    expect(both.map((i) => i.node).sort()).to.deep.equal([a, b].sort());
    const [s] = await servers(app);
    expect(s!.placement!.reasons.join(" ")).to.contain("is kept until the others serve");
    const onB = both.find((i) => i.node === b)!;
    await h.reg.server.store.instances.reportObserved(onB.id, { state: "active", pid: 1 });
    const left = await waitFor("the instance on a removed", async () => {
      const list = await instances(app);
      return list.length === 1 ? list : undefined;
    });
    expect(left[0]!.node).to.equal(b);
  });
});
