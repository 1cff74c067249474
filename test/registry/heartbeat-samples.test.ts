/**
 * The registry's in-memory heartbeat samples (registry/node/heartbeat-samples.ts):
 * the figures read from an agent's facts, the last SAMPLES_PER_NODE kept in
 * order once the ring wraps, and nothing invented for a figure an agent did
 * not report.
 */
import { expect } from "chai";
import { HeartbeatSamples, SAMPLES_PER_NODE } from "../../registry/node/heartbeat-samples";

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
});
