/**
 * Fuzzing the sgrid server for a fixed time with random bytes and with valid
 * frames mutated at random (flipped bytes, cut, wrong lengths, types, ids,
 * flags), many connections at once, while a well-behaved client keeps
 * calling. The server must not crash, must keep serving the good client,
 * and must end with no leaked connection or call.
 *
 * SGRID_FUZZ_MS sets the duration (default 5000), SGRID_FUZZ_SEED replays a run,
 * SGRID_FUZZ_VERBOSE=1 prints what happened.
 */
import { expect } from "chai";
import * as net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { Communicator } from "sgridnext";
import { bindServant } from "sgridnext/internal/servant/dispatch";
import { SgridServerTransport } from "sgridnext/internal/transport/sgrid/index";
import { EchoRequest, SlowRequest } from "../gen/demo/echo";
import { EchoProxy } from "../gen/demo/echo.sgrid";
import { EchoImpl } from "../helpers/echo-servant";
import { cancel, end, frame, hello, message, ping, request, windowUpdate } from "./transport-sgrid-frames";

const DURATION_MS = Number(process.env.SGRID_FUZZ_MS ?? 5000);
const SEED = Number(process.env.SGRID_FUZZ_SEED ?? (Date.now() % 0x7fffffff));
const PARALLEL = 8;

/** mulberry32: small, seedable, good enough to pick mutations. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const echo = (text: string, count = 0): Uint8Array => EchoRequest.encode(EchoRequest.fromPartial({ text, count })).finish();
const P = (m: string) => `/demo.echo.v1.Echo/${m}`;

function corpus(): Buffer[] {
  return [
    request(1, { methodId: 1, path: P("Say"), payload: echo("hi"), metadata: { "x-a": "b" } }),
    request(3, { methodId: 1, payload: echo("again") }),
    request(5, { methodId: 2, path: P("Repeat"), payload: echo("r", 1_000_000) }),
    request(7, { methodId: 3, path: P("Chat") }),
    message(7, echo("chat")),
    end(7),
    request(9, { methodId: 4, path: P("Sum") }),
    message(9, echo("", 5)),
    end(9),
    cancel(5),
    windowUpdate(5, 1 << 20),
    ping(),
    request(11, { path: P("Slow"), timeoutMs: 100, payload: SlowRequest.encode(SlowRequest.fromPartial({ millis: 50, id: "f" })).finish() }),
    request(13, { methodId: 5, path: P("Fail"), payload: new Uint8Array([10, 3, 65, 66, 67, 24, 1]) }),
    request(15, { methodId: 1, payload: new Uint8Array([0xff, 0xff, 0xff, 0xff]) }),
  ];
}

function mutate(f: Buffer, rnd: () => number): Buffer {
  const b = Buffer.from(f);
  const pick = rnd();
  const at = (n: number) => Math.floor(rnd() * n);
  if (pick < 0.3) {
    for (let i = 0, n = 1 + at(5); i < n; i++) b[at(b.length)] = at(256);
    return b;
  }
  if (pick < 0.45) return b.subarray(0, at(b.length));
  if (pick < 0.55) { b.writeUInt32BE(at(0x7fffffff), 0); return b; }
  if (pick < 0.65) { b[4] = at(256); return b; }
  if (pick < 0.75) { b[5] = at(256); return b; }
  if (pick < 0.85) { b.writeUInt32BE(at(64), 6); return b; }
  if (pick < 0.92) return frame(1 + at(12), at(256), at(64), randomBytes(at(512), rnd));
  return Buffer.concat([b, b]);
}

function randomBytes(n: number, rnd: () => number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256);
  return b;
}

describe("sgrid transport: fuzzing", function () {
  this.timeout(DURATION_MS + 60_000);
  let server: SgridServerTransport;
  let comm: Communicator;
  const sockets = new Set<net.Socket>();

  after(async () => {
    for (const s of sockets) s.destroy();
    comm?.close();
    await server?.shutdown(500);
  });

  it(`survives ${DURATION_MS} ms of random and mutated frames and still serves a well-behaved client (seed ${SEED})`, async () => {
    server = new SgridServerTransport({
      handshakeTimeoutMs: 200, frameTimeoutMs: 200, idleTimeoutMs: 1000,
      maxFrameSize: 256 * 1024, initialWindow: 64 * 1024, maxPendingOutputBytes: 1024 * 1024, maxConcurrentCalls: 100,
    });
    server.addService(bindServant(new EchoImpl("fuzzed")));
    const port = await server.listen("127.0.0.1", 0);
    comm = new Communicator();
    const good = comm.stringToProxy(EchoProxy, `sgrid://127.0.0.1:${port}`);
    const rnd = prng(SEED);
    const frames = corpus();
    let sessions = 0;
    let sent = 0;

    async function session(): Promise<void> {
      const s = net.connect({ host: "127.0.0.1", port });
      sockets.add(s);
      s.on("error", () => undefined);
      s.on("data", () => undefined);
      s.once("close", () => sockets.delete(s));
      const out: Buffer[] = [];
      if (rnd() < 0.2) {
        out.push(randomBytes(1 + Math.floor(rnd() * 4096), rnd));
      } else {
        out.push(rnd() < 0.9 ? hello() : mutate(hello(), rnd));
        for (let i = 0, n = 1 + Math.floor(rnd() * 30); i < n; i++) {
          const f = frames[Math.floor(rnd() * frames.length)]!;
          out.push(rnd() < 0.5 ? f : mutate(f, rnd));
        }
      }
      const bytes = Buffer.concat(out);
      sent += bytes.length;
      // Written in random pieces, some after a pause, to cut frames at every place.
      for (let off = 0; off < bytes.length && !s.destroyed;) {
        const n = 1 + Math.floor(rnd() * Math.min(2048, bytes.length - off));
        s.write(bytes.subarray(off, off + n));
        off += n;
        if (rnd() < 0.1) await sleep(Math.floor(rnd() * 20));
      }
      await sleep(Math.floor(rnd() * 100));
      const how = rnd();
      if (how < 0.4) s.destroy();
      else if (how < 0.8) s.end();
      // else: left open for the server's timeouts to deal with (destroyed at the end at the latest)
      sessions++;
    }

    let goodCalls = 0;
    let stop = false;
    const goodLoop = (async () => {
      while (!stop) {
        const r = await good.say({ text: `ok-${goodCalls}` });
        expect(r.text).to.equal(`ok-${goodCalls}`);
        goodCalls++;
        await sleep(20);
      }
    })();

    const endAt = Date.now() + DURATION_MS;
    await Promise.all(Array.from({ length: PARALLEL }, async () => {
      while (Date.now() < endAt) await session();
    }));
    for (const s of sockets) s.destroy();

    // Back to the good client only: nothing leaked. The good client keeps calling meanwhile: idle
    // for longer than the server's 1 s idle timeout, its connection would be closed too.
    const settleBy = Date.now() + 5000;
    while (server.stats().connections > 1 && Date.now() < settleBy) await sleep(20);
    stop = true;
    await goodLoop;
    while (server.inflight() > 0 && Date.now() < settleBy) await sleep(5);
    const stats = server.stats();
    const summary = `seed ${SEED}: ${sessions} sessions, ${sent} bytes, closes ${JSON.stringify(stats.closed)}`;
    if (process.env.SGRID_FUZZ_VERBOSE) console.log(`      ${summary}, good calls ${goodCalls}`);
    expect(sessions, summary).to.be.above(100);
    expect(goodCalls, summary).to.be.above(DURATION_MS / 100);
    expect(stats.connections, summary).to.equal(1);
    expect(server.inflight(), summary).to.equal(0);
    expect((stats.closed.bad_handshake ?? 0) + (stats.closed.protocol_error ?? 0), summary).to.be.above(0);

    // Every kind of call still works afterwards.
    expect((await good.say({ text: "after" })).text).to.equal("after");
    let n = 0;
    for await (const _ of good.repeat({ text: "x", count: 1000 })) n++;
    expect(n).to.equal(1000);
    async function* three() { yield { count: 1 }; yield { count: 2 }; yield { count: 3 }; }
    expect(await good.sum(three())).to.deep.include({ total: 6, count: 3 });
    const echoed: string[] = [];
    for await (const r of good.chat(three())) echoed.push(String(r.index));
    expect(echoed).to.deep.equal(["0", "1", "2"]);
  });
});
