/**
 * Generated servant + generated proxy over every registered protocol: the
 * same suite runs once per transport (grpc, and sgrid once registered).
 */
import { expect } from "chai";
import { Application, Communicator, SgridError, registerErrorClass, transports, Status, FailedPreconditionError, InternalError, CancelledError, DeadlineExceededError } from "sgridnext";
import { EchoProxy, ClockProxy } from "../gen/demo/echo.sgrid";
import { Envelope_Header_Kind, Priority } from "../gen/acme/common/types";
import { EchoImpl, ClockImpl } from "../helpers/echo-servant";
import { waitFor } from "../helpers/wait";

class OutOfStockError extends SgridError {
  static readonly CODE = "OUT_OF_STOCK";
  constructor(message: string, data?: Record<string, unknown>) {
    super("OUT_OF_STOCK", message, { status: Status.FAILED_PRECONDITION, data });
  }
}
registerErrorClass(OutOfStockError);

async function* generate<T>(n: number, make: (i: number) => T): AsyncIterable<T> {
  for (let i = 0; i < n; i++) yield make(i);
}

for (const protocol of transports.protocols()) {
  describe(`framework rpc over ${protocol}`, function () {
    this.timeout(60_000);
    let app: Application;
    let servant: EchoImpl;
    let comm: Communicator;
    let target: string;

    before(async () => {
      servant = new EchoImpl();
      const scheme = protocol === "grpc" ? "" : `${protocol}://`;
      app = new Application({ app: "Test", server: "EchoServer", handleSignals: false, adapters: { EchoObj: `${scheme}127.0.0.1:0`, ClockObj: `${scheme}127.0.0.1:0` } });
      app.addServant("EchoObj", servant).addServant("ClockObj", new ClockImpl());
      await app.start();
      const port = app.adapters().find((a) => a.obj === "Test.EchoServer.EchoObj")!.endpoint.port;
      target = `Test.EchoServer.EchoObj@${protocol === "grpc" ? "tcp" : protocol} -h 127.0.0.1 -p ${port}`;
      comm = new Communicator();
    });

    after(async () => {
      comm.close();
      await app.stop(1000);
    });

    it("lists each open client connection once, with its peer address, and forgets it when it closes", async () => {
      const open = () => app.connections().filter((c) => c.protocol === protocol);
      const before = open().length;
      const other = new Communicator();
      try {
        const proxy = other.stringToProxy(EchoProxy, target);
        for (let i = 0; i < 3; i++) await proxy.say({ text: `c${i}` });
        const now = open();
        expect(now).to.have.length(before + 1);
        expect(now.map((c) => c.peer)).to.satisfy((peers: string[]) => peers.some((p) => /^127\.0\.0\.1:\d+$/.test(p)));
      } finally {
        other.close();
      }
      await waitFor("the closed connection forgotten", () => open().length === before);
    });

    it("round-trips a unary call with nested messages, enums, oneof, maps, repeated fields and timestamps", async () => {
      const proxy = comm.stringToProxy(EchoProxy, target);
      const createdAt = new Date("2026-03-04T05:06:07.089Z");
      const reply = await proxy.say({
        text: "hello",
        envelope: {
          header: { kind: Envelope_Header_Kind.KIND_EVENT, traceId: "t-1" },
          tags: [{ key: "a", value: "1" }, { key: "b", value: "2" }],
          counters: { x: 5, y: 7 },
          tagsById: { 3: { key: "c", value: "3" } },
          body: { $case: "json", value: { nested: { list: [1, "two", true, null] } } },
          createdAt,
          priority: Priority.PRIORITY_HIGH,
          samples: [1.5, 2.25],
          note: "optional",
        },
      }, { metadata: { "x-user": "ann" } });
      expect(reply.text).to.equal("hello");
      const env = reply.envelope!;
      expect(env.header).to.deep.equal({ kind: Envelope_Header_Kind.KIND_EVENT, traceId: "t-1" });
      expect(env.tags.map((t) => t.key)).to.deep.equal(["a", "b"]);
      expect(env.counters).to.deep.equal({ x: 5, y: 7 });
      expect(env.tagsById[3]).to.deep.equal({ key: "c", value: "3" });
      expect(env.body).to.deep.equal({ $case: "json", value: { nested: { list: [1, "two", true, null] } } });
      expect(env.createdAt!.toISOString()).to.equal(createdAt.toISOString());
      expect(env.priority).to.equal(Priority.PRIORITY_HIGH);
      expect(env.samples).to.deep.equal([1.5, 2.25]);
      expect(env.note).to.equal("optional");
      expect(reply.metadata["x-user"]).to.equal("ann");
      expect(reply.peer).to.match(/127\.0\.0\.1/);
    });

    it("serves a second service of the same file with well-known types", async () => {
      const port = app.adapters().find((a) => a.obj === "Test.EchoServer.ClockObj")!.endpoint.port;
      const clock = comm.stringToProxy(ClockProxy, `${protocol === "grpc" ? "" : protocol + "://"}127.0.0.1:${port}`);
      const now = await clock.now({});
      expect(now.seconds).to.equal(Math.floor(Date.parse("2026-01-02T03:04:05.678Z") / 1000));
    });

    it("streams 10,000 messages from the server", async () => {
      const proxy = comm.stringToProxy(EchoProxy, target);
      let n = 0;
      for await (const r of proxy.repeat({ text: "s", count: 10_000 })) {
        expect(r.index).to.equal(n);
        n++;
      }
      expect(n).to.equal(10_000);
    });

    it("streams 10,000 messages to the server", async () => {
      const proxy = comm.stringToProxy(EchoProxy, target);
      const res = await proxy.sum(generate(10_000, (i) => ({ count: i % 7 })));
      expect(res.count).to.equal(10_000);
      let expected = 0;
      for (let i = 0; i < 10_000; i++) expected += i % 7;
      expect(res.total).to.equal(expected);
    });

    it("streams 10,000 messages both ways", async () => {
      const proxy = comm.stringToProxy(EchoProxy, target);
      let n = 0;
      for await (const r of proxy.chat(generate(10_000, (i) => ({ text: `m${i}` })))) {
        expect(r.text).to.equal(`m${n}`);
        n++;
      }
      expect(n).to.equal(10_000);
    });

    it("cancels a server stream midway when the consumer stops, and the servant sees it", async () => {
      const proxy = comm.stringToProxy(EchoProxy, target);
      const before = servant.streamsClosedEarly;
      let n = 0;
      for await (const _ of proxy.repeat({ text: "x", count: 1_000_000 })) {
        if (++n === 100) break;
      }
      expect(n).to.equal(100);
      await waitFor("servant.streamsClosedEarly > before", () => servant.streamsClosedEarly > before);
    });

    it("cancels a bidi stream midway with an AbortSignal", async () => {
      const proxy = comm.stringToProxy(EchoProxy, target);
      const ac = new AbortController();
      const before = servant.streamsClosedEarly;
      let n = 0;
      let caught: unknown;
      try {
        for await (const _ of proxy.chat(generate(1_000_000, (i) => ({ text: `m${i}` })), { signal: ac.signal })) {
          if (++n === 50) ac.abort();
        }
      } catch (err) { caught = err; }
      expect(caught).to.be.instanceOf(CancelledError);
      await waitFor("servant.streamsClosedEarly > before", () => servant.streamsClosedEarly > before);
    });

    it("propagates cancellation of a unary call to the servant", async () => {
      const proxy = comm.stringToProxy(EchoProxy, target);
      const ac = new AbortController();
      const p = proxy.slow({ millis: 10_000, id: `cancel-${protocol}` }, { signal: ac.signal });
      setTimeout(() => ac.abort(), 100);
      const err = await p.then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(CancelledError);
      await waitFor("servant.cancelled.has(cancel-<protocol>)", () => servant.cancelled.has(`cancel-${protocol}`));
    });

    it("applies the deadline: the caller gets DEADLINE_EXCEEDED and the servant sees the deadline", async () => {
      const proxy = comm.stringToProxy(EchoProxy, target);
      const err = await proxy.slow({ millis: 5_000, id: `deadline-${protocol}` }, { timeoutMs: 200 }).then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(DeadlineExceededError);
      await proxy.say({ text: "d" }, { timeoutMs: 2_000 });
      expect(servant.lastDeadline).to.be.a("number");
      expect(servant.lastDeadline! - Date.now()).to.be.within(0, 2_100);
    });

    it("rebuilds a servant's typed error as the same class, code and data on the caller's side", async () => {
      const proxy = comm.stringToProxy(EchoProxy, target);
      const err = await proxy.fail({ code: "OUT_OF_STOCK", message: "no more widgets" }).then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(OutOfStockError);
      expect((err as SgridError).code).to.equal("OUT_OF_STOCK");
      expect((err as SgridError).status).to.equal(Status.FAILED_PRECONDITION);
      expect((err as Error).message).to.equal("no more widgets");
      expect((err as SgridError).data).to.deep.equal({ asked: "OUT_OF_STOCK" });

      const builtin = await proxy.fail({ code: "FAILED_PRECONDITION", message: "nope" }).then(() => undefined, (e: unknown) => e);
      expect(builtin).to.be.instanceOf(FailedPreconditionError);
    });

    it("turns an unexpected servant error into INTERNAL without leaking its details", async () => {
      const proxy = comm.stringToProxy(EchoProxy, target);
      const err = await proxy.fail({ unexpected: true, message: "db password is hunter2" }).then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(InternalError);
      expect((err as Error).message).to.not.include("hunter2");
      expect((err as Error).message).to.not.include("secret");
    });

    it("returns one shared proxy per class and target", () => {
      expect(comm.stringToProxy(EchoProxy, target)).to.equal(comm.stringToProxy(EchoProxy, target));
    });
  });
}

