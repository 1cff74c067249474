/**
 * The native transport's receiving end of a stream (InboundStream), read by
 * push (eachMessage): every message in order whatever the queue's length
 * when the reading starts or the stream ends, credit returned for exactly
 * the bytes taken and the connection's shared budget back to 0, a handler
 * that returns a stray value keeps reading, one that throws stops it (the
 * consumer is gone, as after return()), a decode failure rejects with the
 * owner's error, and a local failure drops what is queued.
 */
import { expect } from "chai";
import { eachMessage } from "sgridnext";
import { InboundStream, Pushed, type InboundBudget, type InboundOwner } from "sgridnext/internal/transport/sgrid/inbound-stream";
import { MESSAGE_COST_OVERHEAD } from "sgridnext/internal/transport/sgrid/protocol";

const WINDOW = 1 << 20;

class Owner implements InboundOwner {
  granted = 0;
  gone = 0;
  grant(increment: number): void {
    this.granted += increment;
  }
  consumerGone(): void {
    this.gone++;
  }
  decodeFailed(err: unknown): Error {
    return new Error(`decode failed: ${(err as Error).message}`);
  }
}

/** A stream of text messages (UTF-8 bytes; "bad" fails to decode). */
function textStream(window = WINDOW, budget?: InboundBudget, limit = 1 << 30): { s: InboundStream<string>; owner: Owner } {
  const owner = new Owner();
  const decode = (b: Uint8Array): string => {
    const text = Buffer.from(b).toString();
    if (text === "bad") throw new Error("not a message");
    return text;
  };
  return { s: new InboundStream<string>(decode, window, limit, owner, budget), owner };
}

const msg = (text: string) => new Uint8Array(Buffer.from(text));

describe("framework/transport/sgrid InboundStream read by push", () => {
  it("delivers a long queue in order, after an end that came before the reading (no recursion per message)", async () => {
    const budget: InboundBudget = { used: 0, limit: 1 << 30 };
    const { s, owner } = textStream(1 << 30, budget);
    const n = 50_000;
    for (let i = 0; i < n; i++) expect(s.push(msg(`m${i}`))).to.equal(Pushed.OK);
    s.end();
    const got: string[] = [];
    await eachMessage(s, (m) => void got.push(m));
    expect(got).to.have.length(n);
    expect(got[0]).to.equal("m0");
    expect(got[n - 1]).to.equal(`m${n - 1}`);
    expect(budget.used).to.equal(0);
    expect(owner.gone).to.equal(0);
  });

  it("after a handler's promise, delivers what queued meanwhile; credit returned equals the bytes taken; then the end", async () => {
    const budget: InboundBudget = { used: 0, limit: 1 << 30 };
    const window = 64 * 1024;
    const { s, owner } = textStream(window, budget);
    const got: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const reading = eachMessage(s, (m) => {
      got.push(m);
      return m === "first" ? held : undefined;
    });
    s.push(msg("first"));
    expect(got).to.deep.equal(["first"]); // handed over in the push that brought it
    const texts = Array.from({ length: 20_000 }, (_, i) => `q${i}`);
    for (const t of texts) expect(s.push(msg(t))).to.equal(Pushed.OK);
    expect(got).to.have.length(1); // held back while the promise is pending
    expect(budget.used).to.be.greaterThan(0);
    release();
    await held;
    await Promise.resolve();
    expect(got).to.deep.equal(["first", ...texts]);
    expect(budget.used).to.equal(0);
    const bytes = ["first", ...texts].reduce((n, t) => n + t.length + MESSAGE_COST_OVERHEAD, 0);
    // Credit goes back in steps of at least half the window; what is still unreturned is less than that.
    expect(owner.granted).to.be.at.most(bytes).and.greaterThan(bytes - window / 2);
    s.end();
    await reading;
  });

  it("keeps reading when a handler returns a value that is not a promise", async () => {
    const { s } = textStream();
    const got: string[] = [];
    const reading = eachMessage(s, ((m: string) => got.push(m)) as never);
    expect(() => s.push(msg("a"))).to.not.throw();
    s.push(msg("b"));
    s.end();
    await reading;
    expect(got).to.deep.equal(["a", "b"]);
  });

  it("stops at a handler's throw or rejection: the consumer is gone and later messages are dropped with their credit", async () => {
    for (const how of ["throw", "reject"] as const) {
      const budget: InboundBudget = { used: 0, limit: 1 << 30 };
      const { s, owner } = textStream(WINDOW, budget);
      const got: string[] = [];
      const reading = eachMessage(s, (m) => {
        got.push(m);
        if (m === "stop") {
          if (how === "throw") throw new Error("refused");
          return Promise.reject(new Error("refused"));
        }
        return undefined;
      });
      s.push(msg("a"));
      s.push(msg("stop"));
      const err = await reading.then(() => undefined, (e: Error) => e);
      expect(err?.message, how).to.equal("refused");
      expect(owner.gone, how).to.equal(1);
      s.push(msg("late"));
      expect(got, how).to.deep.equal(["a", "stop"]);
      expect(budget.used, how).to.equal(0);
    }
  });

  it("rejects with the owner's error when a message does not decode, queued or not", async () => {
    for (const queued of [false, true]) {
      const { s } = textStream();
      const got: string[] = [];
      if (queued) {
        s.push(msg("a"));
        s.push(msg("bad"));
        s.push(msg("c"));
      }
      const reading = eachMessage(s, (m) => void got.push(m));
      if (!queued) {
        s.push(msg("a"));
        s.push(msg("bad"));
      }
      const err = await reading.then(() => undefined, (e: Error) => e);
      expect(err?.message).to.equal("decode failed: not a message");
      expect(got).to.deep.equal(["a"]);
    }
  });

  it("a local failure (dropQueued) rejects at once with what was queued dropped; a peer's error comes after the queue", async () => {
    const budget: InboundBudget = { used: 0, limit: 1 << 30 };
    const local = textStream(WINDOW, budget);
    let release!: () => void;
    const got: string[] = [];
    const reading = eachMessage(local.s, (m) => {
      got.push(m);
      return m === "a" ? new Promise<void>((r) => (release = r)) : undefined;
    });
    local.s.push(msg("a"));
    local.s.push(msg("b"));
    local.s.end(new Error("cancelled"), true);
    release();
    expect((await reading.then(() => undefined, (e: Error) => e))?.message).to.equal("cancelled");
    expect(got).to.deep.equal(["a"]);
    expect(budget.used).to.equal(0);

    const peer = textStream();
    peer.s.push(msg("x"));
    peer.s.push(msg("y"));
    peer.s.end(new Error("peer failed"));
    const seen: string[] = [];
    const err = await eachMessage(peer.s, (m) => void seen.push(m)).then(() => undefined, (e: Error) => e);
    expect(seen).to.deep.equal(["x", "y"]);
    expect(err?.message).to.equal("peer failed");
  });

  it("holds a sender that overruns its window while the handler waits to the window, as an unread iterator does", () => {
    const { s } = textStream(1024, undefined, 2048);
    void eachMessage(s, () => new Promise<void>(() => undefined));
    s.push(msg("held"));
    let pushed = Pushed.OK;
    let n = 0;
    while (pushed === Pushed.OK && n < 1000) pushed = s.push(msg(`m${n++}`));
    expect(pushed).to.equal(Pushed.OVER_WINDOW);
    expect(n).to.be.lessThan(200);
  });

  it("refuses a second reader, and the iterator while it is read by push", async () => {
    const { s } = textStream();
    const reading = eachMessage(s, () => undefined);
    const second = await eachMessage(s, () => undefined).then(() => undefined, (e: Error) => e);
    expect(second).to.be.instanceOf(TypeError);
    const next = await s.next().then(() => undefined, (e: Error) => e);
    expect(next).to.be.instanceOf(TypeError);
    s.discard();
    await reading;
  });
});
