/**
 * The registry's in-memory heartbeat samples (registry/node/heartbeat-samples.ts):
 * the figures read from an agent's facts, the last SAMPLES_PER_NODE kept in
 * order once the ring wraps, and nothing invented for a figure an agent did
 * not report.
 */
import { expect } from "chai";
import { HeartbeatSamples, SAMPLES_PER_NODE, UsageSlots } from "../../registry/node/heartbeat-samples";

const facts = (free: number) => ({
  cpuCount: 8, cpuAvailable: 4,
  memory: { totalBytes: 16_000, freeBytes: 1_000, availableBytes: free },
  disks: [{ totalBytes: 100, availableBytes: 40 }, { totalBytes: 50, availableBytes: 5 }],
});

describe("registry heartbeat samples", () => {
  it("keeps the figures of each heartbeat: load, CPU share, memory used, disks summed", () => {
    const s = new HeartbeatSamples();
    s.add("n1", 1_700_000_000_000, 2, facts(6_000));
    expect(s.samples("n1")).to.deep.equal([{
      at: 1_700_000_000_000, load1: 2, cpu: 0.5, memoryTotalBytes: 16_000, memoryUsedBytes: 10_000, diskTotalBytes: 150, diskAvailableBytes: 45,
    }]);
  });

  it("gives only `at` and `load1` for facts of an unknown shape, and load 0 for a non-finite one", () => {
    const s = new HeartbeatSamples();
    s.add("n1", 5, Number.NaN, { memory: "lots", disks: [], cpuCount: 0 });
    s.add("n1", 6, 1.5, {});
    expect(s.samples("n1")).to.deep.equal([{ at: 5, load1: 0 }, { at: 6, load1: 1.5 }]);
    expect(s.samples("other")).to.deep.equal([]);
  });

  it("keeps the last SAMPLES_PER_NODE samples, oldest first, per node; forget drops a node's", () => {
    const s = new HeartbeatSamples();
    const n = SAMPLES_PER_NODE * 2 + 7;
    for (let i = 0; i < n; i++) {
      s.add("n1", i, i / 10, facts(i));
      if (i % 2 === 0) s.add("n2", i, 0, {});
    }
    const kept = s.samples("n1");
    expect(kept.map((x) => x.at)).to.deep.equal(Array.from({ length: SAMPLES_PER_NODE }, (_, i) => n - SAMPLES_PER_NODE + i));
    expect(kept.at(-1)).to.deep.include({ load1: (n - 1) / 10, memoryUsedBytes: 16_000 - (n - 1) });
    expect(s.samples("n2")).to.have.length(SAMPLES_PER_NODE);
    s.forget("n1", []);
    expect(s.samples("n1")).to.deep.equal([]);
    expect(s.samples("n2")).to.have.length(SAMPLES_PER_NODE);
  });

  it("writes a sample into the ring a caller holds, until the node is forgotten", () => {
    const s = new HeartbeatSamples();
    const sample = { cpus: 4, memoryTotalBytes: 1000, memoryAvailableBytes: 400, diskTotalBytes: 0, diskAvailableBytes: 0 };
    const ring = s.addSample("n1", 1, 1, sample);
    expect(s.addSample("n1", 2, 1, sample, ring)).to.equal(ring);
    expect(s.samples("n1").map((x) => x.at)).to.deep.equal([1, 2]);
    s.forget("n1", []);
    const fresh = s.addSample("n1", 3, 1, sample, ring);
    expect(fresh).to.not.equal(ring);
    expect(s.samples("n1").map((x) => x.at)).to.deep.equal([3]);
  });

  it("keeps each instance's latest usage from a session's heartbeats, whatever their order; ignores instances the session may not report", () => {
    const s = new HeartbeatSamples();
    const slots = new UsageSlots();
    const allowed = new Set([1, 2, 3]);
    const u = (instanceId: number, memoryBytes: number) => ({ instanceId, memoryBytes, cpuCoresUsed: memoryBytes / 1000 });
    s.setStartedAt(2, 1234);
    s.setUsages(slots, [u(1, 100), u(2, 200), u(9, 900)], allowed);
    expect(s.usage(1)).to.deep.equal({ memoryBytes: 100, cpuCoresUsed: 0.1, startedAt: 0 });
    expect(s.usage(2)).to.deep.equal({ memoryBytes: 200, cpuCoresUsed: 0.2, startedAt: 1234 });
    expect(s.usage(9), "not the session's instance").to.equal(undefined);
    // The agent reports in another order, and one more instance: each keeps its own figures.
    s.setUsages(slots, [u(2, 210), u(3, 310), u(1, 110), u(9, 910)], allowed);
    expect([s.usage(1)?.memoryBytes, s.usage(2)?.memoryBytes, s.usage(3)?.memoryBytes, s.usage(9)]).to.deep.equal([110, 210, 310, undefined]);
    // The same entries in another order, an entry the session may not report taking a slot, a repeated entry.
    s.setUsages(slots, [u(9, 920), u(1, 120), u(3, 320), u(2, 220)], allowed);
    expect([s.usage(1)?.memoryBytes, s.usage(2)?.memoryBytes, s.usage(3)?.memoryBytes, s.usage(9)]).to.deep.equal([120, 220, 320, undefined]);
    s.setUsages(slots, [u(1, 130), u(1, 131), u(2, 230), u(9, 930)], allowed);
    expect([s.usage(1)?.memoryBytes, s.usage(2)?.memoryBytes]).to.deep.equal([131, 230]);
    s.setUsages(slots, [u(1, 140), u(2, 240), u(3, 340), u(9, 940)], allowed);
    expect([s.usage(1)?.memoryBytes, s.usage(2)?.memoryBytes, s.usage(3)?.memoryBytes]).to.deep.equal([140, 240, 340]);
    s.setUsages(slots, [u(9, 950), u(1, 150), u(2, 250), u(3, 350)], allowed);
    expect([s.usage(1)?.memoryBytes, s.usage(3)?.memoryBytes]).to.deep.equal([150, 350]);
    // A session's slots made afresh (a new set of instances) keep the last figures readable until reported again.
    const next = new UsageSlots();
    s.setUsages(next, [u(3, 320)], new Set([3]));
    expect([s.usage(1)?.memoryBytes, s.usage(3)?.memoryBytes]).to.deep.equal([150, 320]);
    s.forget("n1", [1, 2, 3]);
    expect([s.usage(1), s.usage(2), s.usage(3)]).to.deep.equal([undefined, undefined, undefined]);
  });
});
