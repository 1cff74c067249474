/**
 * Reading a servant's request stream by push (eachMessage,
 * framework/primitives/each-message.ts), on both transports: every message in
 * order and the end; a stream partly read with its iterator continues where
 * the iterator stopped; a cancelled call or one past its deadline rejects
 * with CANCELLED / DEADLINE_EXCEEDED; a throw from the callback stops the
 * reading; and a promise the callback returns holds the sender back until it
 * settles (the caller's request iterator is not drained meanwhile).
 */
import { expect } from "chai";
import {
  Application, AsyncQueue, CancelledError, Communicator, DeadlineExceededError, FailedPreconditionError, PUSH_READ, eachMessage, type DeepPartial, type ServerContext,
} from "sgridnext";
import { EchoProxy } from "../gen/demo/echo.sgrid";
import type { EchoRequest, SumReply } from "../gen/demo/echo";
import { EchoImpl } from "../helpers/echo-servant";
import { waitFor } from "../helpers/wait";

/** How one Sum call's push reading went. */
interface Reading {
  texts: string[];
  /** Whether the request stream offered a push reader (else eachMessage read it with its iterator). */
  push?: boolean;
  /** "end" or the error's class name. */
  outcome?: string;
}

class PushEcho extends EchoImpl {
  readings: Reading[] = [];
  /** While set, each message's callback waits for it. */
  hold: Promise<void> | undefined;

  override async sum(requests: AsyncIterable<EchoRequest>, _ctx?: ServerContext): Promise<DeepPartial<SumReply>> {
    const reading: Reading = { texts: [] };
    this.readings.push(reading);
    try {
      // "iterate-first": the first message with the iterator (as a session's hello), the rest by push.
      const it = requests[Symbol.asyncIterator]();
      const first = await it.next();
      if (first.done) {
        reading.outcome = "end";
        return { count: 0 };
      }
      reading.texts.push(first.value.text);
      reading.push = PUSH_READ in requests;
      await eachMessage(requests, (r) => {
        if (r.text === "fail") throw new FailedPreconditionError("refused");
        reading.texts.push(r.text);
        return this.hold;
      });
      reading.outcome = "end";
    } catch (err) {
      reading.outcome = (err as Error).constructor.name;
      throw err;
    }
    return { count: reading.texts.length };
  }
}

/** A caller's request stream: hands out what is pushed, counts what the call pulled. */
function counted(): { queue: AsyncQueue<DeepPartial<EchoRequest>>; requests: AsyncIterable<DeepPartial<EchoRequest>>; pulled: () => number } {
  const queue = new AsyncQueue<DeepPartial<EchoRequest>>();
  const it = queue[Symbol.asyncIterator]();
  let pulled = 0;
  return {
    queue,
    pulled: () => pulled,
    requests: {
      [Symbol.asyncIterator]: () => ({
        next: async () => {
          const r = await it.next();
          if (!r.done) pulled++;
          return r;
        },
        return: async () => {
          queue.close();
          return { done: true, value: undefined };
        },
      }),
    },
  };
}

const rejection = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);

for (const protocol of ["grpc", "sgrid"] as const) {
  describe(`framework eachMessage: a servant reads its request stream by push over ${protocol}`, function () {
    this.timeout(30_000);
    let app: Application;
    let servant: PushEcho;
    let comm: Communicator;
    let proxy: EchoProxy;

    before(async () => {
      servant = new PushEcho();
      app = new Application({ handleSignals: false, app: "Test", server: `Push${protocol}`, adapters: { EchoObj: `${protocol === "sgrid" ? "sgrid://" : ""}127.0.0.1:0` } });
      app.addServant("EchoObj", servant);
      await app.start();
      comm = new Communicator();
      proxy = comm.stringToProxy(EchoProxy, `Test.Push${protocol}.EchoObj@${protocol === "sgrid" ? "sgrid" : "tcp"} -h 127.0.0.1 -p ${app.adapters()[0]!.endpoint.port}`);
    });

    beforeEach(() => {
      servant.readings = [];
      servant.hold = undefined;
    });

    after(async () => {
      comm.close();
      await app.stop(500);
    });

    it("every message in order after the one the iterator read, then the end", async () => {
      const texts = Array.from({ length: 200 }, (_, i) => `m${i}`);
      async function* send() {
        for (const text of texts) yield { text };
      }
      const reply = await proxy.sum(send());
      expect(reply.count).to.equal(200);
      expect(servant.readings[0]).to.deep.equal({ texts, push: true, outcome: "end" });
    });

    it("a cancelled call rejects with CANCELLED; a call past its deadline with DEADLINE_EXCEEDED", async () => {
      const c = counted();
      const ac = new AbortController();
      const call = rejection(proxy.sum(c.requests, { signal: ac.signal }));
      c.queue.push({ text: "a" });
      c.queue.push({ text: "b" });
      await waitFor("the servant read both", () => (servant.readings[0]?.texts.length ?? 0) >= 2 || undefined);
      ac.abort();
      expect(await call).to.be.instanceOf(CancelledError);
      expect(await waitFor("the reading ended", () => servant.readings[0]!.outcome)).to.equal("CancelledError");

      const d = counted();
      const late = rejection(proxy.sum(d.requests, { timeoutMs: 300 }));
      d.queue.push({ text: "a" });
      d.queue.push({ text: "b" });
      expect(await late).to.be.instanceOf(DeadlineExceededError);
      expect(await waitFor("the reading ended", () => servant.readings[1]?.outcome)).to.equal("DeadlineExceededError");
    });

    it("a throw from the callback stops the reading and fails the call", async () => {
      async function* send() {
        yield { text: "a" };
        yield { text: "b" };
        yield { text: "fail" };
        yield { text: "never" };
      }
      expect(await rejection(proxy.sum(send()))).to.be.instanceOf(FailedPreconditionError);
      expect(servant.readings[0]).to.deep.equal({ texts: ["a", "b"], push: true, outcome: "FailedPreconditionError" });
    });

    it("a pending promise from the callback holds the sender back; the messages follow in order once it settles", async () => {
      let release!: () => void;
      servant.hold = new Promise<void>((r) => (release = r));
      const c = counted();
      const call = proxy.sum(c.requests);
      // 64 MiB offered: far beyond what the transport's buffers and flow-control windows hold.
      const total = 1024;
      const big = "x".repeat(64 * 1024);
      for (let i = 0; i < total; i++) c.queue.push({ text: `${i} ${big}` });
      c.queue.close();
      await waitFor("the servant took the first two", () => (servant.readings[0]?.texts.length ?? 0) >= 2 || undefined);
      // Let the transport move what it will while the servant is held.
      let last = -1;
      await waitFor("the sender stalls", async () => {
        const now = c.pulled();
        const stalled = now === last;
        last = now;
        await new Promise((r) => setTimeout(r, 200));
        return stalled || undefined;
      });
      expect(servant.readings[0]!.texts.length, "one message taken past the first while held").to.equal(2);
      expect(c.pulled(), "the caller's requests were not all drained while the servant was held").to.be.lessThan(total);
      release();
      const reply = await call;
      expect(reply.count).to.equal(total);
      expect(servant.readings[0]!.texts.map((t) => Number(t.slice(0, t.indexOf(" "))))).to.deep.equal(Array.from({ length: total }, (_, i) => i));
    });
  });
}
