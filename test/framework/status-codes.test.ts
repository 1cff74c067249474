/**
 * Every gRPC status 1..16 from any peer comes back as its typed error, and a
 * proxy retries by status as ERRORS.md ("Statuses from any peer, and retries") says.
 */
import { expect } from "chai";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import {
  AbortedError, AlreadyExistsError, Application, CancelledError, Communicator, DataLossError, DeadlineExceededError, FailedPreconditionError,
  InternalError, InvalidArgumentError, NotFoundError, OutOfRangeError, PermissionDeniedError, ResourceExhaustedError, SgridError, Status,
  UnauthenticatedError, UnavailableError, UnimplementedError, UnknownError, serverStats, type DeepPartial,
} from "sgridnext";
import { EchoProxy } from "../gen/demo/echo.sgrid";
import { EchoImpl } from "../helpers/echo-servant";
import type { FailRequest } from "../gen/demo/echo";
import type { Empty } from "../gen/google/protobuf/empty";
import { FIXTURES } from "../helpers/paths";

const CLASS_OF: Record<number, new (message: string) => SgridError> = {
  [Status.CANCELLED]: CancelledError,
  [Status.UNKNOWN]: UnknownError,
  [Status.INVALID_ARGUMENT]: InvalidArgumentError,
  [Status.DEADLINE_EXCEEDED]: DeadlineExceededError,
  [Status.NOT_FOUND]: NotFoundError,
  [Status.ALREADY_EXISTS]: AlreadyExistsError,
  [Status.PERMISSION_DENIED]: PermissionDeniedError,
  [Status.RESOURCE_EXHAUSTED]: ResourceExhaustedError,
  [Status.FAILED_PRECONDITION]: FailedPreconditionError,
  [Status.ABORTED]: AbortedError,
  [Status.OUT_OF_RANGE]: OutOfRangeError,
  [Status.UNIMPLEMENTED]: UnimplementedError,
  [Status.INTERNAL]: InternalError,
  [Status.UNAVAILABLE]: UnavailableError,
  [Status.DATA_LOSS]: DataLossError,
  [Status.UNAUTHENTICATED]: UnauthenticatedError,
};

function loadEcho(): grpc.ServiceClientConstructor {
  const def = protoLoader.loadSync(path.join(FIXTURES, "protos/demo/echo.proto"), { includeDirs: [path.join(FIXTURES, "protos")], longs: Number, defaults: true });
  return (grpc.loadPackageDefinition(def) as any).demo.echo.v1.Echo as grpc.ServiceClientConstructor;
}

/** A plain grpc-js server (no Sgrid codes on the wire): `fail` answers the status named by its `code` field; `lookup` counts and answers `text`'s status. */
async function plainServer(): Promise<{ port: number; lookups: () => number; stop: () => void }> {
  const server = new grpc.Server();
  let lookups = 0;
  server.addService(loadEcho().service, {
    fail: (call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) => cb({ code: Number(call.request.code), details: `plain status ${call.request.code}` }),
    lookup: (call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) => {
      lookups++;
      cb({ code: Number(call.request.text), details: "plain lookup failed" });
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { port, lookups: () => lookups, stop: () => server.forceShutdown() };
}

class ThrowingEcho extends EchoImpl {
  override async fail(request: FailRequest): Promise<DeepPartial<Empty>> {
    throw new CLASS_OF[Number(request.code)]!(`typed ${request.code}`);
  }
}

describe("framework status codes from any peer", function () {
  this.timeout(30_000);

  it("a plain gRPC server's statuses 1..16 arrive as their typed errors, with the peer's message", async () => {
    const plain = await plainServer();
    const comm = new Communicator();
    try {
      const proxy = comm.stringToProxy(EchoProxy, `127.0.0.1:${plain.port}`);
      for (let s = 1; s <= 16; s++) {
        const err = await proxy.fail({ code: String(s) }).then(() => undefined, (e: unknown) => e);
        expect(err, `status ${s}`).to.be.instanceOf(CLASS_OF[s]!);
        expect((err as SgridError).status, `status ${s}`).to.equal(s);
        expect((err as SgridError).message).to.equal(`plain status ${s}`);
      }
    } finally {
      comm.close();
      plain.stop();
    }
  });

  it("a unary response that does not decode is INTERNAL, an OK status without one UNIMPLEMENTED, and the proxy keeps calling", async () => {
    // A plain gRPC peer that answers Say with raw bytes, as a response stream: one message or none.
    const server = new grpc.Server();
    const raw = (b: Buffer) => b;
    const say = { path: "/demo.echo.v1.Echo/Say", requestStream: false, responseStream: true, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw };
    let answer: Buffer[] = [];
    server.addService({ Say: say } as grpc.ServiceDefinition, {
      Say: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
        for (const b of answer) call.write(b);
        call.end();
      },
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    const comm = new Communicator();
    try {
      const proxy = comm.stringToProxy(EchoProxy, `127.0.0.1:${port}`);
      const outcome = (bytes: Buffer[]) => { answer = bytes; return proxy.say({ text: "x" }).then((r) => r, (e: unknown) => e); };
      // field 1, wire type 7: no such wire type
      const undecodable = await outcome([Buffer.from([0x0f])]);
      expect(undecodable).to.be.instanceOf(InternalError);
      expect((undecodable as SgridError).message).to.match(/^Response message parsing error: /);
      expect(await outcome([])).to.be.instanceOf(UnimplementedError).with.property("message", "No message received");
      // field 1 (text) = "ok": the same connection still serves
      expect(await outcome([Buffer.from([0x0a, 0x02, 0x6f, 0x6b])])).to.deep.include({ text: "ok" });
    } finally {
      comm.close();
      server.forceShutdown();
    }
  });

  for (const protocol of ["grpc", "sgrid"]) {
    it(`a servant's typed errors of every status come back as the same class over ${protocol}`, async () => {
      const app = new Application({ handleSignals: false, app: "Test", server: "Codes", adapters: { EchoObj: `${protocol === "sgrid" ? "sgrid://" : ""}127.0.0.1:0` } });
      app.addServant("EchoObj", new ThrowingEcho());
      await app.start();
      const comm = new Communicator();
      try {
        const ep = app.adapters()[0]!.endpoint;
        const proxy = comm.stringToProxy(EchoProxy, `Test.Codes.EchoObj@${protocol === "sgrid" ? "sgrid" : "tcp"} -h 127.0.0.1 -p ${ep.port}`);
        for (let s = 1; s <= 16; s++) {
          const err = await proxy.fail({ code: String(s) }).then(() => undefined, (e: unknown) => e);
          expect(err, `status ${s}`).to.be.instanceOf(CLASS_OF[s]!);
          expect((err as SgridError).message).to.equal(`typed ${s}`);
        }
      } finally {
        comm.close();
        await app.stop(500);
      }
    });
  }

  for (const protocol of ["grpc", "sgrid"]) {
    it(`a method the servant does not implement answers UNIMPLEMENTED on every call kind over ${protocol}, and is counted`, async () => {
      const servant = new EchoImpl();
      for (const m of ["say", "repeat", "sum", "chat"]) (servant as unknown as Record<string, unknown>)[m] = undefined;
      const app = new Application({ handleSignals: false, app: "Test", server: `Unimpl${protocol}`, adapters: { EchoObj: `${protocol === "sgrid" ? "sgrid://" : ""}127.0.0.1:0` } });
      app.addServant("EchoObj", servant);
      await app.start();
      const comm = new Communicator();
      try {
        const ep = app.adapters()[0]!.endpoint;
        const proxy = comm.stringToProxy(EchoProxy, `Test.Unimpl${protocol}.EchoObj@${protocol === "sgrid" ? "sgrid" : "tcp"} -h 127.0.0.1 -p ${ep.port}`);
        async function* one() { yield { text: "x" }; }
        const drain = async (it: AsyncIterable<unknown>) => { for await (const _ of it) { /* none */ } };
        const outcomes = [
          await proxy.say({}).then(() => undefined, (e: unknown) => e),
          await drain(proxy.repeat({ count: 1 })).then(() => undefined, (e: unknown) => e),
          await proxy.sum(one()).then(() => undefined, (e: unknown) => e),
          await drain(proxy.chat(one())).then(() => undefined, (e: unknown) => e),
        ];
        for (const e of outcomes) expect(e).to.be.instanceOf(UnimplementedError);
        for (const m of ["Say", "Repeat", "Sum", "Chat"]) {
          expect(serverStats.get(`Test.Unimpl${protocol}.EchoObj`, `/demo.echo.v1.Echo/${m}`).errorsByCode.get("UNIMPLEMENTED"), m).to.equal(1);
        }
      } finally {
        comm.close();
        await app.stop(500);
      }
    });
  }

  it("an idempotent call is retried on another endpoint for ABORTED, INTERNAL and RESOURCE_EXHAUSTED, never for UNKNOWN or business errors", async () => {
    const a = await plainServer();
    const b = await plainServer();
    const comm = new Communicator();
    try {
      const proxy = comm.stringToProxy(EchoProxy, `127.0.0.1:${a.port},127.0.0.1:${b.port}`);
      const expectations: Array<[Status, number]> = [
        // three attempts: the proxy's default maxAttempts, over two endpoints
        [Status.ABORTED, 3], [Status.INTERNAL, 3], [Status.RESOURCE_EXHAUSTED, 3],
        [Status.UNKNOWN, 1], [Status.NOT_FOUND, 1], [Status.DATA_LOSS, 1], [Status.OUT_OF_RANGE, 1], [Status.INVALID_ARGUMENT, 1],
      ];
      for (const [status, attempts] of expectations) {
        const before = a.lookups() + b.lookups();
        const err = await proxy.lookup({ text: String(status) }).then(() => undefined, (e: unknown) => e);
        expect(err, Status[status]).to.be.instanceOf(CLASS_OF[status]!);
        expect(a.lookups() + b.lookups() - before, `attempts for ${Status[status]}`).to.equal(attempts);
      }
      // A method that is not idempotent is never retried for them.
      const before = a.lookups() + b.lookups();
      await proxy.fail({ code: String(Status.ABORTED) }).catch(() => undefined);
      expect(a.lookups() + b.lookups()).to.equal(before);
    } finally {
      comm.close();
      a.stop();
      b.stop();
    }
  });
});
