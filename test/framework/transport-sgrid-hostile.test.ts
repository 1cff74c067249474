/**
 * Hostile input on the sgrid server: each bad peer gets its connection
 * closed with a logged reason, while a well-behaved client on the same server
 * keeps streaming through all of it.
 */
import { expect } from "chai";
import { setTimeout as sleep } from "node:timers/promises";
import { Communicator, getLogger } from "sgridnext";
import { bindServant } from "sgridnext/internal/servant/dispatch";
import { SgridServerTransport } from "sgridnext/internal/transport/sgrid/index";
import { EchoRequest, SlowRequest } from "../gen/demo/echo";
import { EchoProxy } from "../gen/demo/echo.sgrid";
import { EchoImpl } from "../helpers/echo-servant";
import { RawClient, T, end, frame, hello, message, parseResponse, request, windowUpdate } from "./transport-sgrid-frames";

const SAY = "/demo.echo.v1.Echo/Say";
const CHAT = "/demo.echo.v1.Echo/Chat";
const sayPayload = (text: string): Uint8Array => EchoRequest.encode(EchoRequest.fromPartial({ text })).finish();

interface Logged { reason?: string; detail?: string }

describe("sgrid transport: hostile input", function () {
  this.timeout(30_000);
  let server: SgridServerTransport;
  const echo = new EchoImpl("hostile");
  let port: number;
  let comm: Communicator;
  let good: EchoProxy;
  let goodStream: Promise<number>;
  let stopGood = false;
  const logged: Logged[] = [];
  const log = getLogger("transport.sgrid") as unknown as Record<string, unknown>;
  const originalWarn = log.warn;
  const raws: RawClient[] = [];
  let closedBefore: ReturnType<SgridServerTransport["stats"]>["closed"] = {};

  function raw(options?: { read?: boolean }): RawClient {
    const r = new RawClient(port, options);
    raws.push(r);
    return r;
  }

  async function closedWith(reason: string, client: RawClient, timeoutMs = 3000): Promise<void> {
    expect(await client.waitClosed(timeoutMs), `connection closed (${reason})`).to.equal(true);
    const deadline = Date.now() + 1000;
    while (!logged.some((l) => l.reason === reason) && Date.now() < deadline) await sleep(10);
    expect(logged.map((l) => l.reason), "reasons logged during this test").to.include(reason);
    const key = reason as keyof typeof closedBefore;
    expect((server.stats().closed[key] ?? 0) - (closedBefore[key] ?? 0), "closes counted").to.be.at.least(1);
  }

  beforeEach(() => {
    logged.length = 0;
    closedBefore = server.stats().closed;
  });

  before(async () => {
    log.warn = (obj: Logged) => { logged.push(obj); };
    server = new SgridServerTransport({
      handshakeTimeoutMs: 300, frameTimeoutMs: 300, idleTimeoutMs: 800,
      maxFrameSize: 256 * 1024, initialWindow: 64 * 1024, maxPendingOutputBytes: 512 * 1024,
    });
    server.addService(bindServant(echo));
    port = await server.listen("127.0.0.1", 0);
    comm = new Communicator();
    good = comm.stringToProxy(EchoProxy, `sgrid://127.0.0.1:${port}`);
    // A well-behaved client streaming both ways for the whole suite (pinging keeps its connection alive).
    async function* forever(): AsyncIterable<{ text: string }> {
      for (let i = 0; !stopGood; i++) {
        yield { text: `good-${i}` };
        await sleep(5);
      }
    }
    goodStream = (async () => {
      let n = 0;
      for await (const r of good.chat(forever(), { timeoutMs: 120_000 })) {
        expect(r.text).to.equal(`good-${n}`);
        n++;
      }
      return n;
    })();
  });

  afterEach(async () => {
    for (const r of raws.splice(0)) r.destroy();
    // Other clients are unaffected: a fresh unary call works after every hostile case.
    expect((await good.say({ text: "still fine" })).text).to.equal("still fine");
  });

  after(async () => {
    stopGood = true;
    const n = await goodStream;
    expect(n).to.be.above(20);
    log.warn = originalWarn;
    comm.close();
    await server.shutdown(500);
  });

  it("a call past the deadline it sent ends DEADLINE_EXCEEDED, whatever the servant threw on seeing its signal", async () => {
    // A raw client has no deadline of its own: the answer is the server's. EchoImpl.slow throws CANCELLED when ctx.signal fires.
    const r = raw();
    r.send(hello(), request(1, { methodId: 1, path: "/demo.echo.v1.Echo/Slow", timeoutMs: 100, payload: new Uint8Array([8, 136, 39]) }));
    const res = parseResponse(await r.waitFrame((x) => x.type === T.RESPONSE && x.id === 1));
    expect(res).to.include({ status: 4, code: "DEADLINE_EXCEEDED" });
  });

  it("a timeout longer than one Node timer can wait (0xFE000000 ms, ~49 days) does not end the call at once", async () => {
    // setTimeout of more than 2^31 - 1 ms fires after 1 ms: the servant's ctx.signal fired as the call began.
    const r = raw();
    const payload = SlowRequest.encode(SlowRequest.fromPartial({ millis: 200, id: "far-deadline" })).finish();
    r.send(hello(), request(1, { methodId: 1, path: "/demo.echo.v1.Echo/Slow", timeoutMs: 0xfe000000, payload }));
    const res = parseResponse(await r.waitFrame((x) => x.type === T.RESPONSE && x.id === 1));
    expect(res.status, JSON.stringify(res)).to.equal(0);
    expect(echo.cancelled.has("far-deadline")).to.equal(false);
  });

  it("garbage bytes instead of a handshake: closed as bad_handshake", async () => {
    const r = raw();
    r.send(Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    await closedWith("bad_handshake", r);
  });

  it("an unknown frame type after the handshake: closed as protocol_error", async () => {
    const r = raw();
    r.send(hello(), frame(0x7f, 0, 1, Buffer.from("??")));
    await closedWith("protocol_error", r);
  });

  it("a frame cut short by the peer closing: closed as truncated_frame", async () => {
    const r = raw();
    const req = request(1, { path: SAY, payload: sayPayload("cut") });
    r.send(hello(), req.subarray(0, req.length - 3));
    await sleep(50);
    r.socket.end();
    await closedWith("truncated_frame", r);
  });

  it("a frame that never completes: closed as truncated_frame after the frame timeout", async () => {
    const r = raw();
    const req = request(1, { path: SAY, payload: sayPayload("stalled") });
    r.send(hello(), req.subarray(0, 7));
    await closedWith("truncated_frame", r);
  });

  it("a frame over the size limit: closed as frame_too_large before its body is read", async () => {
    const r = raw();
    const head = Buffer.alloc(10);
    head.writeUInt32BE(10 * 1024 * 1024, 0);
    head[4] = T.MESSAGE;
    r.send(hello(), head);
    await closedWith("frame_too_large", r);
  });

  it("a request message that does not decode while the servant waits for it: INVALID_ARGUMENT, and nothing stays in flight", async () => {
    const r = raw();
    r.send(hello(), request(1, { methodId: 3, path: "/demo.echo.v1.Echo/Sum" }), message(1, EchoRequest.encode(EchoRequest.fromPartial({ count: 2 })).finish()));
    // Let the servant take the first message and wait for the next one.
    await sleep(100);
    // A length-delimited field claiming 127 bytes that never come: protobuf cannot decode it.
    r.send(message(1, Uint8Array.from([0x0a, 0x7f, 0x01])));
    const f = parseResponse(await r.waitFrame((x) => x.type === T.RESPONSE && x.id === 1));
    expect(f).to.include({ status: 3, code: "INVALID_ARGUMENT" });
    expect(f.message).to.contain("could not be decoded");
    const deadline = Date.now() + 2000;
    // Only the good client's chat remains in flight.
    while (server.inflight() > 1 && Date.now() < deadline) await sleep(10);
    expect(server.inflight()).to.equal(1);
  });

  // gRPC's "request cardinality violation" (grpc/grpc doc/statuscodes.md: UNIMPLEMENTED, generated by the server;
  // grpc-js: "Received a second request message"): the call fails at once, the connection and its other calls go on.
  for (const [kind, path, payload] of [
    ["unary", "/demo.echo.v1.Echo/Slow", SlowRequest.encode(SlowRequest.fromPartial({ millis: 60_000, id: "second-message" })).finish()],
    // More replies than the client's window: the stream waits for credit, in flight, when the second message comes.
    ["server-streaming", "/demo.echo.v1.Echo/Repeat", EchoRequest.encode(EchoRequest.fromPartial({ text: "x".repeat(1000), count: 1_000_000 })).finish()],
  ] as const) {
    it(`a second request message on a ${kind} call: that call fails UNIMPLEMENTED at once, its servant's signal fires, the connection keeps serving`, async () => {
      const r = raw();
      const inflight = server.inflight();
      const closedEarly = echo.streamsClosedEarly;
      r.send(hello(), request(1, { methodId: 1, path, payload }));
      const deadline = Date.now() + 2000;
      while (server.inflight() === inflight && Date.now() < deadline) await sleep(5);
      expect(server.inflight(), "the call in flight").to.equal(inflight + 1);
      r.send(message(1, payload));
      const f = parseResponse(await r.waitFrame((x) => x.type === T.RESPONSE && x.id === 1, 1000));
      expect(f).to.include({ status: 12, code: "UNIMPLEMENTED" });
      expect(f.message).to.equal(`${path} received a second request message (a ${kind === "unary" ? "unary" : "server_stream"} method takes one)`);
      // The servant saw its signal and stopped: nothing of the call stays in flight.
      while (server.inflight() > inflight && Date.now() < deadline + 2000) await sleep(5);
      expect(server.inflight()).to.equal(inflight);
      if (kind === "unary") expect(echo.cancelled.has("second-message")).to.equal(true);
      else expect(echo.streamsClosedEarly).to.equal(closedEarly + 1);
      // Late frames of the failed call are dropped; another call on the same connection is served.
      r.send(message(1, payload), end(1), request(3, { methodId: 2, path: SAY, payload: sayPayload("still served") }));
      const ok = parseResponse(await r.waitFrame((x) => x.type === T.RESPONSE && x.id === 3));
      expect(ok.status).to.equal(0);
      expect(ok.payload!.toString()).to.include("still served");
      expect(r.isClosed()).to.equal(false);
      expect(r.frames.filter((x) => x.type === T.RESPONSE && x.id === 1)).to.have.length(1);
    });
  }

  it("an unknown method: answered UNIMPLEMENTED, and the connection keeps serving", async () => {
    const r = raw();
    r.send(hello(), request(1, { methodId: 1, path: "/demo.echo.v1.Echo/NoSuchMethod", payload: sayPayload("?") }));
    const f = await r.waitFrame((x) => x.type === T.RESPONSE && x.id === 1);
    expect(parseResponse(f)).to.include({ status: 12, code: "UNIMPLEMENTED" });
    r.send(request(3, { methodId: 2, path: SAY, payload: sayPayload("then a real one") }));
    const ok = parseResponse(await r.waitFrame((x) => x.type === T.RESPONSE && x.id === 3));
    expect(ok.status).to.equal(0);
    expect(ok.payload!.toString()).to.include("then a real one");
    expect(r.isClosed()).to.equal(false);
  });

  it("a client that connects and sends nothing: closed as handshake_timeout", async () => {
    const r = raw();
    await r.connected();
    await closedWith("handshake_timeout", r);
  });

  it("a client that goes silent after its handshake: closed as idle_timeout", async () => {
    const r = raw();
    r.send(hello());
    await r.waitFrame((x) => x.type === T.HELLO);
    await closedWith("idle_timeout", r);
  });

  it("a client that never reads: closed as slow_reader once its pending output passes the limit", async () => {
    const r = raw({ read: false });
    const text = "r".repeat(32 * 1024);
    r.send(hello());
    for (let id = 1; id <= 1200 && !r.isClosed(); id += 2) {
      r.send(request(id, { methodId: 1, path: id === 1 ? SAY : undefined, payload: sayPayload(text) }));
      if (id % 64 === 1) await sleep(1);
    }
    await closedWith("slow_reader", r, 10_000);
    expect(server.stats().connections).to.equal(1); // only the good client
  });

  it("a client that ignores flow control: closed as protocol_error once it overruns its window", async () => {
    const r = raw();
    // A small window for the replies, never replenished: the servant stalls, stops taking requests,
    // and the requests pile up past the server's 64 KiB window plus one frame.
    r.send(hello(16 * 1024 * 1024, 64 * 1024), request(1, { methodId: 1, path: CHAT }));
    const chunk = EchoRequest.encode(EchoRequest.fromPartial({ text: "o".repeat(8 * 1024) })).finish();
    for (let i = 0; i < 100 && !r.isClosed(); i++) r.send(message(1, chunk));
    await closedWith("protocol_error", r);
    expect(logged.some((l) => /overran/.test(l.detail ?? ""))).to.equal(true);
  });

  it("many streams that together queue more than the connection's budget: closed as inbound_limit", async () => {
    const tight = new SgridServerTransport({ maxFrameSize: 256 * 1024, initialWindow: 64 * 1024, maxBufferedBytes: 320 * 1024 });
    tight.addService(bindServant(new EchoImpl("tight")));
    const tightPort = await tight.listen("127.0.0.1", 0);
    try {
      const r = new RawClient(tightPort);
      raws.push(r);
      // Replies get a 64 KiB window, never replenished: each chat servant stalls after ~64 KiB and
      // leaves the rest of its requests queued. Each stream stays within its own 64 KiB window.
      r.send(hello(16 * 1024 * 1024, 64 * 1024));
      const chunk = EchoRequest.encode(EchoRequest.fromPartial({ text: "q".repeat(8 * 1024) })).finish();
      for (let c = 0; c < 10; c++) {
        const id = 1 + 2 * c;
        r.send(request(id, { methodId: 1, path: c === 0 ? CHAT : undefined }));
        for (let i = 0; i < 15; i++) r.send(message(id, chunk));
      }
      expect(await r.waitClosed(3000)).to.equal(true);
      expect(tight.stats().closed.inbound_limit).to.equal(1);
      expect(tight.stats().closed.protocol_error ?? 0).to.equal(0);
    } finally {
      await tight.shutdown(200);
    }
  });

  it("after GOAWAY a new call on the old connection is answered UNAVAILABLE without running", async () => {
    const other = new SgridServerTransport();
    const servant = new EchoImpl("goaway");
    other.addService(bindServant(servant));
    const otherPort = await other.listen("127.0.0.1", 0);
    const r = new RawClient(otherPort);
    raws.push(r);
    r.send(hello(), request(1, { methodId: 1, path: "/demo.echo.v1.Echo/Slow", payload: new Uint8Array([8, 200, 1]) }));
    await r.waitFrame((x) => x.type === T.HELLO);
    await sleep(20);
    const stopping = other.shutdown(3000);
    await r.waitFrame((x) => x.type === T.GOAWAY);
    r.send(request(3, { methodId: 2, path: SAY, payload: sayPayload("late") }), end(3), windowUpdate(1, 1));
    const late = parseResponse(await r.waitFrame((x) => x.type === T.RESPONSE && x.id === 3));
    expect(late).to.include({ status: 14, code: "UNAVAILABLE" });
    expect(servant.calls).to.equal(0);
    expect(parseResponse(await r.waitFrame((x) => x.type === T.RESPONSE && x.id === 1)).status).to.equal(0);
    await stopping;
    expect(await r.waitClosed()).to.equal(true);
  });
});
