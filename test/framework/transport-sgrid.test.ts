/**
 * The native `sgrid` transport, what is specific to it: multiplexing, flow
 * control, cancellation both ways, deadlines, frame limits, TLS, serving one
 * Obj on gRPC and sgrid at once, reconnecting. (The protocol-parameterised
 * proxy/servant suite in rpc.test.ts covers the rest on every transport.)
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import {
  Application, CancelledError, Communicator, DeadlineExceededError, InternalError, InvalidArgumentError, ResourceExhaustedError, UnavailableError,
  Invoker, getLogger, makeEndpoint, transports, type DeepPartial, type Endpoint, type ServerContext,
} from "sgridnext";
import { SgridChannel, sgridClientFactory, sgridServerFactory } from "sgridnext/internal/transport/sgrid/index";
import { EchoProxy, EchoService } from "../gen/demo/echo.sgrid";
import type { EchoReply, EchoRequest } from "../gen/demo/echo";
import { EchoImpl } from "../helpers/echo-servant";
import { FIXTURES } from "../helpers/paths";
import { freePort } from "../helpers/processes";
import { waitFor } from "../helpers/wait";

/** The fixture servant, plus counters the flow-control and cancellation tests read. */
class TrackingEcho extends EchoImpl {
  produced = 0;
  protocols: string[] = [];
  requestsSeen = 0;

  override async say(request: EchoRequest, ctx: ServerContext): Promise<DeepPartial<EchoReply>> {
    this.protocols.push(ctx.protocol);
    return super.say(request, ctx);
  }

  override async *repeat(request: EchoRequest, ctx: ServerContext): AsyncIterable<DeepPartial<EchoReply>> {
    for (let i = 0; i < request.count && !ctx.signal.aborted; i++) {
      this.produced++;
      if (request.envelope?.note === "fail-at-3" && i === 3) throw new ResourceExhaustedError("stopped at 3", { at: 3 });
      yield { text: request.text, index: i };
    }
  }

  /** Echoes until a request says "stop", then ends the call while the caller may still be sending. */
  override async *chat(requests: AsyncIterable<EchoRequest>): AsyncIterable<DeepPartial<EchoReply>> {
    let i = 0;
    for await (const r of requests) {
      this.requestsSeen++;
      if (r.text === "stop") return;
      yield { text: r.text, index: i++ };
    }
  }
}

async function* generate<T>(n: number, make: (i: number) => T, state?: { produced: number; closed: boolean }): AsyncGenerator<T> {
  try {
    for (let i = 0; i < n; i++) {
      if (state) state.produced++;
      yield make(i);
    }
  } finally {
    if (state) state.closed = true;
  }
}


const caught = (p: Promise<unknown>): Promise<unknown> => p.then(() => undefined, (e: unknown) => e);

describe("sgrid transport", function () {
  this.timeout(30_000);
  let app: Application;
  let servant: TrackingEcho;
  let comm: Communicator;
  let port: number;
  let proxy: EchoProxy;

  before(async () => {
    servant = new TrackingEcho("native");
    app = new Application({ app: "Test", server: "EchoServer", handleSignals: false, adapters: { EchoObj: "sgrid://127.0.0.1:0" } });
    app.addServant("EchoObj", servant);
    await app.start();
    port = app.adapters()[0]!.endpoint.port;
    comm = new Communicator();
    proxy = comm.stringToProxy(EchoProxy, `Test.EchoServer.EchoObj@sgrid -h 127.0.0.1 -p ${port}`);
  });

  after(async () => {
    comm.close();
    await app.stop(1000);
  });

  it("runs all four kinds of call at once over one multiplexed connection", async () => {
    const [unary, streamed, summed, chatted] = await Promise.all([
      proxy.say({ text: "u" }, { metadata: { "x-trace": "t1" } }),
      (async () => { const out: number[] = []; for await (const r of proxy.repeat({ text: "s", count: 5 })) out.push(r.index); return out; })(),
      proxy.sum(generate(4, (i) => ({ count: i + 1 }))),
      (async () => { const out: string[] = []; for await (const r of proxy.chat(generate(3, (i) => ({ text: `c${i}` })))) out.push(r.text); return out; })(),
    ]);
    expect(unary.text).to.equal("u");
    expect(unary.metadata["x-trace"]).to.equal("t1");
    expect(streamed).to.deep.equal([0, 1, 2, 3, 4]);
    expect(summed).to.deep.include({ total: 10, count: 4 });
    expect(chatted).to.deep.equal(["c0", "c1", "c2"]);
    const conns = app.connections().filter((c) => c.protocol === "sgrid");
    expect(conns).to.have.length(1);
    expect(unary.peer).to.equal(conns[0]!.peer);
  });

  it("streams 10,000 messages each way", async () => {
    let n = 0;
    for await (const r of proxy.repeat({ text: "x", count: 10_000 })) expect(r.index).to.equal(n++);
    expect(n).to.equal(10_000);
    expect(await proxy.sum(generate(10_000, () => ({ count: 2 })))).to.deep.include({ total: 20_000, count: 10_000 });
    n = 0;
    for await (const r of proxy.chat(generate(10_000, (i) => ({ text: String(i) })))) expect(r.text).to.equal(String(n++));
    expect(n).to.equal(10_000);
  });

  it("holds back a server stream whose reader is slow, without blocking other calls on the connection", async () => {
    const text = "y".repeat(1024);
    servant.produced = 0;
    const it = proxy.repeat({ text, count: 1_000_000 })[Symbol.asyncIterator]();
    for (let i = 0; i < 5; i++) await it.next();
    await sleep(300);
    const held = servant.produced;
    // One 1 MiB window of ~1 KiB messages (plus what the servant pulls before credit runs out).
    expect(held).to.be.below(1200);
    const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => proxy.say({ text: `side-${i}` })));
    expect(replies.map((r) => r.text)).to.include("side-49");
    await sleep(100);
    expect(servant.produced).to.equal(held);
    for (let i = 0; i < 3000; i++) await it.next();
    expect(servant.produced).to.be.above(held);
    await it.return!();
  });

  it("holds back a client that sends faster than the servant takes requests", async () => {
    const state = { produced: 0, closed: false };
    const ac = new AbortController();
    // chat echoes each request; not reading its replies stalls the servant, which stops taking requests.
    const it = proxy.chat(generate(1_000_000, (i) => ({ text: `${i}`.padEnd(1024, ".") }), state), { signal: ac.signal })[Symbol.asyncIterator]();
    await it.next();
    await sleep(300);
    // Two 1 MiB windows (requests, then replies) of ~1 KiB messages, plus slack.
    expect(state.produced).to.be.below(2600);
    const before = state.produced;
    await sleep(100);
    expect(state.produced).to.equal(before);
    ac.abort();
    expect(await caught(it.next())).to.be.instanceOf(CancelledError);
    await waitFor("state.closed", () => state.closed);
  });

  it("cancels in both directions: the caller's abort reaches the servant, the servant's early end reaches the caller", async () => {
    const ac = new AbortController();
    const p = proxy.slow({ millis: 10_000, id: "abort-1" }, { signal: ac.signal });
    await sleep(50);
    ac.abort();
    expect(await caught(p)).to.be.instanceOf(CancelledError);
    await waitFor("servant.cancelled.has(\"abort-1\")", () => servant.cancelled.has("abort-1"));

    const state = { produced: 0, closed: false };
    const texts = ["a", "b", "stop"];
    const got: string[] = [];
    for await (const r of proxy.chat(generate(1_000_000, (i) => ({ text: texts[i] ?? `more-${i}` }), state))) got.push(r.text);
    expect(got).to.deep.equal(["a", "b"]);
    await waitFor("state.closed", () => state.closed);
  });

  it("delivers a servant's error after the messages it streamed", async () => {
    const got: number[] = [];
    const err = await caught((async () => {
      for await (const r of proxy.repeat({ text: "e", count: 10, envelope: { note: "fail-at-3" } })) got.push(r.index);
    })());
    expect(got).to.deep.equal([0, 1, 2]);
    expect(err).to.be.instanceOf(ResourceExhaustedError);
    expect((err as ResourceExhaustedError).data).to.deep.equal({ at: 3 });
  });

  it("sends the deadline a call has left when its first endpoint list came late, not its whole timeout", async () => {
    const ch = new SgridChannel(makeEndpoint("127.0.0.1", port, "sgrid"));
    let eps: readonly Endpoint[] = [];
    const listeners: Array<(e: readonly Endpoint[]) => void> = [];
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => { answer = resolve; });
    const source = {
      current: () => eps,
      ready: () => answered,
      onChange: (l: (e: readonly Endpoint[]) => void) => { listeners.push(l); return () => undefined; },
      close: () => undefined,
      describe: () => "a list that comes late",
    };
    const late = new EchoProxy(new Invoker(source, () => ch, "late-list"));
    try {
      const started = Date.now();
      const reply = late.say({ text: "late" }, { timeoutMs: 3_000 });
      await sleep(1_000);
      eps = [makeEndpoint("127.0.0.1", port, "sgrid")];
      for (const l of listeners) l(eps);
      answer();
      expect((await reply).text).to.equal("late");
      // The servant's deadline is the caller's (started + 3 s), not a full 3 s from when the list came.
      expect(servant.lastDeadline! - started).to.be.within(2_500, 3_400);
    } finally {
      late.$invoker.close();
      ch.close();
    }
  });

  it("fails a call at its deadline with DEADLINE_EXCEEDED, fires the servant's signal, and sends the deadline along", async () => {
    const started = Date.now();
    const err = await caught(proxy.slow({ millis: 10_000, id: "deadline-1" }, { timeoutMs: 150 }));
    expect(err).to.be.instanceOf(DeadlineExceededError);
    expect(Date.now() - started).to.be.within(140, 1500);
    await waitFor("servant.cancelled.has(\"deadline-1\")", () => servant.cancelled.has("deadline-1"));

    await proxy.say({ text: "d" }, { timeoutMs: 5_000 });
    expect(servant.lastDeadline! - Date.now()).to.be.within(4_000, 5_100);

    const streamErr = await caught((async () => { for await (const _ of proxy.repeat({ text: "slow", count: 1_000_000 }, { timeoutMs: 200 })) await sleep(1); })());
    expect(streamErr).to.be.instanceOf(DeadlineExceededError);
  });

  it("sends INTERNAL without details for an unexpected servant error, and logs it on the server", async () => {
    const log = getLogger("transport.sgrid") as unknown as Record<string, unknown>;
    const original = log.error;
    const logged: unknown[] = [];
    log.error = (obj: unknown) => { logged.push(obj); };
    try {
      const err = await caught(proxy.fail({ unexpected: true, message: "token=abc123" }));
      expect(err).to.be.instanceOf(InternalError);
      expect((err as Error).message).to.not.include("abc123");
      expect(JSON.stringify(logged.map((o) => String((o as { err?: Error }).err?.message)))).to.include("abc123");
    } finally {
      log.error = original;
    }
  });

  it("answers an unknown method with UNIMPLEMENTED and keeps the connection", async () => {
    const ch = new SgridChannel(makeEndpoint("127.0.0.1", port, "sgrid"));
    try {
      const ghost = { ...EchoService.methods.say, name: "Ghost", path: "/demo.echo.v1.Echo/Ghost" };
      const call = { deadline: Date.now() + 3000, metadata: {} };
      const err = await caught(ch.unary(ghost, { text: "?" }, call));
      expect((err as { code?: string }).code).to.equal("UNIMPLEMENTED");
      expect((await ch.unary(EchoService.methods.say, { text: "still here" }, call)).text).to.equal("still here");
      expect(ch.inflight()).to.equal(0);
    } finally {
      ch.close();
    }
  });

  describe("frame size limit", () => {
    let big: Application;
    let bigPort: number;

    before(async () => {
      big = new Application({
        app: "Test", server: "BigServer", handleSignals: false,
        adapters: { EchoObj: "sgrid://127.0.0.1:0" }, transportOptions: { sgrid: { maxFrameSize: 4 * 1024 * 1024 } },
      });
      big.addServant("EchoObj", new EchoImpl("big"));
      await big.start();
      bigPort = big.adapters()[0]!.endpoint.port;
    });

    after(() => big.stop(500));

    it("carries messages just under the limit and refuses larger ones before sending", async () => {
      const ch = new SgridChannel(makeEndpoint("127.0.0.1", bigPort, "sgrid"), { maxFrameSize: 4 * 1024 * 1024 });
      try {
        const call = () => ({ deadline: Date.now() + 10_000, metadata: {} });
        const near = "n".repeat(4 * 1024 * 1024 - 1024);
        expect((await ch.unary(EchoService.methods.say, { text: near }, call())).text).to.have.length(near.length);
        const err = await caught(ch.unary(EchoService.methods.say, { text: "o".repeat(4 * 1024 * 1024) }, call()));
        expect(err).to.be.instanceOf(ResourceExhaustedError);
        // Metadata alone over the limit: refused with the frame's size, not the (small) message's.
        const heavy = await caught(ch.unary(EchoService.methods.say, { text: "x" }, { ...call(), metadata: { big: "m".repeat(4 * 1024 * 1024) } }));
        expect(heavy).to.be.instanceOf(ResourceExhaustedError);
        expect(Number(/\((\d+) bytes\)/.exec((heavy as Error).message)?.[1])).to.be.above(4 * 1024 * 1024);
        expect((await ch.unary(EchoService.methods.say, { text: "after" }, call())).text).to.equal("after");
      } finally {
        ch.close();
      }
    });

    it("answers RESOURCE_EXHAUSTED when a reply exceeds the caller's own limit", async () => {
      const ch = new SgridChannel(makeEndpoint("127.0.0.1", bigPort, "sgrid"), { maxFrameSize: 1024 * 1024 });
      try {
        const call = { deadline: Date.now() + 10_000, metadata: {} };
        const items: unknown[] = [];
        const err = await caught((async () => {
          for await (const r of ch.serverStream(EchoService.methods.repeat, { text: "r".repeat(1536 * 1024), count: 2 }, call)) items.push(r);
        })());
        expect(err).to.be.instanceOf(ResourceExhaustedError);
        expect(items).to.have.length(0);
      } finally {
        ch.close();
      }
    });

    it("carries a message near the default 16 MiB limit", async () => {
      const near = "z".repeat(16 * 1024 * 1024 - 4096);
      const reply = await proxy.say({ text: near }, { timeoutMs: 20_000 });
      expect(reply.text.length).to.equal(near.length);
    });
  });

  describe("TLS", () => {
    let dir: string | undefined;
    let tlsApp: Application | undefined;
    let tlsComm: Communicator | undefined;
    let tlsPort = 0;
    let haveOpenssl = true;

    before(async function () {
      try {
        execFileSync("openssl", ["version"], { stdio: "ignore" });
      } catch {
        haveOpenssl = false;
        this.skip();
      }
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "sgrid-tls-"));
      execFileSync("openssl", [
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", path.join(dir, "key.pem"), "-out", path.join(dir, "cert.pem"),
        "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
      ], { stdio: "ignore" });
      const key = fs.readFileSync(path.join(dir, "key.pem"));
      const cert = fs.readFileSync(path.join(dir, "cert.pem"));
      tlsApp = new Application({
        app: "Test", server: "TlsServer", handleSignals: false,
        adapters: { EchoObj: "sgrids://127.0.0.1:0" }, transportOptions: { sgrid: { tls: { key, cert } } },
      });
      tlsApp.addServant("EchoObj", new EchoImpl("tls"));
      await tlsApp.start();
      tlsPort = tlsApp.adapters()[0]!.endpoint.port;
      transports.register("sgrid", sgridClientFactory({ tls: { ca: cert } }), sgridServerFactory());
      tlsComm = new Communicator();
    });

    after(async () => {
      if (haveOpenssl) transports.register("sgrid", sgridClientFactory(), sgridServerFactory());
      tlsComm?.close();
      await tlsApp?.stop(500);
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("serves sgrids:// with a certificate the client trusts, all call kinds", async () => {
      const p = tlsComm!.stringToProxy(EchoProxy, `sgrids://127.0.0.1:${tlsPort}`);
      expect((await p.say({ text: "secure" })).metadata.served_by).to.equal("tls");
      let n = 0;
      for await (const _ of p.chat(generate(500, (i) => ({ text: `${i}` })))) n++;
      expect(n).to.equal(500);
    });

    it("refuses a server whose certificate the client does not trust, and a plaintext client", async () => {
      const untrusting = new SgridChannel(makeEndpoint("127.0.0.1", tlsPort, "sgrid", { tls: true }));
      const plain = new SgridChannel(makeEndpoint("127.0.0.1", tlsPort, "sgrid"), { connectTimeoutMs: 1000 });
      try {
        const call = { deadline: Date.now() + 3000, metadata: {} };
        expect(await caught(untrusting.unary(EchoService.methods.say, { text: "x" }, call))).to.be.instanceOf(UnavailableError);
        expect(await caught(plain.unary(EchoService.methods.say, { text: "x" }, call))).to.be.instanceOf(UnavailableError);
      } finally {
        untrusting.close();
        plain.close();
      }
    });
  });

  describe("one Obj on gRPC and sgrid at once", () => {
    let both: Application;
    let bothServant: TrackingEcho;
    let grpcPort: number;
    let sgridPort: number;
    let client: any;

    before(async () => {
      bothServant = new TrackingEcho("both");
      both = new Application({ app: "Test", server: "BothServer", handleSignals: false, adapters: { EchoObj: ["127.0.0.1:0", "sgrid://127.0.0.1:0"] } });
      both.addServant("EchoObj", bothServant);
      await both.start();
      grpcPort = both.adapters().find((a) => a.endpoint.protocol === "grpc")!.endpoint.port;
      sgridPort = both.adapters().find((a) => a.endpoint.protocol === "sgrid")!.endpoint.port;
      const def = protoLoader.loadSync(path.join(FIXTURES, "protos/demo/echo.proto"), {
        includeDirs: [path.join(FIXTURES, "protos")], keepCase: false, longs: Number, enums: Number, defaults: true, oneofs: true,
      });
      const Echo = (grpc.loadPackageDefinition(def) as any).demo.echo.v1.Echo as grpc.ServiceClientConstructor;
      client = new Echo(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure());
    });

    after(async () => {
      client?.close();
      await both.stop(500);
    });

    it("serves a plain @grpc/grpc-js client and a native proxy at the same time", async () => {
      const native = comm.stringToProxy(EchoProxy, `sgrid://127.0.0.1:${sgridPort}`);
      const plainCall = (text: string) => new Promise<any>((resolve, reject) =>
        client.say({ text }, (err: Error | null, res: unknown) => (err ? reject(err) : resolve(res))));
      bothServant.protocols = [];
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? plainCall(`g${i}`) : native.say({ text: `n${i}` }))));
      expect(results.map((r) => r.text)).to.deep.equal(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? `g${i}` : `n${i}`)));
      expect(results.every((r) => r.metadata.served_by === "both")).to.equal(true);
      expect(bothServant.protocols.filter((p) => p === "grpc")).to.have.length(10);
      expect(bothServant.protocols.filter((p) => p === "sgrid")).to.have.length(10);
    });

    it("a proxy given both endpoints prefers the native one", async () => {
      const p = comm.stringToProxy(EchoProxy, `Test.BothServer.EchoObj@tcp -h 127.0.0.1 -p ${grpcPort}:sgrid -h 127.0.0.1 -p ${sgridPort}`);
      bothServant.protocols = [];
      for (let i = 0; i < 10; i++) await p.say({ text: "pref" });
      expect(bothServant.protocols).to.deep.equal(Array(10).fill("sgrid"));
    });
  });

  it("fails a request that cannot be encoded with INVALID_ARGUMENT, whether or not its server is reachable", async () => {
    const bad = {
      get text(): string {
        throw new TypeError("no text today");
      },
    };
    const down = new SgridChannel(makeEndpoint("127.0.0.1", await freePort(), "sgrid"), {});
    const up = new SgridChannel(makeEndpoint("127.0.0.1", port, "sgrid"), {});
    try {
      // A first call finds nobody: the channel waits out its backoff, failing calls at once meanwhile.
      expect(await caught(down.unary(EchoService.methods.say, { text: "anyone?" }, { deadline: Date.now() + 5000, metadata: {} }))).to.be.instanceOf(UnavailableError);
      for (const ch of [down, up]) {
        const err = await caught(ch.unary(EchoService.methods.say, bad, { deadline: Date.now() + 5000, metadata: {} }));
        expect(err).to.be.instanceOf(InvalidArgumentError);
        expect((err as Error).message).to.match(/could not be encoded: no text today/);
      }
    } finally {
      down.close();
      up.close();
    }
  });

  it("fails calls fast with UNAVAILABLE while a server is down, and reconnects after the backoff once it is back", async () => {
    const freeAt = await freePort();
    const c2 = new Communicator();
    try {
      const p = c2.stringToProxy(EchoProxy, `Test.EchoServer.EchoObj@sgrid -h 127.0.0.1 -p ${freeAt}`);
      expect(await caught(p.say({ text: "nobody" }))).to.be.instanceOf(UnavailableError);
      const t0 = Date.now();
      expect(await caught(p.say({ text: "still nobody" }))).to.be.instanceOf(UnavailableError);
      expect(Date.now() - t0).to.be.below(500);
      expect(c2.connections().every((c) => !c.ready)).to.equal(true);
      const back = new Application({ app: "Test", server: "Back", handleSignals: false, adapters: { EchoObj: `sgrid://127.0.0.1:${freeAt}` } });
      back.addServant("EchoObj", new EchoImpl("back"));
      await back.start();
      try {
        await sleep(200); // past the first backoff pause
        let reply: EchoReply | undefined;
        for (let i = 0; i < 60 && !reply; i++) reply = await p.say({ text: "hello again" }).catch(async () => { await sleep(100); return undefined; });
        expect(reply?.metadata.served_by).to.equal("back");
        expect(c2.connections().some((c) => c.ready)).to.equal(true);
      } finally {
        await back.stop(200);
      }
    } finally {
      c2.close();
    }
  });
});
