/**
 * Wire compatibility with plain @grpc/grpc-js, both ways: what lets Go, Java
 * or grpcurl talk to Sgrid servants and Sgrid proxies call any gRPC server.
 */
import { expect } from "chai";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Application, Communicator, FailedPreconditionError } from "sgridnext";
import { EchoProxy } from "../gen/demo/echo.sgrid";
import { EchoImpl } from "../helpers/echo-servant";
import { FIXTURES } from "../helpers/paths";

function loadEcho(): grpc.ServiceClientConstructor {
  const def = protoLoader.loadSync(path.join(FIXTURES, "protos/demo/echo.proto"), {
    includeDirs: [path.join(FIXTURES, "protos")], keepCase: false, longs: Number, enums: Number, defaults: true, oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as any;
  return pkg.demo.echo.v1.Echo as grpc.ServiceClientConstructor;
}

describe("framework wire compatibility with plain @grpc/grpc-js", () => {
  it("a plain grpc-js client (proto-loader) calls a generated servant: unary, server stream, errors, health", async () => {
    const app = new Application({ handleSignals: false, app: "Test", server: "EchoServer", adapters: { EchoObj: "127.0.0.1:0" } });
    app.addServant("EchoObj", new EchoImpl("sgrid-servant"));
    await app.start();
    const port = app.adapters()[0]!.endpoint.port;
    const Echo = loadEcho();
    const client = new Echo(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as any;
    try {
      const reply = await new Promise<any>((resolve, reject) =>
        client.say({ text: "from plain grpc", envelope: { tags: [{ key: "k", value: "v" }] } }, (err: Error | null, res: unknown) => (err ? reject(err) : resolve(res))));
      expect(reply.text).to.equal("from plain grpc");
      expect(reply.envelope.tags[0]).to.include({ key: "k", value: "v" });
      expect(reply.metadata.served_by).to.equal("sgrid-servant");

      const items: any[] = [];
      await new Promise<void>((resolve, reject) => {
        const s = client.repeat({ text: "r", count: 5 });
        s.on("data", (d: unknown) => items.push(d));
        s.on("end", resolve);
        s.on("error", reject);
      });
      expect(items.map((i) => i.index)).to.deep.equal([0, 1, 2, 3, 4]);

      const err = await new Promise<grpc.ServiceError>((resolve) => client.fail({ code: "OUT_OF_STOCK", message: "gone" }, (e: grpc.ServiceError) => resolve(e)));
      expect(err.code).to.equal(grpc.status.FAILED_PRECONDITION);
      expect(err.details).to.equal("gone");
      expect(err.metadata.get("sgrid-error-code")).to.deep.equal(["OUT_OF_STOCK"]);

      // grpc.health.v1 is served for the whole server, the service and the Obj.
      const hdef = protoLoader.loadSync(path.join(FIXTURES, "../../proto/grpc/health/v1/health.proto"), { enums: String });
      const Health = (grpc.loadPackageDefinition(hdef) as any).grpc.health.v1.Health;
      const health = new Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
      for (const service of ["", "demo.echo.v1.Echo", "Test.EchoServer.EchoObj"]) {
        const res = await new Promise<any>((resolve, reject) => health.check({ service }, (e: Error | null, r: unknown) => (e ? reject(e) : resolve(r))));
        expect(res.status, service).to.equal("SERVING");
      }
      const unknown = await new Promise<grpc.ServiceError>((resolve) => health.check({ service: "nope" }, (e: grpc.ServiceError) => resolve(e)));
      expect(unknown.code).to.equal(grpc.status.NOT_FOUND);
      health.close();
    } finally {
      client.close();
      await app.stop(500);
    }
  });

  it("a generated proxy calls a plain grpc-js server", async () => {
    const Echo = loadEcho();
    const server = new grpc.Server();
    server.addService(Echo.service, {
      say: (call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) => cb(null, { text: `plain says ${call.request.text}`, index: 7 }),
      repeat: (call: grpc.ServerWritableStream<any, any>) => { for (let i = 0; i < call.request.count; i++) call.write({ index: i }); call.end(); },
      fail: (_call: unknown, cb: grpc.sendUnaryData<any>) => {
        const md = new grpc.Metadata();
        md.set("sgrid-error-code", "FAILED_PRECONDITION");
        cb({ code: grpc.status.FAILED_PRECONDITION, details: "plain refused", metadata: md } as grpc.ServiceError);
      },
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    const comm = new Communicator();
    try {
      const proxy = comm.stringToProxy(EchoProxy, `127.0.0.1:${port}`);
      const reply = await proxy.say({ text: "hi" });
      expect(reply).to.include({ text: "plain says hi", index: 7 });
      const got: number[] = [];
      for await (const r of proxy.repeat({ count: 3 })) got.push(r.index);
      expect(got).to.deep.equal([0, 1, 2]);
      const err = await proxy.fail({}).then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect((err as Error).message).to.equal("plain refused");
    } finally {
      comm.close();
      server.forceShutdown();
    }
  });
});
