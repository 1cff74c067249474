/**
 * A connect storm on one registry: many hellos at once are opened a few at a
 * time (the rest wait their turn, in order), every agent gets its desired
 * state and its node is online with one node.online event; the offline
 * sweeper does not close a session whose first desired state the transport
 * has not taken yet (its agent cannot heartbeat before), but only for a
 * bounded time, and counts silence from that first desired state.
 */
import { expect } from "chai";
import { DeadlineExceededError, getLogger } from "sgridnext";
import { newHubStats } from "../../registry/node/hub-stats";
import { NodeSession } from "../../registry/node/node-session";
import { OfflineGrace } from "../../registry/node/offline-grace";
import { FIRST_DESIRED_WAIT, OfflineSweeper } from "../../registry/node/offline-sweeper";
import { OpenGate } from "../../registry/node/open-gate";
import type { KnexStore } from "../../registry/store";
import { type DialectCase, forEachDialect, freshStore, uniq } from "./helpers/db";
import { FakeAgent, type NodeRegistry, startNodeRegistry, waitFor } from "./helpers/node-harness";

describe("registry open gate", () => {
  it("lets `limit` opens in at once and the others in arrival order as slots free", async () => {
    const gate = new OpenGate(2);
    const order: number[] = [];
    const runs = [0, 1, 2, 3, 4].map(async (i) => {
      await gate.acquire();
      order.push(i);
      expect(gate.inProgress).to.be.at.most(2);
      await new Promise((r) => setTimeout(r, 5));
      gate.release();
    });
    await new Promise((r) => setImmediate(r));
    expect(gate.inProgress).to.equal(2);
    expect(gate.queued).to.equal(3);
    await Promise.all(runs);
    expect(order).to.deep.equal([0, 1, 2, 3, 4]);
    expect(gate.inProgress).to.equal(0);
    expect(() => new OpenGate(0)).to.throw(/positive integer/);
  });

  it("serves the event loop between opens: a queue of opens whose work never waits on I/O (SQLite) does not hold timers and sockets until it is done", async () => {
    const gate = new OpenGate(1);
    const done: number[] = [];
    let timerFiredAfter: number | undefined;
    setTimeout(() => (timerFiredAfter = done.length), 0);
    const busy = (ms: number) => {
      const until = performance.now() + ms;
      while (performance.now() < until) { /* a synchronous query */ }
    };
    await Promise.all(Array.from({ length: 100 }, async (_, i) => {
      await gate.acquire();
      busy(2);
      await Promise.resolve(); // a query that resolves without I/O
      done.push(i);
      gate.release();
    }));
    expect(done).to.have.length(100);
    expect(timerFiredAfter, "a 0 ms timer ran while opens were queued").to.be.a("number").and.below(50);
  });
});

forEachDialect("registry connect storm", (d: DialectCase) => {
  let reg: NodeRegistry;
  let store: KnexStore;
  let cleanup: () => Promise<void>;
  let cleanupReg: () => Promise<void>;
  const agents: FakeAgent[] = [];

  before(async function () {
    this.timeout(120_000);
    // The sweeper case on a store of its own (its sweeps would mark the registry's nodes offline).
    ({ store, cleanup } = await freshStore(d));
    const db = await d.create();
    cleanupReg = () => db.drop();
    reg = await startNodeRegistry(db.url, { processId: "reg-storm", hub: { maxConcurrentOpens: 3 } });
  });
  after(async () => {
    await Promise.all(agents.splice(0).map((a) => a.close()));
    await reg?.close();
    await cleanupReg?.();
    await cleanup?.();
  });

  it("serves timers while a storm of opens writes (on SQLite no query waits on I/O): a 0 ms timer runs before the storm is done", async function () {
    this.timeout(60_000);
    const hellos = Array.from({ length: 60 }, () => ({ node: uniq("turn-"), address: "127.0.0.1", agentVersion: "t", hostInfoJson: "{}", agentId: uniq("a-"), tags: [] }));
    let opened = 0;
    let openedWhenTimerRan: number | undefined;
    const opens = hellos.map(async (h) => {
      const s = await reg.hub.open(h, "test");
      opened++;
      s.close();
      reg.hub.detach(s);
    });
    setTimeout(() => (openedWhenTimerRan = opened), 0);
    await Promise.all(opens);
    expect(openedWhenTimerRan, "opens done when a 0 ms timer first ran").to.be.a("number").and.below(hellos.length);
  });

  it("opens 40 simultaneous hellos 3 at a time: every agent gets its desired state, every node is online with one node.online event", async function () {
    this.timeout(60_000);
    const names = Array.from({ length: 40 }, () => uniq("storm-"));
    for (const n of names) agents.push(new FakeAgent(reg.address, n));
    await waitFor("every agent's desired state", () => agents.every((a) => a.lastDesired() !== undefined), 40_000);
    expect(agents.map((a) => a.outcome)).to.deep.equal(names.map(() => undefined));
    expect(reg.hub.localNodes()).to.include.members(names);
    for (const n of names) {
      expect((await reg.store.nodes.get(n)).online, n).to.equal(true);
      const events = await waitFor(`node.online of ${n}`, async () => {
        const e = await reg.store.events.list({ kind: "node.online", target: n });
        return e.length > 0 ? e : undefined;
      });
      expect(events, n).to.have.length(1);
    }
  });

  it("spares a session whose first desired state was not taken, for a bounded time; counts silence from the first desired state", async () => {
    const timeout = 1000;
    const sessions = new Map<string, NodeSession>();
    // Past the start-up grace (the sweeper judges).
    let clock = Date.now();
    const grace = new OfflineGrace(timeout, () => clock);
    grace.serving();
    clock += 2 * timeout;
    const sweeper = new OfflineSweeper({
      store, changes: { healthy: true, kick() {} } as any,
      settings: { advertise: "x:1", heartbeatIntervalMs: 100, heartbeatTimeoutMs: timeout, maxPatchBytes: 1, batchTimeoutMs: 1, processId: "sweep-test" },
      sessions, detach: (s) => sessions.delete(s.node), grace,
      stats: newHubStats(), log: getLogger("test.sweeper"), appendEvent: async () => {}, pruneIntervalMs: 60_000,
    });
    const open = async (silentForMs: number): Promise<NodeSession> => {
      const name = uniq("sweep-");
      await store.nodes.upsert({ name, address: "127.0.0.1", agentVersion: "1" });
      const s = new NodeSession(name, "peer", "127.0.0.1", "1");
      Object.assign(s, { openedAt: Date.now() - silentForMs, lastSeenAt: Date.now() - silentForMs });
      sessions.set(name, s);
      return s;
    };
    const takeDesired = async (s: NodeSession, agoMs: number): Promise<void> => {
      s.sendDesired({ instances: [], registry: "x:1", heartbeatIntervalMs: 100, factsIntervalMs: 0 });
      const m = await s.messages().next();
      expect(m.value?.kind?.$case).to.equal("desired");
      s.firstDesiredAt = Date.now() - agoMs;
    };
    const waiting = await open(1.5 * timeout); // silent past the timeout, but no desired state taken yet
    const tooLong = await open((FIRST_DESIRED_WAIT + 0.5) * timeout); // no desired state for longer than the bound
    const fresh = await open(1.5 * timeout);
    await takeDesired(fresh, 200); // heard at hello 1.5 timeouts ago, desired state taken 200 ms ago: not silent
    const silent = await open(3 * timeout);
    await takeDesired(silent, 1.5 * timeout); // desired state taken 1.5 timeouts ago, silent since
    await sweeper.sweep();
    expect([...sessions.keys()].sort()).to.deep.equal([waiting.node, fresh.node].sort());
    expect(tooLong.closed && silent.closed).to.equal(true);
    const ended = await silent.messages().next().catch((err: unknown) => err);
    expect(ended).to.be.instanceOf(DeadlineExceededError);
    expect(waiting.closed || fresh.closed).to.equal(false);
  });
});
