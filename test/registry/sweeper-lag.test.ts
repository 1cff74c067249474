/**
 * The offline sweeper of a registry whose own event loop is saturated (a
 * connect storm): it hears its sessions late, so it must not judge their
 * silence as of now, only as of the last moment it had caught up.
 */
import { expect } from "chai";
import { getLogger } from "sgridnext";
import { newHubStats } from "../../registry/node/hub-stats";
import { NodeSession } from "../../registry/node/node-session";
import { OfflineGrace } from "../../registry/node/offline-grace";
import { OfflineSweeper } from "../../registry/node/offline-sweeper";

describe("offline sweeper on a lagging registry", () => {
  it("does not take its own saturated event loop for the nodes' silence; judges once it has caught up", async function () {
    this.timeout(20_000);
    const timeout = 1000;
    const sessions = new Map<string, NodeSession>();
    const grace = new OfflineGrace(timeout);
    const stats = newHubStats();
    const store = {
      nodes: { markStale: async () => [] },
      commands: { prune: async () => {} },
    };
    const sweeper = new OfflineSweeper({
      store: store as any, changes: { healthy: true, kick() {} } as any,
      settings: { advertise: "x:1", heartbeatIntervalMs: 60_000, heartbeatTimeoutMs: timeout, maxPatchBytes: 1, batchTimeoutMs: 1, processId: "lag-test" },
      sessions, detach: (x) => sessions.delete(x.node), grace, stats, log: getLogger("test.sweeper"), appendEvent: async () => {}, pruneIntervalMs: 60_000,
    });
    grace.serving();
    sweeper.start();
    try {
      await new Promise((r) => setTimeout(r, timeout + 100)); // past the start-up grace
      const s = new NodeSession("lag-node", "peer", "127.0.0.1", "1");
      s.firstDesiredAt = Date.now();
      sessions.set(s.node, s);
      // Saturated for 1.5 timeouts, in 20 ms slices (never one long block: not a "stall"), as under a connect storm.
      const until = Date.now() + 1.5 * timeout;
      await new Promise<void>((resolve) => {
        const slice = () => {
          const end = Math.min(until, Date.now() + 20);
          while (Date.now() < end) { /* work */ }
          if (Date.now() >= until) resolve();
          else setImmediate(slice);
        };
        slice();
      });
      await sweeper.sweep();
      expect(s.closed, "closed while the registry itself was behind").to.equal(false);
      expect(stats.sweepsHeldForLag).to.equal(1);
      // Idle again: the silence is the node's now.
      await new Promise((r) => setTimeout(r, 300));
      await sweeper.sweep();
      expect(s.closed).to.equal(true);
      expect(stats.silentClosed).to.equal(1);
      expect(stats.silentClosedNoHeartbeat).to.equal(1);
    } finally {
      await sweeper.stop();
    }
  });
});
