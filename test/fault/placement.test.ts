/**
 * Issue 17, item 2: placement by node tags keeps its count when a node goes
 * away. A real cluster (test/fault/harness): `sgrid registry` with a short
 * placement grace, three `sgrid node --tag ...` agents in their own network
 * namespaces, the fault servant published with `sgrid publish`, the CLI for
 * everything a person would type. Bad input: a query that does not parse
 * (the column in the message, nothing stored) and a query that matches no
 * node (the reason printed, nothing placed).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { expect } from "chai";
import { waitFor } from "../helpers/wait";
import { FaultCluster } from "./harness/cluster";
import { echoPackage } from "./harness/package";

const NODES = ["pa", "pb", "pc"];

describe("fault suite: placement by node tags keeps its count @slow", function () {
  this.timeout(300_000);
  let c: FaultCluster;
  before(async function () {
    this.timeout(180_000);
    c = await FaultCluster.start({
      name: "placement", nodes: NODES, nodeTags: [["ssd", "zone=a"], ["ssd", "zone=b"], ["ssd", "zone=c"]], registryArgs: ["--placement-grace", "2s"],
    });
  });
  after(async () => {
    await c?.stop();
  });

  it("lists the agents' tags in sgrid nodes", async () => {
    const r = await c.cli(["nodes"]);
    expect(r.code, r.out).to.equal(0);
    for (const [i, n] of NODES.entries()) expect(r.out).to.match(new RegExp(`^${n}\\tonline\\t.*\\tssd,zone=${"abc"[i]}$`, "m"));
  });

  it("refuses a query that does not parse, pointing at the column, and stores nothing", async () => {
    const r = await c.cli(["deploy", "Place.Bad", "--type", "node", "--obj", "EchoObj", "--place", "tags:ssd AND (cpus>1 OR", "--count", "2"]);
    expect(r.code, r.out).to.not.equal(0);
    expect(r.out).to.contain("at column 24").and.contain("expected a term");
    const servers = await c.cli(["servers", "Place"]);
    expect(servers.out).to.not.contain("Place.Bad");
  });

  it("says no node matches, places nothing, and keeps saying so in sgrid servers", async () => {
    const r = await c.cli(["deploy", "Place.Gpu", "--type", "node", "--obj", "EchoObj", "--place", "tags:gpu", "--count", "2"]);
    expect(r.code, r.out).to.equal(1);
    expect(r.out).to.contain("0 placed (no match)").and.contain("why: no node matches tags:gpu (3 node(s) known)");
    expect(await c.instances("Place", "Gpu")).to.deep.equal([]);
    const servers = await c.cli(["servers", "Place"]);
    expect(servers.out).to.contain("Place.Gpu").and.contain("no node matches tags:gpu");
  });

  it("keeps 2 instances on ssd nodes: a node's agent killed past the grace, a new instance runs on the third", async () => {
    const r = await c.cli(["deploy", "Place.Echo", "--type", "node", "--obj", "EchoObj", "--place", "tags:ssd AND cpus>=1", "--count", "2"]);
    expect(r.code, r.out).to.equal(0);
    expect(r.out).to.contain("2 placed (placed)");
    const pkgDir = path.join(c.out, "packages");
    fs.mkdirSync(pkgDir, { recursive: true });
    const file = await echoPackage(pkgDir, "Place", "Echo", "1.0.0");
    const pub = await c.cli(["publish", "Place.Echo", file]);
    expect(pub.code, pub.out).to.equal(0);
    await c.waitAllActive({ "Place.Echo.EchoObj": 2 }, 120_000);
    const before = (await c.instances("Place", "Echo")).map((i) => i.node).sort();
    expect(before).to.have.length(2);
    const victim = before[0]!;
    const spare = NODES.find((n) => !before.includes(n))!;
    await c.killAgent(NODES.indexOf(victim));
    const after = await waitFor("an instance placed on the spare node", async () => {
      const list = await c.instances("Place", "Echo");
      const nodes = list.map((i) => i.node).sort();
      return nodes.length === 2 && nodes.includes(spare) && !nodes.includes(victim) ? list : undefined;
    }, 120_000, 200);
    expect(after.find((i) => i.node === spare)!.desiredState).to.equal("active");
    await c.waitAllActive({ "Place.Echo.EchoObj": 2 }, 120_000);
    const found = await c.find("Place.Echo.EchoObj");
    expect(found.active.map((e) => e.node).sort()).to.deep.equal([...after.map((i) => i.node)].sort());
    const servers = await c.cli(["servers", "Place"]);
    expect(servers.out).to.contain('placement "tags:ssd AND cpus>=1", count 2: 2 placed (placed)');
    const events = (await c.admin.listEvents({ kind: "instance.unplace", targetPrefix: "Place.Echo", actor: "", beforeId: 0, afterId: 0, limit: 5 }, c.as)).events;
    expect(events[0]!.message).to.contain(`removed from ${victim}`).and.contain("offline for more than 2 s");
  });
});
