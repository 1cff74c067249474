import { expect } from "chai";
import { makeEndpoint, strategies, type Endpoint } from "sgridnext";

const eps = (n: number, weights?: number[]): Endpoint[] =>
  Array.from({ length: n }, (_, i) => makeEndpoint(`10.0.0.${i + 1}`, 10000, "grpc", { weight: weights?.[i] ?? 100 }));

describe("framework load-balancing strategies", () => {
  it("round-robin visits every endpoint in turn", () => {
    const lb = strategies.resolve("round-robin");
    const list = eps(3);
    lb.update(list);
    const picks = Array.from({ length: 6 }, () => lb.pick(list, {}).host);
    expect(picks).to.deep.equal(["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.1", "10.0.0.2", "10.0.0.3"]);
  });

  it("hash and consistent-hash are stable for a key", () => {
    for (const name of ["hash", "consistent-hash"]) {
      const lb = strategies.resolve(name);
      const list = eps(5);
      lb.update(list);
      for (const key of ["user-1", "user-2", "order-99"]) {
        const first = lb.pick(list, { hashKey: key });
        for (let i = 0; i < 20; i++) expect(lb.pick(list, { hashKey: key }), `${name} ${key}`).to.equal(first);
      }
    }
  });

  it("consistent hash moves about 1/N of keys when an endpoint is added", () => {
    const lb = strategies.resolve("consistent-hash");
    const four = eps(4);
    lb.update(four);
    const keys = Array.from({ length: 10_000 }, (_, i) => `key-${i}`);
    const before = keys.map((k) => lb.pick(four, { hashKey: k }).host);
    const five = eps(5);
    lb.update(five);
    const after = keys.map((k) => lb.pick(five, { hashKey: k }).host);
    const moved = keys.filter((_, i) => before[i] !== after[i]).length / keys.length;
    expect(moved).to.be.within(0.12, 0.3); // ideal 1/5 = 0.2
    // Every moved key moved to the new endpoint.
    expect(keys.every((_, i) => before[i] === after[i] || after[i] === "10.0.0.5")).to.equal(true);

    const mod = strategies.resolve("hash");
    mod.update(four);
    const mb = keys.map((k) => mod.pick(four, { hashKey: k }).host);
    mod.update(five);
    const ma = keys.map((k) => mod.pick(five, { hashKey: k }).host);
    expect(keys.filter((_, i) => mb[i] !== ma[i]).length / keys.length).to.be.greaterThan(0.6);
  });

  it("weighted sends calls in proportion to weight", () => {
    const lb = strategies.resolve("weighted");
    const list = eps(3, [100, 200, 0]);
    lb.update(list);
    const counts = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const h = lb.pick(list, {}).host;
      counts.set(h, (counts.get(h) ?? 0) + 1);
    }
    expect(counts.get("10.0.0.1")).to.equal(100);
    expect(counts.get("10.0.0.2")).to.equal(200);
    expect(counts.get("10.0.0.3") ?? 0).to.equal(0);
  });

  it("round-robin follows the weights once they differ (a canary's share), and is plain round-robin again when they are equal", () => {
    const lb = strategies.resolve("round-robin");
    const list = eps(2, [900, 100]);
    lb.update(list);
    const picks = Array.from({ length: 1000 }, () => lb.pick(list, {}).host);
    expect(picks.filter((h) => h === "10.0.0.2")).to.have.length(100);
    // Interleaved, not in a burst: never two calls in a row to the light one.
    expect(picks.some((h, i) => h === "10.0.0.2" && picks[i + 1] === "10.0.0.2")).to.equal(false);
    const equal = eps(2, [100, 100]);
    lb.update(equal);
    const again = Array.from({ length: 4 }, () => lb.pick(equal, {}).host);
    expect(new Set(again.slice(0, 2)).size).to.equal(2);
    expect(again.filter((h) => h === "10.0.0.1")).to.have.length(2);
  });

  it("random follows the weights once they differ", () => {
    const lb = strategies.resolve("random");
    const list = eps(2, [900, 100]);
    let light = 0;
    for (let i = 0; i < 10_000; i++) if (lb.pick(list, {}).host === "10.0.0.2") light++;
    expect(light).to.be.within(800, 1200); // 10 %, binomial sd 30
    const zero = eps(2, [100, 0]);
    for (let i = 0; i < 100; i++) expect(lb.pick(zero, {}).host).to.equal("10.0.0.1");
  });

  it("random spreads calls over every endpoint", () => {
    const lb = strategies.resolve("random");
    const list = eps(3);
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(lb.pick(list, {}).host);
    expect(seen.size).to.equal(3);
  });

  it("refuses an unknown strategy name with a TypeError", () => {
    expect(() => strategies.resolve("fastest")).to.throw(TypeError, /unknown load-balancing strategy "fastest"/);
  });
});
