/**
 * The agent's resource-limit events besides OOM (nodeagent/agent/limit-events.ts):
 * from the group's growing counters to at most one event per kind and
 * instance per gap, on a fake clock. The counters themselves are read from
 * real v1 groups in supervisor.test.ts and from v2 files in cgroups-v2.test.ts.
 */
import { expect } from "chai";
import { LimitEvents } from "../../nodeagent/agent/limit-events";
import type { CgroupUsage } from "../../nodeagent";

const usage = (pidsLimitHits: number, cpuThrottledPeriods: number): CgroupUsage => ({ memoryBytes: 0, cpuUsageNanos: 0, pids: 1, pidsLimitHits, cpuThrottledPeriods });

describe("nodeagent/limit-events", () => {
  it("an adopted group's first read is the baseline; a rise after it is one event with the count", () => {
    const ev = new LimitEvents(60_000, () => 0);
    expect(ev.observe("1", usage(40, 300))).to.deep.equal([]);
    expect(ev.observe("1", usage(40, 300))).to.deep.equal([]);
    expect(ev.observe("1", usage(52, 300))).to.deep.equal([{ event: "pids_limit", detail: "the pids limit refused 12 forks" }]);
  });

  it("a group this agent made counts from zero", () => {
    const ev = new LimitEvents(60_000, () => 0);
    expect(ev.observe("1", usage(1, 3), true)).to.deep.equal([
      { event: "pids_limit", detail: "the pids limit refused 1 fork" },
      { event: "cpu_throttled", detail: "the CPU quota throttled it in 3 periods of 100 ms" },
    ]);
  });

  it("sends at most one event per kind and instance per gap, summing what happened in between", () => {
    let now = 0;
    const ev = new LimitEvents(60_000, () => now);
    ev.observe("1", usage(0, 0));
    ev.observe("2", usage(0, 0));
    expect(ev.observe("1", usage(0, 10)).map((e) => e.detail)).to.deep.equal(["the CPU quota throttled it in 10 periods of 100 ms"]);
    for (let i = 1; i <= 5; i++) {
      now += 10_000;
      expect(ev.observe("1", usage(0, 10 + i * 7)), `read ${i}`).to.deep.equal([]);
    }
    // Another instance is not held back by the first one's gap.
    expect(ev.observe("2", usage(0, 4))).to.have.length(1);
    now += 10_000;
    expect(ev.observe("1", usage(0, 50))).to.deep.equal([{ event: "cpu_throttled", detail: "the CPU quota throttled it in 40 periods of 100 ms" }]);
  });

  it("a counter that goes down (a new group) counts from its new value; forget() starts over", () => {
    const ev = new LimitEvents(0, () => 0);
    ev.observe("1", usage(100, 0));
    expect(ev.observe("1", usage(3, 0)).map((e) => e.detail)).to.deep.equal(["the pids limit refused 3 forks"]);
    ev.forget("1");
    expect(ev.observe("1", usage(9, 0))).to.deep.equal([]);
  });
});
