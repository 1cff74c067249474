/**
 * The admin app's session store and login limiter, with a test clock.
 */
import { expect } from "chai";
import { AdminLoginRateLimitedError } from "../../admin";
import { LoginRateLimiter } from "../../admin/rate-limit";
import { SessionStore } from "../../admin/session";

describe("admin sessions", () => {
  it("hands out random ids, ends idle sessions and sessions whose registry token expired", () => {
    let now = 1_000_000;
    const store = new SessionStore({ idleMs: 60_000, maxSessions: 10, now: () => now });
    const a = store.create({ token: "tok-a", user: "ann", roles: [], expiresAt: now + 120_000 });
    const b = store.create({ token: "tok-b", user: "bob", roles: [], expiresAt: 0 });
    expect(a.id).to.match(/^[A-Za-z0-9_-]{43}$/);
    expect(a.id).not.to.equal(b.id);
    expect(a.session.csrfToken).not.to.equal(b.session.csrfToken);
    expect(store.get(a.id)?.user).to.equal("ann");
    expect(store.get("not-an-id")).to.equal(undefined);
    now += 59_000;
    expect(store.get(a.id)?.user).to.equal("ann"); // used: idle time restarts
    now += 59_000;
    expect(store.get(b.id)).to.equal(undefined); // idle 118 s > 60 s
    now += 3_000;
    expect(store.get(a.id)).to.equal(undefined); // token expired at +120 s
    expect(store.size).to.equal(0);
  });

  it("keeps at most maxSessions, dropping the least recently used", () => {
    const store = new SessionStore({ idleMs: 60_000, maxSessions: 2 });
    const a = store.create({ token: "a", user: "a", roles: [], expiresAt: 0 });
    const b = store.create({ token: "b", user: "b", roles: [], expiresAt: 0 });
    store.get(a.id);
    const c = store.create({ token: "c", user: "c", roles: [], expiresAt: 0 });
    expect(store.get(b.id)).to.equal(undefined);
    expect(store.get(a.id)?.user).to.equal("a");
    expect(store.get(c.id)?.user).to.equal("c");
    expect(store.delete(c.id)?.user).to.equal("c");
    expect(store.get(c.id)).to.equal(undefined);
  });
});

describe("admin login limiter", () => {
  it("limits attempts per address per minute and failures per (user, address) per 5 minutes: other addresses still log in", () => {
    let now = 0;
    const limiter = new LoginRateLimiter({ attemptsPerMinute: 3, failuresPerUser: 2, now: () => now });
    limiter.begin("10.0.0.1", "ann");
    limiter.failed("10.0.0.1", "ann");
    limiter.begin("10.0.0.1", "Ann");
    limiter.failed("10.0.0.1", "Ann");
    // Two failures for "ann" (any case) from 10.0.0.1: refused from there, for 5 minutes...
    now += 60_001;
    expect(() => limiter.begin("10.0.0.1", "ANN")).to.throw(AdminLoginRateLimitedError, /too many login attempts/);
    // ...but not from another address.
    limiter.begin("10.0.0.3", "ann");
    limiter.succeeded("10.0.0.3", "ann");
    now += 5 * 60_000 + 1;
    limiter.begin("10.0.0.1", "ann");
    limiter.succeeded("10.0.0.1", "ann");
    // Per address: the 4th attempt in a minute is refused, then allowed again a minute later.
    limiter.begin("10.0.0.9", "x");
    limiter.begin("10.0.0.9", "y");
    limiter.begin("10.0.0.9", "z");
    try {
      limiter.begin("10.0.0.9", "w");
      expect.fail("not limited");
    } catch (err) {
      expect(err).to.be.instanceOf(AdminLoginRateLimitedError);
      expect((err as AdminLoginRateLimitedError).data?.retryAfterS).to.equal(60);
    }
    now += 61_000;
    limiter.begin("10.0.0.9", "w");
  });
});
