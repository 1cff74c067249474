/**
 * Server reflection on every gRPC adapter, driven by a generic client that
 * knows no generated code: grpc-js with @grpc/proto-loader (protobufjs, not
 * the codecs Sgrid generates), holding only the public reflection.proto.
 * It lists the services, fetches descriptors, builds a client from them and
 * calls methods with plain objects. Then the runtime's own ReflectionClient
 * (what the admin console will use) does the same with JSON, on both
 * transports.
 */
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { expect } from "chai";
import { Application, Communicator, InvalidArgumentError, NotFoundError, ReflectionClient } from "sgridnext";
import { ClockImpl, EchoImpl } from "../helpers/echo-servant";
import { REPO_ROOT } from "../helpers/paths";

type Version = "v1" | "v1alpha";

interface GenericResponse {
  list_services_response?: { service: Array<{ name: string }> };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_code: number; error_message: string };
  all_extension_numbers_response?: { base_type_name: string; extension_number: number[] };
  message_response?: string;
}

/** One reflection stream of a generic client: ask() sends a request and waits for its answer. */
function openReflection(version: Version, address: string) {
  const def = protoLoader.loadSync(path.join(REPO_ROOT, `proto/grpc/reflection/${version}/reflection.proto`), { keepCase: true, oneofs: true, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { reflection: Record<Version, { ServerReflection: grpc.ServiceClientConstructor }> } };
  const client = new pkg.grpc.reflection[version].ServerReflection(address, grpc.credentials.createInsecure());
  const stream = (client as unknown as { ServerReflectionInfo(): grpc.ClientDuplexStream<object, GenericResponse> }).ServerReflectionInfo();
  const waiting: Array<{ resolve: (r: GenericResponse) => void; reject: (e: Error) => void }> = [];
  stream.on("data", (r: GenericResponse) => waiting.shift()?.resolve(r));
  stream.on("error", (e: Error) => { for (const w of waiting.splice(0)) w.reject(e); });
  return {
    ask(request: object): Promise<GenericResponse> {
      return new Promise((resolve, reject) => { waiting.push({ resolve, reject }); stream.write(request); });
    },
    close() { stream.end(); client.close(); },
  };
}

/** A FileDescriptorSet (field 1, repeated FileDescriptorProto) from the serialized files. */
function descriptorSet(files: Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    const len: number[] = [];
    let n = f.length;
    while (n > 0x7f) { len.push((n & 0x7f) | 0x80); n >>>= 7; }
    len.push(n);
    parts.push(Buffer.from([0x0a, ...len]), f);
  }
  return Buffer.concat(parts);
}

function unary<T>(client: grpc.Client, method: string, request: object): Promise<T> {
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, (r: object, cb: (e: Error | null, v: T) => void) => void>)[method]!(request, (e, v) => (e ? reject(e) : resolve(v)));
  });
}

describe("server reflection on gRPC adapters", function () {
  this.timeout(60_000);
  let app: Application;
  let grpcPort: number;
  let sgridPort: number;
  let comm: Communicator;

  before(async () => {
    app = new Application({
      app: "Test", server: "EchoServer", handleSignals: false,
      adapters: { EchoObj: ["127.0.0.1:0", "sgrid://127.0.0.1:0"], ClockObj: "127.0.0.1:0" },
    });
    app.addServant("EchoObj", new EchoImpl()).addServant("ClockObj", new ClockImpl());
    await app.start();
    grpcPort = app.adapters().find((a) => a.obj === "Test.EchoServer.EchoObj" && a.endpoint.protocol === "grpc")!.endpoint.port;
    sgridPort = app.adapters().find((a) => a.obj === "Test.EchoServer.EchoObj" && a.endpoint.protocol === "sgrid")!.endpoint.port;
    comm = new Communicator({ registry: "" });
  });

  after(async () => {
    comm.close();
    await app.stop(1000);
  });

  for (const version of ["v1", "v1alpha"] as const) {
    it(`${version}: a generic client lists the services, fetches descriptors and calls methods with no generated code`, async () => {
      const r = openReflection(version, `127.0.0.1:${grpcPort}`);
      try {
        const list = await r.ask({ list_services: "" });
        const names = list.list_services_response!.service.map((s) => s.name);
        expect(names).to.include.members(["demo.echo.v1.Echo", "demo.echo.v1.Clock", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]);

        const files = await r.ask({ file_containing_symbol: "demo.echo.v1.Echo" });
        const protos = files.file_descriptor_response!.file_descriptor_proto;
        const pkgDef = protoLoader.loadFileDescriptorSetFromBuffer(descriptorSet(protos), { keepCase: true, longs: Number, defaults: true, oneofs: true });
        // The file and its imports, transitively: the fixture imports acme/common/types.proto and two well-known types.
        expect(Object.keys(pkgDef)).to.include.members(["demo.echo.v1.Echo", "demo.echo.v1.EchoRequest", "acme.common.v1.Envelope", "google.protobuf.Timestamp"]);
        const Echo = (grpc.loadPackageDefinition(pkgDef) as any).demo.echo.v1.Echo as grpc.ServiceClientConstructor;
        const echo = new Echo(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure());
        try {
          const reply = await unary<{ text: string; envelope: { tags: Array<{ key: string }> } }>(echo, "Say", { text: "from a generic client", envelope: { tags: [{ key: "k", value: "v" }] } });
          expect(reply.text).to.equal("from a generic client");
          expect(reply.envelope.tags.map((t) => t.key)).to.deep.equal(["k"]);
          const repeated: string[] = await new Promise((resolve, reject) => {
            const out: string[] = [];
            const s = (echo as any).Repeat({ text: "r", count: 3 }) as grpc.ClientReadableStream<{ text: string; index: number }>;
            s.on("data", (m) => out.push(`${m.text}${m.index}`)).on("error", reject).on("end", () => resolve(out));
          });
          expect(repeated).to.deep.equal(["r0", "r1", "r2"]);
        } finally {
          echo.close();
        }

        // Symbols other than services resolve too: a method, a message, a nested enum.
        for (const symbol of ["demo.echo.v1.Echo.Say", "demo.echo.v1.SumReply", "acme.common.v1.Envelope.Header.Kind"]) {
          const res = await r.ask({ file_containing_symbol: symbol });
          expect(res.file_descriptor_response?.file_descriptor_proto.length, symbol).to.be.greaterThan(0);
        }
        const byName = await r.ask({ file_by_filename: "google/protobuf/timestamp.proto" });
        expect(byName.file_descriptor_response!.file_descriptor_proto).to.have.length(1);
      } finally {
        r.close();
      }
    });

    it(`${version}: an unknown symbol, file or extension gets NOT_FOUND on the stream, and the stream keeps serving`, async () => {
      const r = openReflection(version, `127.0.0.1:${grpcPort}`);
      try {
        const unknown = await r.ask({ file_containing_symbol: "no.such.Service" });
        expect(unknown.error_response).to.include({ error_code: grpc.status.NOT_FOUND });
        expect(unknown.error_response!.error_message).to.contain("no.such.Service");
        const noFile = await r.ask({ file_by_filename: "nowhere.proto" });
        expect(noFile.error_response?.error_code).to.equal(grpc.status.NOT_FOUND);
        const noExt = await r.ask({ file_containing_extension: { containing_type: "demo.echo.v1.EchoRequest", extension_number: 99 } });
        expect(noExt.error_response?.error_code).to.equal(grpc.status.NOT_FOUND);
        const noType = await r.ask({ all_extension_numbers_of_type: "no.such.Message" });
        expect(noType.error_response?.error_code).to.equal(grpc.status.NOT_FOUND);
        const empty = await r.ask({});
        expect(empty.error_response?.error_code).to.equal(grpc.status.INVALID_ARGUMENT);
        // Same stream, still answering:
        const list = await r.ask({ list_services: "" });
        expect(list.list_services_response!.service.map((s) => s.name)).to.include("demo.echo.v1.Echo");
        const ext = await r.ask({ all_extension_numbers_of_type: "demo.echo.v1.EchoRequest" });
        expect(ext.all_extension_numbers_response).to.deep.equal({ base_type_name: "demo.echo.v1.EchoRequest", extension_number: [] });
      } finally {
        r.close();
      }
    });
  }

  it("ReflectionClient lists, describes and calls with JSON, on the gRPC adapter and on the native one", async () => {
    const rc = new ReflectionClient(comm, `127.0.0.1:${grpcPort}`);
    expect(await rc.listServices()).to.include.members(["demo.echo.v1.Echo", "demo.echo.v1.Clock"]);
    const svc = await rc.describeService("demo.echo.v1.Echo");
    expect(svc.file).to.equal("demo/echo.proto");
    expect(svc.methods.map((m) => `${m.name}:${m.kind}`)).to.include.members(["Say:unary", "Repeat:server_stream", "Sum:client_stream", "Chat:bidi"]);
    expect(await rc.describeMethod("demo.echo.v1.Echo/Lookup")).to.deep.include({ path: "/demo.echo.v1.Echo/Lookup", requestType: "demo.echo.v1.EchoRequest", idempotent: true });

    for (const target of [`127.0.0.1:${grpcPort}`, `Test.EchoServer.EchoObj@sgrid -h 127.0.0.1 -p ${sgridPort}`]) {
      const say = (await rc.call("demo.echo.v1.Echo/Say", { text: "json", envelope: { createdAt: "2026-03-04T05:06:07.089Z" } }, { target })) as Record<string, any>;
      expect(say.text, target).to.equal("json");
      expect(say.envelope.createdAt).to.equal("2026-03-04T05:06:07.089Z");
      expect(await rc.call("demo.echo.v1.Echo.Repeat", { text: "x", count: 2 }, { target })).to.deep.equal([
        { text: "x", index: 0, metadata: {}, peer: "" },
        { text: "x", index: 1, metadata: {}, peer: "" },
      ]);
      expect(await rc.call("/demo.echo.v1.Echo/Sum", [{ count: 2 }, { count: 5 }], { target })).to.deep.equal({ total: "7", count: 2 });
      expect(((await rc.call("demo.echo.v1.Echo/Chat", [{ text: "a" }, { text: "b" }], { target })) as Array<Record<string, unknown>>).map((m) => m.text)).to.deep.equal(["a", "b"]);
    }
    expect(await rc.call("demo.echo.v1.Clock/Now", {})).to.equal("2026-01-02T03:04:05.678Z");
  });

  it("ReflectionClient: unknown service or method is NotFoundError, a request that does not fit is InvalidArgumentError, and the client keeps working", async () => {
    const rc = new ReflectionClient(comm, `127.0.0.1:${grpcPort}`);
    await expectRejects(rc.describeService("no.such.Service"), NotFoundError, "no.such.Service");
    await expectRejects(rc.describeMethod("demo.echo.v1.Echo/Nope"), NotFoundError, "Nope");
    await expectRejects(rc.call("demo.echo.v1.Echo/Say", { text: 5, nosuchfield: true }), InvalidArgumentError, "demo.echo.v1.EchoRequest");
    await expectRejects(rc.call("not-a-method", {}), InvalidArgumentError, "not a method name");
    expect(((await rc.call("demo.echo.v1.Echo/Say", { text: "still fine" })) as Record<string, unknown>).text).to.equal("still fine");
  });

  it("ReflectionClient: request skeletons, checkRequest without sending, maxMessages cuts a server stream", async () => {
    const rc = new ReflectionClient(comm, `127.0.0.1:${grpcPort}`);
    expect(await rc.requestSkeleton("demo.echo.v1.Echo/Say")).to.deep.equal({ text: "", count: 0 });
    await rc.checkRequest("demo.echo.v1.Echo/Say", { text: "ok" });
    const bad = await rc.checkRequest("demo.echo.v1.Echo/Say", { text: 5 }).then(() => undefined, (e: Error) => e);
    expect(bad).to.be.instanceOf(InvalidArgumentError);
    expect((bad as InvalidArgumentError).data?.field).to.equal("request");
    await expectRejects(rc.checkRequest("demo.echo.v1.Echo/Sum", { count: 1 }), InvalidArgumentError, "JSON array");
    await expectRejects(rc.checkRequest("demo.echo.v1.Echo/Sum", [{ count: 1 }, { count: "x" }]), InvalidArgumentError, "request [1]");
    await expectRejects(rc.checkRequest("demo.echo.v1.Echo/Nope", {}), NotFoundError, "Nope");
    const cut = (await rc.call("demo.echo.v1.Echo/Repeat", { text: "x", count: 50 }, { maxMessages: 3 })) as Array<Record<string, unknown>>;
    expect(cut.map((m) => m.index)).to.deep.equal([0, 1, 2]);
  });

  it("is not served when the application turns it off", async () => {
    const quiet = new Application({ app: "Test", server: "Quiet", handleSignals: false, reflection: false, adapters: { EchoObj: "127.0.0.1:0" } });
    quiet.addServant("EchoObj", new EchoImpl());
    await quiet.start();
    try {
      const rc = new ReflectionClient(comm, `127.0.0.1:${quiet.adapters()[0]!.endpoint.port}`);
      await expectRejects(rc.listServices(), Error, "UNIMPLEMENTED");
    } finally {
      await quiet.stop(500);
    }
  });
});

async function expectRejects(p: Promise<unknown>, cls: new (...a: any[]) => Error, text: string): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(cls);
    expect(String((err as Error).message) + String((err as { code?: string }).code)).to.contain(text);
    return;
  }
  throw new Error(`expected a ${cls.name} mentioning ${text}`);
}
