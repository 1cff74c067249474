/**
 * The gateway's per-client token buckets (shared by its gRPC and HTTP
 * fronts): refill, the bounded key map, and one key per client address
 * whichever front (and address form) the call came on.
 */
import { expect } from "chai";
import { clientKey, peerAddress, RateLimiter } from "../../gateway/rate-limit";
import { parseRoutes } from "../../gateway/routes";

describe("gateway rate limits", () => {
  it("lets a burst through, then one call per 1/perSecond, and says how long to wait", () => {
    let now = 0;
    const limiter = new RateLimiter({ now: () => now });
    const rule = { perSecond: 2, burst: 3 };
    expect([1, 2, 3].map(() => limiter.take("k", rule))).to.deep.equal([0, 0, 0]);
    expect(limiter.take("k", rule)).to.equal(500);
    now = 500;
    expect(limiter.take("k", rule)).to.equal(0);
    expect(limiter.take("other", rule)).to.equal(0);
  });

  it("forgets the least recently used client past maxKeys", () => {
    const limiter = new RateLimiter({ now: () => 0, maxKeys: 2 });
    for (const k of ["a", "b", "c"]) limiter.take(k, { perSecond: 1, burst: 1 });
    expect(limiter.size).to.equal(2);
    expect(limiter.take("a", { perSecond: 1, burst: 1 })).to.equal(0);
    expect(limiter.take("c", { perSecond: 1, burst: 1 })).to.be.above(0);
  });

  it("keys a client by its address alone: a grpc-js peer, an HTTP socket address and an IPv4-mapped one are the same client", () => {
    expect(peerAddress("127.0.0.1:51234")).to.equal("127.0.0.1");
    expect(peerAddress("ipv4:10.0.0.7:443")).to.equal("10.0.0.7");
    expect(peerAddress("[::1]:51234")).to.equal("::1");
    expect(peerAddress("::1")).to.equal("::1");
    expect(peerAddress(undefined)).to.equal("");
    const rule = parseRoutes("routes:\n  - service: demo.*\n    rateLimit: { perSecond: 1 }\n").match("demo.echo.v1.Echo")!;
    expect(clientKey(rule, "127.0.0.1:5000")).to.equal(clientKey(rule, "::ffff:127.0.0.1"));
    expect(clientKey(rule, "[::ffff:127.0.0.1]:6000")).to.equal(clientKey(rule, "127.0.0.1"));
    expect(clientKey(rule, "127.0.0.1:5000")).to.not.equal(clientKey(rule, "127.0.0.2:5000"));
  });
});
