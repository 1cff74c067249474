import { expect } from "chai";
import { messageCodec, SHARED_WRITER_MAX_BYTES } from "sgridnext/internal/codec";
import { EchoReply, EchoRequest } from "../gen/demo/echo";
import { Value } from "../gen/google/protobuf/struct";
import { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";
import { InstanceObserved, InstanceUsage, ObservedBatch } from "sgridnext/gen/sgrid/registry/v1/node";

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

  it("decodes messages that are views into one buffer (as frames of one socket chunk), in any order, each to its own content", () => {
    const parts = [req.encode({ text: "a", count: 1 }), reply.encode({ text: "b", metadata: { k: "v" }, peer: "p" }), req.encode({ text: "ccc", count: 3 })];
    const chunk = Buffer.concat([Buffer.from([0xff, 0xff]), ...parts.map((p) => Buffer.from(p)), Buffer.from([0x08, 0x96, 0x01])]);
    const views: Uint8Array[] = [];
    let at = 2;
    for (const p of parts) {
      views.push(new Uint8Array(chunk.buffer, chunk.byteOffset + at, p.length));
      at += p.length;
    }
    expect(req.decode(views[2]!)).to.include({ text: "ccc", count: 3 });
    expect(reply.decode(views[1]!)).to.deep.include({ text: "b", metadata: { k: "v" }, peer: "p" });
    expect(req.decode(views[0]!)).to.include({ text: "a", count: 1 });
    expect(req.decode(Buffer.from(parts[0]!))).to.include({ text: "a", count: 1 });
  });

  it("refuses a message whose last field is cut short even when the bytes after it in the buffer would complete it", () => {
    const value = messageCodec(Value);
    const whole = Buffer.from(value.encode({ kind: { $case: "numberValue", value: 1.5 } }));
    expect(value.decode(whole).kind).to.deep.equal({ $case: "numberValue", value: 1.5 });
    // The double's 8 bytes cut to 3; the rest follows in the same buffer, as the next frame's bytes would.
    const chunk = Buffer.concat([whole, Buffer.alloc(16, 0x41)]);
    const cut = new Uint8Array(chunk.buffer, chunk.byteOffset, 4);
    expect(() => value.decode(cut)).to.throw(RangeError);
    expect(() => value.decode(Buffer.from(cut))).to.throw(RangeError);
    const cutString = Buffer.concat([Buffer.from(req.encode({ text: "hello world" })).subarray(0, 6), Buffer.from("tail bytes")]);
    expect(() => req.decode(new Uint8Array(cutString.buffer, cutString.byteOffset, 6))).to.throw();
  });

  it("encodeTransient gives the same bytes as encode, valid until the next encode", () => {
    const t = req.encodeTransient!({ text: "transient", count: 5 });
    expect(Buffer.from(t).equals(Buffer.from(req.encode({ text: "transient", count: 5 })))).to.equal(true);
    const t2 = req.encodeTransient!({ text: "next", count: 6 });
    expect(req.decode(t2)).to.include({ text: "next", count: 6 });
    const big = "b".repeat(SHARED_WRITER_MAX_BYTES + 1);
    expect(req.decode(req.encodeTransient!({ text: big })).text.length).to.equal(big.length);
    expect(req.decode(req.encodeTransient!({ text: "after big" })).text).to.equal("after big");
  });
});
describe("messageCodec encodeAt (straight into a frame's buffer)", () => {
  const req = messageCodec(EchoRequest);
  const reply = messageCodec(EchoReply);
  const bytesOf = (got: number | Uint8Array, target: Buffer, offset: number): Buffer =>
    (typeof got === "number" ? target.subarray(offset, got) : Buffer.from(got));

  it("writes encode's bytes at the offset and leaves the bytes before it alone", () => {
    const target = Buffer.alloc(4096, 0xee);
    const message = { text: "y".repeat(300), metadata: { a: "1", ["long key ".repeat(20)]: "v".repeat(200) }, peer: "p" };
    const got = reply.encodeAt!(message, target, 17);
    expect(got).to.be.a("number");
    expect(bytesOf(got, target, 17).equals(Buffer.from(reply.encode(message)))).to.equal(true);
    expect(target.subarray(0, 17).every((b) => b === 0xee)).to.equal(true);
  });

  it("gives a message that does not fit before the target's end the same bytes, whatever room was left", () => {
    const message = { text: "x".repeat(150), metadata: { k: "w".repeat(140), j: "\u4e16".repeat(30) }, peer: "peer" };
    const want = Buffer.from(reply.encode(message));
    for (let room = 0; room <= want.length + 8; room++) {
      const target = Buffer.alloc(33 + room);
      const got = reply.encodeAt!(message, target, 33);
      expect(bytesOf(got, target, 33).equals(want), `room ${room}`).to.equal(true);
    }
    // The writer is its own again: encode and encodeTransient are unaffected.
    expect(req.decode(req.encode({ text: "after", count: 2 }))).to.include({ text: "after", count: 2 });
    expect(Buffer.from(req.encodeTransient!({ text: "t", count: 3 })).equals(Buffer.from(req.encode({ text: "t", count: 3 })))).to.equal(true);
  });

  it("leaves the shared writer working after an encode that throws inside the target", () => {
    const target = Buffer.alloc(1024);
    expect(() => req.encodeAt!({ text: "bad", count: Symbol("no") as unknown as number }, target, 5)).to.throw();
    const got = req.encodeAt!({ text: "after", count: 7 }, target, 5);
    expect(req.decode(bytesOf(got, target, 5))).to.include({ text: "after", count: 7 });
    expect(req.decode(req.encode({ text: "plain", count: 8 }))).to.include({ text: "plain", count: 8 });
  });
});

describe("messageCodec strings and ranges (Buffer's UTF-8 routines)", () => {
  const req = messageCodec(EchoRequest);
  // A deterministic generator, so a failure names a reproducible case.
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const alphabet = ["a", "Z", "0", " ", "\u00e9", "\u00ff", "\u4e16", "\ud83d\ude00", "\ufeff", "\ud800", "\udfff", "\u0000"];
  const randomText = (): string => Array.from({ length: rnd(200) }, () => alphabet[rnd(alphabet.length)]!).join("");

  it("encodes text of every kind (multi-byte, lone surrogates, a BOM, any length) to the bytes ts-proto's own writer makes", () => {
    for (let i = 0; i < 2000; i++) {
      // Every other text all ASCII (the codec copies those over 32 characters with latin1Write), some past 32.
      const text = i % 2 === 0 ? randomText() : Array.from({ length: rnd(200) }, () => String.fromCharCode(rnd(128))).join("");
      const ours = Buffer.from(req.encode({ text, count: i }));
      const theirs = Buffer.from(EchoRequest.encode(EchoRequest.fromPartial({ text, count: i })).finish());
      expect(ours.equals(theirs), `text ${JSON.stringify(text)}`).to.equal(true);
    }
  });

  it("decodes any bytes in a string field (invalid UTF-8 too) as the library's TextDecoder does, from a view or a range of a larger chunk", () => {
    for (let i = 0; i < 2000; i++) {
      const body = Buffer.from(Array.from({ length: rnd(120) }, () => (rnd(3) === 0 ? rnd(256) : 0x61 + rnd(26))));
      const msg = Buffer.concat([Buffer.from([0x0a]), varint(body.length), body, Buffer.from([0x10, i & 0x7f])]);
      const expected = EchoRequest.decode(new Uint8Array(msg));
      const chunk = Buffer.concat([Buffer.from([1, 2, 3]), msg, Buffer.from([4, 5])]);
      expect(req.decode(chunk.subarray(3, 3 + msg.length))).to.deep.equal(expected);
      expect(req.decodeRange!(chunk, 3, 3 + msg.length)).to.deep.equal(expected);
    }
  });

  it("refuses a range whose string runs past its end, as decode refuses the same view", () => {
    const msg = Buffer.concat([Buffer.from([0x0a, 50]), Buffer.alloc(50, 0x61)]);
    const chunk = Buffer.concat([msg, Buffer.alloc(10, 0x62)]);
    expect(() => req.decode(chunk.subarray(0, 40))).to.throw(RangeError);
    expect(() => req.decodeRange!(chunk, 0, 40)).to.throw(RangeError);
  });
});

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}


describe("generated 64-bit reads (forceLong=number, sgrid gen's safeVarint)", () => {
  // InstanceUsage: uint64 instance_id = 1, uint64 memory_bytes = 2; InstanceObserved: int64 started_at.
  const usage = (id: bigint | number, mem: bigint | number = 0) => new BinaryWriter().uint32(8).uint64(id).uint32(16).uint64(mem).finish();
  const observedAt = (v: bigint) => new BinaryWriter().uint32(8).uint64(7).uint32((findStartedAtField() << 3) | 0).int64(v).finish();

  it("decodes every safe value the library's BigInt path decodes, at every varint length, and keeps the reader's position", () => {
    const values: bigint[] = [0n, 1n, 127n, 128n, 300n, 16383n, 16384n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 35n, 2n ** 42n + 5n, 2n ** 49n - 1n, 2n ** 49n, 2n ** 52n, 2n ** 53n - 1n];
    for (let k = 0; k < 200; k++) values.push(BigInt(Math.floor(Math.random() * Number.MAX_SAFE_INTEGER)));
    for (const v of values) {
      const got = InstanceUsage.decode(usage(v, v));
      expect(got, String(v)).to.deep.equal({ instanceId: Number(v), memoryBytes: Number(v), cpuCoresUsed: 0 });
    }
    // Two messages in one buffer, read one after the other by a length: positions are exact.
    const both = new BinaryWriter().uint32(10).fork().uint32(8).uint64(2n ** 40n).join().uint32(10).fork().uint32(8).uint64(5).join().finish();
    const list = ObservedBatch.decode(both);
    expect(list.instances.map((i) => i.instanceId)).to.deep.equal([2 ** 40, 5]);
  });

  it("makes no BigInt for a safe value (the library's 64-bit read runs only for the others)", () => {
    const proto = BinaryReader.prototype as unknown as { uint64(): bigint };
    const original = proto.uint64;
    let calls = 0;
    proto.uint64 = function (this: BinaryReader) {
      calls++;
      return original.call(this);
    };
    try {
      InstanceUsage.decode(usage(2n ** 52n, 123n));
      expect(calls).to.equal(0);
      expect(() => InstanceUsage.decode(usage(2n ** 60n))).to.throw(/MAX_SAFE_INTEGER/);
      expect(calls).to.equal(1);
    } finally {
      proto.uint64 = original;
    }
  });

  it("fails as before for a value past 2^53, an unterminated varint, or a truncated message; negative int64s decode", () => {
    expect(() => InstanceUsage.decode(usage(2n ** 53n))).to.throw(/larger than Number.MAX_SAFE_INTEGER/);
    expect(() => InstanceUsage.decode(usage(2n ** 64n - 1n))).to.throw(/larger than Number.MAX_SAFE_INTEGER/);
    expect(() => InstanceUsage.decode(Uint8Array.of(8, 0x80, 0x80))).to.throw(/premature EOF|invalid varint/i);
    expect(() => InstanceUsage.decode(Uint8Array.of(8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01))).to.throw();
    for (const v of [-1n, -(2n ** 40n), -(2n ** 53n - 1n)]) {
      expect(InstanceObserved.decode(observedAt(v)).startedAt, String(v)).to.equal(Number(v));
    }
    expect(() => InstanceObserved.decode(observedAt(-(2n ** 53n)))).to.throw(/smaller than Number.MIN_SAFE_INTEGER/);
  });
});

/** The field number of InstanceObserved.started_at, from what its encoder writes (no hard-coded number to go stale). */
function findStartedAtField(): number {
  const bytes = InstanceObserved.encode(InstanceObserved.fromPartial({ startedAt: 1 })).finish();
  const r = new BinaryReader(bytes);
  const tag = r.uint32();
  return tag >>> 3;
}
