/**
 * Cancellation and deadlines as a servant sees them, on both transports: its
 * request stream throws CANCELLED / DEADLINE_EXCEEDED instead of ending as if
 * the caller had half-closed, ctx.signal fires with that reason, the server's
 * stats count the call under that code; and the proxy closes the caller's
 * request iterator whenever a call ends early.
 */
import { expect } from "chai";
import { setTimeout as sleep } from "node:timers/promises";
import {
  Application, AsyncQueue, CancelledError, Communicator, DeadlineExceededError, FailedPreconditionError, serverStats, type DeepPartial, type ServerContext,
} from "sgridnext";
import { EchoProxy } from "../gen/demo/echo.sgrid";
import type { EchoReply, EchoRequest, SlowRequest, SumReply } from "../gen/demo/echo";
import { EchoImpl } from "../helpers/echo-servant";
import { waitFor } from "../helpers/wait";

interface Outcome {
  /** What the servant's `for await` over its requests ended with: "end" or the error's class name. */
  loop: string;
  received: number;
  signalReason: string | undefined;
}

class UploadEcho extends EchoImpl {
  outcomes: Outcome[] = [];
  ignoredCancel = 0;
  /** Request messages read by Sum calls so far. */
  read = 0;

  override async sum(requests: AsyncIterable<EchoRequest>, ctx?: ServerContext): Promise<DeepPartial<SumReply>> {
    let received = 0;
    let loop = "end";
    try {
      for await (const r of requests) {
        received++;
        this.read++;
        if (r.text === "fail") throw new FailedPreconditionError("refused after the first message");
      }
    } catch (err) {
      loop = (err as Error).constructor.name;
      if (err instanceof FailedPreconditionError) throw err;
    } finally {
      this.outcomes.push({ loop, received, signalReason: ctx!.signal.aborted ? (ctx!.signal.reason as Error).constructor.name : undefined });
    }
    return { count: received };
  }

  override async *chat(requests: AsyncIterable<EchoRequest>): AsyncIterable<DeepPartial<EchoReply>> {
    for await (const r of requests) {
      if (r.text === "fail") throw new FailedPreconditionError("refused");
      yield { text: r.text };
    }
  }

  /** Ignores cancellation and answers anyway, after the caller is gone. */
  override async slow(request: SlowRequest): Promise<DeepPartial<EchoReply>> {
    await sleep(request.millis);
    this.ignoredCancel++;
    return { text: "too late" };
  }
}

/** A request stream whose return() is recorded (the call closed it) and which hands out what is pushed. */
function tracked(): { queue: AsyncQueue<DeepPartial<EchoRequest>>; requests: AsyncIterable<DeepPartial<EchoRequest>>; closed: () => boolean } {
  const queue = new AsyncQueue<DeepPartial<EchoRequest>>();
  const it = queue[Symbol.asyncIterator]();
  let closed = false;
  return {
    queue,
    closed: () => closed,
    requests: { [Symbol.asyncIterator]: () => ({ next: () => it.next(), return: async () => { closed = true; queue.close(); return { done: true, value: undefined }; } }) },
  };
}

const rejection = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);

for (const protocol of ["grpc", "sgrid"] as const) {
  describe(`framework cancellation and deadlines seen by servants over ${protocol}`, function () {
    this.timeout(30_000);
    let app: Application;
    let servant: UploadEcho;
    let comm: Communicator;
    let proxy: EchoProxy;
    const obj = `Test.Cancel${protocol}.EchoObj`;

    before(async () => {
      servant = new UploadEcho();
      app = new Application({ handleSignals: false, app: "Test", server: `Cancel${protocol}`, adapters: { EchoObj: `${protocol === "sgrid" ? "sgrid://" : ""}127.0.0.1:0` } });
      app.addServant("EchoObj", servant);
      await app.start();
      comm = new Communicator();
      proxy = comm.stringToProxy(EchoProxy, `${obj}@${protocol === "sgrid" ? "sgrid" : "tcp"} -h 127.0.0.1 -p ${app.adapters()[0]!.endpoint.port}`);
    });

    after(async () => {
      comm.close();
      await app.stop(500);
    });

    const sumStats = () => serverStats.get(obj, "/demo.echo.v1.Echo/Sum");

    it("a cancelled upload: the servant's request stream throws CANCELLED, its signal fires, stats count CANCELLED, the caller's iterator is closed", async () => {
      servant.outcomes = [];
      const before = sumStats().errorsByCode.get("CANCELLED") ?? 0;
      const read = servant.read;
      const t = tracked();
      const ac = new AbortController();
      const call = rejection(proxy.sum(t.requests, { signal: ac.signal }));
      t.queue.push({ count: 1 });
      t.queue.push({ count: 2 });
      await waitFor("the servant read both messages", () => servant.read >= read + 2 || undefined);
      ac.abort();
      expect(await call).to.be.instanceOf(CancelledError);
      const outcome = await waitFor("the servant's loop ended", () => servant.outcomes[0]);
      expect(outcome.loop, "the request stream did not end as if complete").to.equal("CancelledError");
      expect(outcome.signalReason).to.equal("CancelledError");
      expect(t.closed(), "the proxy closed the caller's request iterator").to.equal(true);
      await waitFor("stats count it", () => (sumStats().errorsByCode.get("CANCELLED") ?? 0) > before || undefined);
    });

    it("an upload past its deadline: the request stream throws DEADLINE_EXCEEDED, stats count DEADLINE_EXCEEDED", async () => {
      servant.outcomes = [];
      const before = sumStats().errorsByCode.get("DEADLINE_EXCEEDED") ?? 0;
      const t = tracked();
      const call = rejection(proxy.sum(t.requests, { timeoutMs: 300 }));
      t.queue.push({ count: 1 });
      expect(await call).to.be.instanceOf(DeadlineExceededError);
      const outcome = await waitFor("the servant's loop ended", () => servant.outcomes[0]);
      expect(outcome.loop).to.equal("DeadlineExceededError");
      expect(outcome.signalReason).to.equal("DeadlineExceededError");
      expect(t.closed()).to.equal(true);
      await waitFor("stats count it", () => (sumStats().errorsByCode.get("DEADLINE_EXCEEDED") ?? 0) > before || undefined);
    });

    it("a normal upload still ends normally", async () => {
      servant.outcomes = [];
      const t = tracked();
      const p = proxy.sum(t.requests);
      t.queue.push({ count: 1 });
      t.queue.close();
      expect((await p).count).to.equal(1);
      expect(servant.outcomes[0]).to.deep.equal({ loop: "end", received: 1, signalReason: undefined });
    });

    it("the caller's request iterator is closed when the servant fails the call (client stream and bidi)", async () => {
      const c = tracked();
      const p = rejection(proxy.sum(c.requests));
      c.queue.push({ text: "fail" });
      expect(await p).to.be.instanceOf(FailedPreconditionError);
      await waitFor("client-stream requests closed", () => c.closed() || undefined);

      const b = tracked();
      const it = proxy.chat(b.requests)[Symbol.asyncIterator]();
      b.queue.push({ text: "one" });
      expect((await it.next()).value!.text).to.equal("one");
      b.queue.push({ text: "fail" });
      expect(await rejection(it.next())).to.be.instanceOf(FailedPreconditionError);
      await waitFor("bidi requests closed", () => b.closed() || undefined);

      // and when the caller stops reading the responses early
      const e = tracked();
      e.queue.push({ text: "x" });
      for await (const _ of proxy.chat(e.requests)) break;
      await waitFor("bidi requests closed after break", () => e.closed() || undefined);
    });

    it("a server stream the caller stops reading counts as CANCELLED, not as a success", async () => {
      const stats = serverStats.get(obj, "/demo.echo.v1.Echo/Repeat");
      const before = stats.errorsByCode.get("CANCELLED") ?? 0;
      const calls = stats.calls;
      for await (const r of proxy.repeat({ count: 100_000 })) if (r.index >= 2) break;
      await waitFor("the servant's stream ended", () => stats.calls > calls || undefined);
      expect(stats.errorsByCode.get("CANCELLED") ?? 0).to.equal(before + 1);
    });

    it("a unary call the servant answers after the caller cancelled counts as CANCELLED, not as a success", async () => {
      const stats = serverStats.get(obj, "/demo.echo.v1.Echo/Slow");
      const errorsBefore = stats.errorsByCode.get("CANCELLED") ?? 0;
      const done = servant.ignoredCancel;
      const ac = new AbortController();
      const p = rejection(proxy.slow({ millis: 300 }, { signal: ac.signal }));
      await waitFor("the servant has the call", () => app.inflight() > 0 || undefined);
      ac.abort();
      expect(await p).to.be.instanceOf(CancelledError);
      await waitFor("the servant finished anyway", () => servant.ignoredCancel > done || undefined);
      await waitFor("stats count it as CANCELLED", () => (stats.errorsByCode.get("CANCELLED") ?? 0) > errorsBefore || undefined);
    });
  });
}
