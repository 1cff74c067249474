/**
 * The standard interop TestService (grpc/testing/test.proto) as a Sgrid
 * servant, behaving as grpc's interop-test-descriptions.md asks of a server:
 * payloads of zeros of the asked sizes, x-grpc-test-echo-initial echoed as a
 * response header and x-grpc-test-echo-trailing-bin as a trailer,
 * response_status returned as the call's status.
 *
 * Not done, as the descriptions allow for servers that cannot: checking that a
 * request marked expect_compressed really came compressed, and compressing a
 * response marked response_compressed (grpc-js, under the gRPC adapter, neither
 * exposes a message's compressed flag nor compresses responses).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { errorFromWire, UnimplementedError, type DeepPartial, type ServerContext } from "sgridnext";
import { TestServiceServant } from "../gen/grpc/testing/test.sgrid";
import type { Empty } from "../gen/grpc/testing/empty";
import type {
  EchoStatus, ResponseParameters, SimpleRequest, SimpleResponse, StreamingInputCallRequest, StreamingInputCallResponse, StreamingOutputCallRequest,
  StreamingOutputCallResponse,
} from "../gen/grpc/testing/messages";

export const ECHO_INITIAL = "x-grpc-test-echo-initial";
export const ECHO_TRAILING = "x-grpc-test-echo-trailing-bin";

function echoMetadata(ctx: ServerContext): void {
  const initial = ctx.metadata[ECHO_INITIAL];
  if (initial !== undefined) ctx.sendHeaders({ [ECHO_INITIAL]: initial });
  const trailing = ctx.metadata[ECHO_TRAILING];
  if (trailing !== undefined) ctx.setTrailers({ [ECHO_TRAILING]: trailing });
}

function failIfAsked(status: EchoStatus | undefined): void {
  // The typed error of that status (UnknownError for 2, ...), as a plain gRPC server would answer.
  if (status !== undefined && status.code !== 0) throw errorFromWire(status.code, status.message);
}

function payload(size: number): { body: Buffer } {
  return { body: Buffer.alloc(size) };
}

async function* respond(params: ResponseParameters[], ctx: ServerContext): AsyncIterable<DeepPartial<StreamingOutputCallResponse>> {
  for (const p of params) {
    if (p.intervalUs > 0) await sleep(p.intervalUs / 1000, undefined, { signal: ctx.signal });
    yield { payload: payload(p.size) };
  }
}

export class InteropServant extends TestServiceServant {
  async emptyCall(): Promise<DeepPartial<Empty>> {
    return {};
  }

  async unaryCall(request: SimpleRequest, ctx: ServerContext): Promise<DeepPartial<SimpleResponse>> {
    echoMetadata(ctx);
    failIfAsked(request.responseStatus);
    return { payload: payload(request.responseSize) };
  }

  async cacheableUnaryCall(request: SimpleRequest, ctx: ServerContext): Promise<DeepPartial<SimpleResponse>> {
    return this.unaryCall(request, ctx);
  }

  async *streamingOutputCall(request: StreamingOutputCallRequest, ctx: ServerContext): AsyncIterable<DeepPartial<StreamingOutputCallResponse>> {
    yield* respond(request.responseParameters, ctx);
    failIfAsked(request.responseStatus);
  }

  async streamingInputCall(requests: AsyncIterable<StreamingInputCallRequest>): Promise<DeepPartial<StreamingInputCallResponse>> {
    let total = 0;
    for await (const r of requests) total += r.payload?.body.length ?? 0;
    return { aggregatedPayloadSize: total };
  }

  async *fullDuplexCall(requests: AsyncIterable<StreamingOutputCallRequest>, ctx: ServerContext): AsyncIterable<DeepPartial<StreamingOutputCallResponse>> {
    echoMetadata(ctx);
    for await (const r of requests) {
      failIfAsked(r.responseStatus);
      yield* respond(r.responseParameters, ctx);
    }
  }

  async *halfDuplexCall(requests: AsyncIterable<StreamingOutputCallRequest>, ctx: ServerContext): AsyncIterable<DeepPartial<StreamingOutputCallResponse>> {
    const all: StreamingOutputCallRequest[] = [];
    for await (const r of requests) all.push(r);
    for (const r of all) yield* respond(r.responseParameters, ctx);
  }

  async unimplementedCall(): Promise<DeepPartial<Empty>> {
    throw new UnimplementedError("grpc.testing.TestService/UnimplementedCall is not implemented, as the interop suite asks");
  }
}
