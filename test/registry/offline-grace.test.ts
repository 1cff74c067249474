/**
 * When the registry may mark silent nodes offline (registry/node/offline-grace.ts):
 * not within a heartbeat timeout of its start, not while the database is
 * away, and not within a timeout of its return. A clock is injected.
 */
import { expect } from "chai";
import { OfflineGrace } from "../../registry/node/offline-grace";

describe("registry offline grace", () => {
  let now = 0;
  const clock = () => now;

  it("holds back until serving and for one heartbeat timeout after", () => {
    now = 1_000;
    const g = new OfflineGrace(3_000, clock);
    expect(g.mayMarkOffline(true), "not serving yet").to.equal(false);
    g.serving();
    now = 3_999;
    expect(g.mayMarkOffline(true)).to.equal(false);
    expect(g.reason).to.equal("registry started");
    now = 4_000;
    expect(g.mayMarkOffline(true)).to.equal(true);
    expect(g.reason).to.equal("");
  });

  it("holds back while the database is away and for one timeout after it answers again", () => {
    now = 0;
    const g = new OfflineGrace(3_000, clock);
    g.serving();
    now = 10_000;
    expect(g.mayMarkOffline(true)).to.equal(true);
    // The change feed's polls fail.
    now = 11_000;
    expect(g.mayMarkOffline(false)).to.equal(false);
    now = 40_000;
    expect(g.mayMarkOffline(false)).to.equal(false);
    expect(g.reason).to.equal("database unavailable");
    // Back at 41 s: a new grace until 44 s.
    now = 41_000;
    expect(g.mayMarkOffline(true)).to.equal(false);
    expect(g.reason).to.equal("database back");
    now = 43_999;
    expect(g.mayMarkOffline(true)).to.equal(false);
    now = 44_000;
    expect(g.mayMarkOffline(true)).to.equal(true);
  });

  it("counts a failed heartbeat write as the database away, even when reads still work", () => {
    now = 0;
    const g = new OfflineGrace(3_000, clock);
    g.serving();
    now = 5_000;
    g.databaseFailed();
    now = 6_000;
    expect(g.mayMarkOffline(true), "the first healthy sweep after the failure starts a grace").to.equal(false);
    now = 8_999;
    expect(g.mayMarkOffline(true)).to.equal(false);
    now = 9_000;
    expect(g.mayMarkOffline(true)).to.equal(true);
  });

  it("holds back for one timeout after the registry itself stalled (a blocked event loop heard no session)", () => {
    now = 0;
    const g = new OfflineGrace(3_000, clock);
    g.serving();
    now = 10_000;
    expect(g.mayMarkOffline(true)).to.equal(true);
    g.stalled(9_500);
    expect(g.mayMarkOffline(true)).to.equal(false);
    expect(g.reason).to.equal("registry stalled for 9500 ms");
    now = 13_000;
    expect(g.mayMarkOffline(true)).to.equal(true);
  });
});
