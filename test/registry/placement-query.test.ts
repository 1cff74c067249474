/**
 * The placement query (registry/admin/placement-query.ts) and the
 * reconciler's decision (planPlacement): what matches, what a bad query
 * says and where, spreading, lost nodes, and removals held back until the
 * kept instances serve.
 */
import { expect } from "chai";
import { InvalidArgumentError, parseTags } from "sgridnext";
import { matches, parsePlacementQuery, type NodeView } from "../../registry/admin/placement-query";
import { nodeView, planPlacement } from "../../registry/admin/placement-reconciler";
import type { InstanceRecord, NodeRecord } from "../../registry/store";

const GiB = 1024 ** 3;
function view(over: Partial<NodeView> = {}): NodeView {
  return { name: "n1", tags: {}, cpus: 4, memory: 8 * GiB, disk: 100 * GiB, os: "linux", arch: "x64", ...over };
}

function parseError(q: string): InvalidArgumentError {
  try {
    parsePlacementQuery(q);
  } catch (err) {
    expect(err).to.be.instanceOf(InvalidArgumentError);
    return err as InvalidArgumentError;
  }
  throw new Error(`expected ${q} not to parse`);
}

describe("placement query", () => {
  it("matches tags, tag values and facts with AND, OR, NOT and parentheses", () => {
    const ssd = view({ tags: { ssd: "", zone: "a" }, cpus: 8 });
    const hdd = view({ name: "n2", tags: { zone: "b" }, cpus: 2 });
    const q = (text: string, v: NodeView) => matches(parsePlacementQuery(text), v);
    expect(q("tags:ssd", ssd)).to.equal(true);
    expect(q("tags:ssd", hdd)).to.equal(false);
    expect(q("tags:zone=a", ssd)).to.equal(true);
    expect(q("tags:zone=a", hdd)).to.equal(false);
    expect(q("tags:ssd AND cpus>4", ssd)).to.equal(true);
    expect(q("tags:ssd and cpus>8", ssd)).to.equal(false);
    expect(q("tags:ssd OR tags:zone=b", hdd)).to.equal(true);
    expect(q("NOT tags:ssd", hdd)).to.equal(true);
    expect(q("(tags:zone=a OR tags:zone=b) AND NOT cpus<4", hdd)).to.equal(false);
    expect(q("(tags:zone=a OR tags:zone=b) AND NOT cpus<4", ssd)).to.equal(true);
    // AND binds tighter than OR.
    expect(q("tags:zone=b OR tags:ssd AND cpus>100", hdd)).to.equal(true);
    expect(q("tags:zone=b OR tags:ssd AND cpus>100", ssd)).to.equal(false);
    expect(q("memory>=8G AND disk>50GiB", ssd)).to.equal(true);
    expect(q("memory>8G", ssd)).to.equal(false);
    expect(q("os=linux AND arch!=arm64 AND name=\"n1\"", ssd)).to.equal(true);
    expect(q("name=N2", hdd)).to.equal(true);
  });

  it("points at the column of what does not parse, and says what was expected", () => {
    const cases: Array<[string, number, string]> = [
      ["tags:ssd AND", 13, "expected a term"],
      ["tags:ssd AND )", 14, "expected a term"],
      ["tags:ssd cpus>4", 10, "expected AND, OR or the end"],
      ["(tags:ssd OR tags:hdd", 22, `expected ")" to close the "(" at column 1`],
      ["tags:ssd)", 9, `a ")" without its "("`],
      ["cpu>4", 1, `unknown fact "cpu"`],
      ["cpus>four", 6, `"cpus" is a number`],
      ["os>linux", 3, `"os" is a text: only = and !=`],
      ["cpus 4", 6, "expected a comparison"],
      ["tags:", 6, "expected a tag key"],
      ["tags:zone=", 11, "expected the tag's value"],
      ["tags:ssd AND !tags:hdd", 14, "use NOT"],
      ["name=\"x", 6, "not closed"],
      ["tags:ssd & cpus>1", 10, "unexpected character \"&\""],
    ];
    for (const [q, column, text] of cases) {
      const err = parseError(q);
      expect(err.message, q).to.contain(`at column ${column},`).and.contain(text).and.contain(JSON.stringify(q));
      expect(err.data, q).to.deep.include({ kind: "place", column });
    }
    expect(parseError("  ").message).to.contain("empty");
    expect(parseError("tags:a OR ".repeat(200)).message).to.contain("longer than 1024");
  });
});

function node(name: string, over: Partial<NodeRecord> = {}): NodeRecord {
  const tags = over.tags ?? {};
  return {
    id: 1, name, address: "10.0.0.1", agentVersion: "t", agentId: "", hostInfo: { cpuAvailable: 4, memory: { totalBytes: 8 * GiB }, platform: "linux", arch: "x64" },
    agentTags: tags, adminTags: {}, tags, lastHeartbeatAt: 1_000_000, online: true, createdAt: 0, updatedAt: 0, ...over,
  };
}

let ids = 0;
function inst(nodeName: string, observedState: InstanceRecord["observedState"] = "active"): InstanceRecord {
  return { id: ++ids, node: nodeName, observedState, surgeOf: null, desiredState: "active", desiredPatchId: 1 } as InstanceRecord;
}

describe("placement plan", () => {
  const ssd = parseTags(["ssd"]);
  const base = { queryText: "tags:ssd", query: parsePlacementQuery("tags:ssd"), now: 1_000_000, graceMs: 60_000, load: new Map<string, number>() };

  it("reads cpus, memory, disk, os and arch from the facts an agent reports", () => {
    const v = nodeView(node("x", { hostInfo: { cpuCount: 16, cpuAvailable: 8, memory: { totalBytes: 2 * GiB }, platform: "linux", arch: "arm64", disks: [{ availableBytes: 5, readOnly: false }, { availableBytes: 9, readOnly: true }, { availableBytes: 7, readOnly: false }] } }));
    expect(v).to.deep.include({ cpus: 8, memory: 2 * GiB, disk: 7, os: "linux", arch: "arm64" });
  });

  it("spreads over matching online nodes with the fewest instances, never two on one node", () => {
    const nodes = [node("a", { tags: ssd }), node("b", { tags: ssd }), node("c", { tags: ssd }), node("d"), node("e", { tags: ssd, online: false })];
    const plan = planPlacement({ ...base, count: 2, nodes, instances: [], load: new Map([["a", 3], ["b", 1], ["c", 0]]) });
    expect(plan.need).to.equal(2);
    expect(plan.candidates).to.deep.equal(["c", "b", "a"]);
    expect(plan.matching).to.deep.equal(["a", "b", "c", "e"]);
    expect(plan.reasons).to.deep.equal([]);
    const more = planPlacement({ ...base, count: 5, nodes, instances: [inst("a")] });
    expect(more.need).to.equal(4);
    expect(more.candidates).to.deep.equal(["b", "c"]);
    expect(more.reasons[0]).to.contain("not enough matching nodes: 5 wanted, 3 possible").and.contain("a: has an instance already").and.contain("e: offline");
  });

  it("says no node matches, and plans nothing", () => {
    const plan = planPlacement({ ...base, count: 2, nodes: [node("a"), node("b")], instances: [] });
    expect(plan.matching).to.deep.equal([]);
    expect(plan.candidates).to.deep.equal([]);
    expect(plan.reasons).to.deep.equal(["no node matches tags:ssd (2 node(s) known)"]);
  });

  it("keeps an instance on a node offline within the grace, replaces it past the grace", () => {
    const nodes = [node("a", { tags: ssd }), node("b", { tags: ssd, online: false, lastHeartbeatAt: 1_000_000 - 30_000 }), node("c", { tags: ssd })];
    const onB = inst("b");
    const within = planPlacement({ ...base, count: 2, nodes, instances: [inst("a"), onB] });
    expect(within.need).to.equal(0);
    expect(within.remove).to.deep.equal([]);
    const past = planPlacement({ ...base, now: 1_000_000 + 31_000, count: 2, nodes, instances: [inst("a"), onB] });
    expect(past.need).to.equal(1);
    expect(past.candidates).to.deep.equal(["c"]);
    expect(past.remove.map((r) => r.instance.id)).to.deep.equal([onB.id]);
    expect(past.remove[0]!.why).to.contain(`node "b" has been offline for more than 60 s`);
  });

  it("removes instances on nodes that stopped matching, or beyond the count, only once the kept ones serve", () => {
    const nodes = [node("a", { tags: ssd }), node("b"), node("c", { tags: ssd })];
    const onB = inst("b");
    const starting = planPlacement({ ...base, count: 2, nodes, instances: [inst("a"), onB, inst("c", "activating")] });
    expect(starting.remove).to.deep.equal([]);
    expect(starting.reasons[0]).to.contain(`instance ${onB.id} on b is kept until the others serve`).and.contain("no longer matches tags:ssd");
    const serving = planPlacement({ ...base, count: 2, nodes, instances: [inst("a"), onB, inst("c")] });
    expect(serving.remove.map((r) => r.instance.id)).to.deep.equal([onB.id]);
    const lowered = planPlacement({ ...base, count: 1, nodes, instances: [inst("a"), inst("c")] });
    expect(lowered.keep.map((i) => i.node)).to.deep.equal(["a"]);
    expect(lowered.remove.map((r) => r.instance.node)).to.deep.equal(["c"]);
  });
});
