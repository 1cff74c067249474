/**
 * The change feed over a real store: topics of committed writes, kick(), and
 * polling through database errors. Runs once per dialect. (A real outage on
 * MySQL is in degraded-mysql.test.ts.)
 */
import { expect } from "chai";
import { getLogger } from "sgridnext";
import { PollingChangeFeed } from "../../registry/server";
import type { KnexStore, Topic } from "../../registry/store";
import { type DialectCase, forEachDialect, freshStore, uniq } from "./helpers/db";
import { waitFor } from "./helpers/registry";

forEachDialect("registry change feed", (d: DialectCase) => {
  let store: KnexStore;
  let cleanup: () => Promise<void>;
  const feeds: PollingChangeFeed[] = [];
  before(async () => ({ store, cleanup } = await freshStore(d)));
  after(async () => {
    for (const f of feeds) await f.stop();
    await cleanup?.();
  });

  function feedOn(s: Pick<KnexStore, "revisions" | "safeUrl">, intervalMs: number): { feed: PollingChangeFeed; seen: Array<Set<Topic>> } {
    const feed = new PollingChangeFeed(s, { intervalMs, log: getLogger("test.changes") });
    const seen: Array<Set<Topic>> = [];
    feed.on("change", (t) => seen.push(t));
    feeds.push(feed);
    return { feed, seen };
  }

  it("emits the topics whose counters moved, not the ones that did not", async () => {
    const { feed, seen } = feedOn(store, 20);
    await feed.start();
    const start = { ...feed.revisions };
    await store.nodes.upsert({ name: uniq("n"), address: "10.0.0.1", agentVersion: "1" });
    await waitFor("a nodes change", () => seen.some((t) => t.has("nodes")));
    expect(seen.every((t) => !t.has("patches") && !t.has("configs"))).to.equal(true);
    expect(feed.revisions.nodes).to.be.greaterThan(start.nodes);
    await store.servers.create({ application: uniq("App"), name: "S", type: "binary" });
    await waitFor("a servers change", () => seen.some((t) => t.has("servers")));
    await feed.stop();
  });

  it("kick() polls at once instead of waiting for the next period", async () => {
    // A period far longer than the test: only kick() can deliver the change.
    const { feed, seen } = feedOn(store, 3_600_000);
    await feed.start();
    await store.servers.create({ application: uniq("App"), name: "S", type: "binary" });
    feed.kick();
    await waitFor("the kicked poll to report servers", () => seen.some((t) => t.has("servers")));
    await feed.stop();
    // Stopped: kick() does nothing and nothing more is reported.
    const polls = feed.stats.polls;
    feed.kick();
    await new Promise((r) => setImmediate(r));
    expect(feed.stats.polls).to.equal(polls);
  });

  it("keeps polling through database errors and then reports what moved meanwhile", async () => {
    let failing = false;
    const flaky = {
      safeUrl: store.safeUrl,
      revisions: {
        get: () => (failing ? Promise.reject(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" })) : store.revisions.get()),
      },
    };
    const { feed, seen } = feedOn(flaky, 10);
    await feed.start();
    failing = true;
    await waitFor("failed polls", () => feed.stats.failures >= 3);
    expect(feed.healthy).to.equal(false);
    await store.patches.create({ application: (await store.servers.create({ application: uniq("App"), name: "S", type: "binary" })).application, server: "S", sha256: "a".repeat(64), size: 1, uploader: "t", storageKey: "a".repeat(64) });
    expect(seen.some((t) => t.has("patches"))).to.equal(false);
    failing = false;
    await waitFor("the change made during the outage", () => seen.some((t) => t.has("patches") && t.has("servers")));
    expect(feed.healthy).to.equal(true);
    await feed.stop();
  });

  it("refuses to start when the first read fails (the registry must not start blind)", async () => {
    const broken = { safeUrl: "x", revisions: { get: () => Promise.reject(new Error("boom")) } };
    const feed = new PollingChangeFeed(broken, { log: getLogger("test.changes") });
    let err: unknown;
    await feed.start().catch((e) => (err = e));
    expect((err as Error).message).to.equal("boom");
    expect(() => new PollingChangeFeed(store, { intervalMs: 0, log: getLogger("t") })).to.throw(TypeError, /intervalMs/);
  });
});
