/**
 * The standard interop cases (grpc's interop-test-descriptions.md) driven by
 * a Sgrid proxy, against any TestService server.
 */
import { expect } from "chai";
import {
  CancelledError, DeadlineExceededError, UnimplementedError, UnknownError, type Communicator, type Metadata,
} from "sgridnext";
import { TestServiceProxy, UnimplementedServiceProxy } from "../gen/grpc/testing/test.sgrid";
import type { StreamingOutputCallRequest } from "../gen/grpc/testing/messages";
import type { DeepPartial } from "sgridnext";
import { AsyncQueue } from "sgridnext";
import { ECHO_INITIAL, ECHO_TRAILING } from "./interop-servant";

export const CASES = [
  "empty_unary", "large_unary", "client_streaming", "server_streaming", "ping_pong", "empty_stream", "cancel_after_begin", "cancel_after_first_response",
  "timeout_on_sleeping_server", "custom_metadata", "status_code_and_message", "special_status_message", "unimplemented_method", "unimplemented_service",
  "client_compressed_unary", "server_compressed_unary",
] as const;
export type InteropCase = (typeof CASES)[number];

export const SPECIAL_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \u{1f608}\t\n";

const payload = (size: number) => ({ body: Buffer.alloc(size) });
type OutReq = DeepPartial<StreamingOutputCallRequest>;

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(() => undefined, (e: unknown) => e);
}

/**
 * A request stream that records whether the proxy called its return() (what runs a generator's
 * `finally`; a plain iterator here, since a generator suspended in an await only runs it later).
 */
function trackedRequests(queue: AsyncQueue<OutReq>): { requests: AsyncIterable<OutReq>; closed: () => boolean } {
  let closed = false;
  const it = queue[Symbol.asyncIterator]();
  const requests: AsyncIterable<OutReq> = {
    [Symbol.asyncIterator]: () => ({
      next: () => it.next(),
      return: async () => {
        closed = true;
        queue.close();
        return { done: true, value: undefined };
      },
    }),
  };
  return { requests, closed: () => closed };
}

export async function runCase(name: InteropCase, comm: Communicator, target: string): Promise<void> {
  const stub = comm.stringToProxy(TestServiceProxy, target, { timeoutMs: 20_000 });
  switch (name) {
    case "empty_unary":
      expect(await stub.emptyCall({})).to.deep.equal({});
      return;
    case "large_unary": {
      const res = await stub.unaryCall({ responseSize: 314159, payload: payload(271828) });
      expect(res.payload!.body.length).to.equal(314159);
      return;
    }
    case "client_streaming": {
      async function* reqs() { for (const s of [27182, 8, 1828, 45904]) yield { payload: payload(s) }; }
      expect((await stub.streamingInputCall(reqs())).aggregatedPayloadSize).to.equal(74922);
      return;
    }
    case "server_streaming": {
      const sizes = [31415, 9, 2653, 58979];
      const got: number[] = [];
      for await (const r of stub.streamingOutputCall({ responseParameters: sizes.map((size) => ({ size })) })) got.push(r.payload!.body.length);
      expect(got).to.deep.equal(sizes);
      return;
    }
    case "ping_pong": {
      const queue = new AsyncQueue<OutReq>();
      const it = stub.fullDuplexCall(queue)[Symbol.asyncIterator]();
      for (const [out, inp] of [[31415, 27182], [9, 8], [2653, 1828], [58979, 45904]] as const) {
        queue.push({ responseParameters: [{ size: out }], payload: payload(inp) });
        const r = await it.next();
        expect(r.done).to.equal(false);
        expect(r.value!.payload!.body.length).to.equal(out);
      }
      queue.close();
      expect((await it.next()).done).to.equal(true);
      return;
    }
    case "empty_stream": {
      const got: unknown[] = [];
      for await (const r of stub.fullDuplexCall((async function* () { /* nothing */ })())) got.push(r);
      expect(got).to.deep.equal([]);
      return;
    }
    case "cancel_after_begin": {
      const ac = new AbortController();
      const tracked = trackedRequests(new AsyncQueue<OutReq>());
      const p = rejection(stub.streamingInputCall(tracked.requests as AsyncIterable<never>, { signal: ac.signal }));
      ac.abort();
      expect(await p).to.be.instanceOf(CancelledError);
      expect(tracked.closed(), "the proxy closed the request iterator").to.equal(true);
      return;
    }
    case "cancel_after_first_response": {
      const ac = new AbortController();
      const queue = new AsyncQueue<OutReq>();
      const tracked = trackedRequests(queue);
      const it = stub.fullDuplexCall(tracked.requests, { signal: ac.signal })[Symbol.asyncIterator]();
      queue.push({ responseParameters: [{ size: 31415 }], payload: payload(27182) });
      expect((await it.next()).value!.payload!.body.length).to.equal(31415);
      ac.abort();
      expect(await rejection(it.next())).to.be.instanceOf(CancelledError);
      expect(tracked.closed(), "the proxy closed the request iterator").to.equal(true);
      return;
    }
    case "timeout_on_sleeping_server": {
      const queue = new AsyncQueue<OutReq>();
      const tracked = trackedRequests(queue);
      queue.push({ payload: payload(27182) });
      const it = stub.fullDuplexCall(tracked.requests, { timeoutMs: 1 })[Symbol.asyncIterator]();
      expect(await rejection(it.next())).to.be.instanceOf(DeadlineExceededError);
      expect(tracked.closed(), "the proxy closed the request iterator").to.equal(true);
      return;
    }
    case "custom_metadata": {
      const metadata: Metadata = { [ECHO_INITIAL]: "test_initial_metadata_value", [ECHO_TRAILING]: Buffer.from([0xab, 0xab, 0xab]) };
      const check = (headers: Metadata | undefined, trailers: Metadata | undefined, what: string) => {
        expect(headers?.[ECHO_INITIAL], `${what} headers`).to.equal("test_initial_metadata_value");
        expect(Buffer.isBuffer(trailers?.[ECHO_TRAILING]), `${what} trailer is a Buffer`).to.equal(true);
        expect([...(trailers![ECHO_TRAILING] as Buffer)], `${what} trailers`).to.deep.equal([0xab, 0xab, 0xab]);
      };
      let headers: Metadata | undefined;
      let trailers: Metadata | undefined;
      const res = await stub.unaryCall({ responseSize: 314159, payload: payload(271828) }, { metadata, onHeaders: (h) => { headers = h; }, onTrailers: (t) => { trailers = t; } });
      expect(res.payload!.body.length).to.equal(314159);
      check(headers, trailers, "unary");
      headers = trailers = undefined;
      const queue = new AsyncQueue<OutReq>();
      const it = stub.fullDuplexCall(queue, { metadata, onHeaders: (h) => { headers = h; }, onTrailers: (t) => { trailers = t; } })[Symbol.asyncIterator]();
      queue.push({ responseParameters: [{ size: 314159 }], payload: payload(271828) });
      expect((await it.next()).value!.payload!.body.length).to.equal(314159);
      queue.close();
      expect((await it.next()).done).to.equal(true);
      check(headers, trailers, "full duplex");
      return;
    }
    case "status_code_and_message": {
      const responseStatus = { code: 2, message: "test status message" };
      const err = await rejection(stub.unaryCall({ responseStatus }));
      expect(err).to.be.instanceOf(UnknownError);
      expect((err as Error).message).to.equal("test status message");
      const streamErr = await rejection((async () => { for await (const _ of stub.fullDuplexCall((async function* () { yield { responseStatus }; })())) { /* none */ } })());
      expect(streamErr).to.be.instanceOf(UnknownError);
      expect((streamErr as Error).message).to.equal("test status message");
      return;
    }
    case "special_status_message": {
      const err = await rejection(stub.unaryCall({ responseStatus: { code: 2, message: SPECIAL_MESSAGE } }));
      expect(err).to.be.instanceOf(UnknownError);
      expect((err as Error).message).to.equal(SPECIAL_MESSAGE);
      return;
    }
    case "unimplemented_method":
      expect(await rejection(stub.unimplementedCall({}))).to.be.instanceOf(UnimplementedError);
      return;
    case "unimplemented_service":
      expect(await rejection(comm.stringToProxy(UnimplementedServiceProxy, target).unimplementedCall({}))).to.be.instanceOf(UnimplementedError);
      return;
    case "client_compressed_unary":
      for (const compressed of [true, false]) {
        const res = await stub.unaryCall({ responseSize: 314159, payload: payload(271828), expectCompressed: { value: compressed } }, { compression: compressed ? "gzip" : "identity" });
        expect(res.payload!.body.length, `compressed=${compressed}`).to.equal(314159);
      }
      return;
    case "server_compressed_unary":
      for (const compressed of [true, false]) {
        const res = await stub.unaryCall({ responseSize: 314159, payload: payload(271828), responseCompressed: { value: compressed } });
        expect(res.payload!.body.length, `response_compressed=${compressed}`).to.equal(314159);
      }
      return;
  }
}
