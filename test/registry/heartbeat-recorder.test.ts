/**
 * The heartbeat recorder on a real store (each dialect): heartbeats are taken
 * in memory and written by the flush, one batch for every session; a node
 * the database has offline comes back only through a session still open;
 * host facts are stored when due and changed, not on every heartbeat.
 */
import { expect } from "chai";
import { getLogger } from "sgridnext";
import type { Heartbeat } from "sgridnext/gen/sgrid/registry/v1/node";
import { HeartbeatSamples } from "../../registry/node/heartbeat-samples";
import { HeartbeatRecorder, nextFactsDue } from "../../registry/node/heartbeats";
import { newHubStats } from "../../registry/node/hub-stats";
import { NodeSession } from "../../registry/node/node-session";
import { OfflineGrace } from "../../registry/node/offline-grace";
import type { KnexStore } from "../../registry/store";
import { type DialectCase, forEachDialect, freshStore, uniq } from "./helpers/db";

function hb(facts: Record<string, unknown> = {}): Heartbeat {
  return { load1: 0.5, factsJson: JSON.stringify(facts), usage: [], sample: undefined };
}

forEachDialect("registry heartbeat recorder", (d: DialectCase) => {
  let store: KnexStore;
  let cleanup: () => Promise<void>;
  before(async () => ({ store, cleanup } = await freshStore(d)));
  after(async () => cleanup?.());

  function recorder(factsIntervalMs = 60_000) {
    const stats = newHubStats();
    const samples = new HeartbeatSamples();
    const rec = new HeartbeatRecorder({
      store, samples, grace: new OfflineGrace(15_000), stats, log: getLogger("test.heartbeats"), factsIntervalMs, flushMs: 1000,
    });
    return { rec, stats, samples };
  }

  async function session(hostInfo: Record<string, unknown> = { cpuCount: 2 }): Promise<NodeSession> {
    const name = uniq("hbr-");
    await store.nodes.upsert({ name, address: "10.0.0.1", agentVersion: "1", hostInfo });
    const s = new NodeSession(name, "peer", "10.0.0.1", "1");
    s.hostInfo = hostInfo;
    s.hostInfoText = JSON.stringify(hostInfo);
    s.factsDueAt = Date.now() + 60_000;
    return s;
  }

  it("writes nothing per heartbeat: the flush writes every session's newest time in one batch, without a revision bump", async () => {
    const { rec, stats } = recorder();
    const sessions = [await session(), await session(), await session()];
    const before = await Promise.all(sessions.map((s) => store.nodes.get(s.node)));
    const r0 = await store.revisions.get();
    const updates: string[] = [];
    const onQuery = (q: { sql: string }) => {
      if (/^update/i.test(q.sql)) updates.push(q.sql);
    };
    store.knex.on("query", onQuery);
    try {
      const t0 = Date.now();
      for (let i = 0; i < 5; i++) for (const s of sessions) rec.accept(s, hb());
      expect(stats).to.include({ heartbeatsReceived: 15, heartbeatsRecorded: 0 });
      expect(updates).to.deep.equal([]);
      for (const [i, s] of sessions.entries()) expect(await store.nodes.get(s.node)).to.deep.equal(before[i]);
      await rec.flush();
      expect(stats).to.include({ heartbeatsRecorded: 15, heartbeatErrors: 0, heartbeatsDropped: 0 });
      expect(updates).to.have.length(1);
      for (const s of sessions) expect((await store.nodes.get(s.node)).lastHeartbeatAt).to.be.at.least(t0);
      expect(await store.revisions.get()).to.deep.equal(r0);
      await rec.flush(); // nothing pending: no write
      expect(updates).to.have.length(1);
    } finally {
      store.knex.off("query", onQuery);
    }
  });

  it("never brings a node back for a closed session; an open one brings it back online, or recreates it when removed", async () => {
    const { rec, stats } = recorder();
    const closed = await session();
    const open = await session();
    const removed = await session();
    rec.accept(closed, hb());
    rec.accept(open, hb());
    rec.accept(removed, hb());
    // Marked offline meanwhile (another registry's sweep, say), and one removed by an operator.
    await store.nodes.setOnline(closed.node, false);
    await store.nodes.setOnline(open.node, false);
    await store.nodes.remove(removed.node);
    closed.close();
    const closedBefore = await store.nodes.get(closed.node);
    await rec.flush();
    expect(await store.nodes.get(closed.node)).to.deep.equal(closedBefore);
    expect((await store.nodes.get(open.node)).online).to.equal(true);
    expect(await store.nodes.get(removed.node)).to.deep.include({ online: true, hostInfo: { cpuCount: 2 } });
    expect(stats).to.include({ heartbeatsRecorded: 2, heartbeatsDropped: 1 });
    // A session that closes between a flush's batch and its old-path write does not bring its node back either.
    rec.accept(closed, hb());
    await rec.flush();
    expect(await store.nodes.get(closed.node)).to.deep.equal(closedBefore);
    expect(stats.heartbeatsDropped).to.equal(2);
  });

  it("stores host facts when due and changed (one revision bump), not when they repeat what is stored", async () => {
    const { rec } = recorder(1);
    const s = await session({ cpuCount: 2, hostname: "h" });
    s.factsDueAt = 0;
    const r0 = (await store.revisions.get()).nodes;
    rec.accept(s, hb({ cpuCount: 2 }));
    await rec.flush();
    expect((await store.revisions.get()).nodes).to.equal(r0);
    s.factsDueAt = 0;
    rec.accept(s, hb({ cpuCount: 4, memory: { totalBytes: 1000 } }));
    await rec.flush();
    expect((await store.revisions.get()).nodes).to.equal(r0 + 1);
    expect((await store.nodes.get(s.node)).hostInfo).to.deep.equal({ cpuCount: 4, hostname: "h", memory: { totalBytes: 1000 } });
    // Not due: changed facts wait.
    s.factsDueAt = Date.now() + 60_000;
    rec.accept(s, hb({ cpuCount: 8 }));
    await rec.flush();
    expect((await store.nodes.get(s.node)).hostInfo).to.include({ cpuCount: 4 });
  });

  it("takes a HostSample heartbeat's figures from the sample, and its facts only when half the facts interval has passed since the last taken", async () => {
    const { rec, samples } = recorder(60_000);
    const s = await session({ cpuCount: 2, hostname: "h" });
    s.factsTakenAt = Date.now(); // the hello's
    const r0 = (await store.revisions.get()).nodes;
    const sample = { cpus: 4, memoryTotalBytes: 1000, memoryAvailableBytes: 250, diskTotalBytes: 5000, diskAvailableBytes: 1500 };
    const withSample = (facts?: Record<string, unknown>): Heartbeat => ({ load1: 2, factsJson: facts ? JSON.stringify(facts) : "", usage: [], sample });
    rec.accept(s, withSample());
    expect(samples.samples(s.node).at(-1)).to.deep.include({ load1: 2, cpu: 0.5, memoryTotalBytes: 1000, memoryUsedBytes: 750, diskTotalBytes: 5000, diskAvailableBytes: 1500 });
    // Changed facts sent too soon after the hello's (a misbehaving agent): not taken.
    rec.accept(s, withSample({ cpuCount: 8, hostname: "h" }));
    await rec.flush();
    expect((await store.nodes.get(s.node)).hostInfo).to.deep.equal({ cpuCount: 2, hostname: "h" });
    expect((await store.revisions.get()).nodes).to.equal(r0);
    // Half an interval later, facts that changed are stored however the registry's own due time falls.
    s.factsTakenAt = Date.now() - 30_000;
    s.factsDueAt = Date.now() + 60_000;
    rec.accept(s, withSample({ cpuCount: 8, hostname: "h" }));
    await rec.flush();
    expect((await store.nodes.get(s.node)).hostInfo).to.deep.equal({ cpuCount: 8, hostname: "h" });
    expect((await store.revisions.get()).nodes).to.equal(r0 + 1);
    expect(s.factsTakenAt).to.be.closeTo(Date.now(), 1000);
    // Unknown figures (0) stay out of the sample.
    rec.accept(s, { load1: 1, factsJson: "", usage: [], sample: { cpus: 0, memoryTotalBytes: 0, memoryAvailableBytes: 0, diskTotalBytes: 0, diskAvailableBytes: 0 } });
    const last = samples.samples(s.node).at(-1)!;
    expect(Object.keys(last).sort()).to.deep.equal(["at", "load1"]);
  });

  it("keeps a failed flush's heartbeats for the next one and tells the offline grace", async () => {
    const { store: broken, cleanup: drop } = await freshStore(d);
    const s = await session();
    const stats = newHubStats();
    const grace = new OfflineGrace(15_000);
    const rec = new HeartbeatRecorder({ store: broken, samples: new HeartbeatSamples(), grace, stats, log: getLogger("test.heartbeats"), factsIntervalMs: 60_000, flushMs: 1000 });
    await broken.knex.schema.renameTable("nodes", "nodes_away");
    try {
      rec.accept(s, hb());
      await rec.flush();
      expect(stats).to.include({ heartbeatErrors: 1, heartbeatsRecorded: 0 });
      expect(grace.reason).to.equal("database unavailable");
    } finally {
      await broken.knex.schema.renameTable("nodes_away", "nodes");
    }
    await broken.nodes.upsert({ name: s.node, address: "a", agentVersion: "1" });
    rec.accept(s, hb());
    await rec.flush();
    expect(stats).to.include({ heartbeatErrors: 1, heartbeatsRecorded: 2 });
    await drop();
  });

  it("spreads the facts writes: due at the interval, give or take a quarter", () => {
    expect(nextFactsDue(1000, 60_000, () => 0)).to.equal(1000 + 45_000);
    expect(nextFactsDue(1000, 60_000, () => 0.5)).to.equal(1000 + 60_000);
    expect(nextFactsDue(1000, 60_000, () => 0.999)).to.be.within(1000 + 74_900, 1000 + 75_000);
  });
});
