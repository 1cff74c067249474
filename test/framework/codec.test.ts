import { expect } from "chai";
import { messageCodec, SHARED_WRITER_MAX_BYTES } from "sgridnext/internal/codec";
import { EchoReply, EchoRequest } from "../gen/demo/echo";

describe("messageCodec (shared writer)", () => {
  const req = messageCodec(EchoRequest);
  const reply = messageCodec(EchoReply);

  it("returns independent byte arrays that decode to what was encoded", () => {
    const a = req.encode({ text: "first", count: 1 });
    const aBytes = Buffer.from(a);
    const b = req.encode({ text: "second", count: 2 });
    expect(req.decode(a)).to.include({ text: "first", count: 1 });
    expect(req.decode(b)).to.include({ text: "second", count: 2 });
    expect(Buffer.from(a).equals(aBytes), "encoding b changed a's bytes").to.equal(true);
  });

  it("keeps every message's bytes intact across many encodes (the bytes share pooled memory)", () => {
    const all = Array.from({ length: 500 }, (_, i) => ({ text: `message ${i} ${"x".repeat(i % 97)}`, count: i }));
    const encoded = all.map((m) => req.encode(m));
    encoded.forEach((bytes, i) => expect(req.decode(bytes)).to.include(all[i]));
  });

  it("interleaves codecs of different messages, nested messages and maps included", () => {
    const r1 = reply.encode({ text: "x", metadata: { a: "1", b: "2" }, peer: "p" });
    const q1 = req.encode({ text: "y", count: 3 });
    expect(reply.decode(r1)).to.deep.include({ text: "x", metadata: { a: "1", b: "2" }, peer: "p" });
    expect(req.decode(q1)).to.include({ text: "y", count: 3 });
  });

  it("keeps working after an encode that throws midway", () => {
    expect(() => req.encode({ text: "bad", count: Symbol("no") as unknown as number })).to.throw();
    const ok = req.encode({ text: "after", count: 7 });
    expect(req.decode(ok)).to.include({ text: "after", count: 7 });
  });

  it("encodes a message larger than the shared buffer cap, then small ones, correctly", () => {
    const big = "z".repeat(SHARED_WRITER_MAX_BYTES + 10);
    const bytes = req.encode({ text: big });
    expect(req.decode(bytes).text.length).to.equal(big.length);
    expect(req.decode(req.encode({ text: "small" })).text).to.equal("small");
  });
});
