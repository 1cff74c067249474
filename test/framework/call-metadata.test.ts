/**
 * Metadata both ways on both transports: request metadata with binary (-bin)
 * values, response headers and trailers sent by a servant and read by a
 * proxy, and bad metadata refused with a clear error before anything is sent.
 */
import { expect } from "chai";
import { Application, Communicator, InvalidArgumentError, SgridError, Status, type DeepPartial, type Metadata, type ServerContext } from "sgridnext";
import { EchoProxy } from "../gen/demo/echo.sgrid";
import type { EchoReply, EchoRequest, FailRequest, SumReply } from "../gen/demo/echo";
import type { Empty } from "../gen/google/protobuf/empty";
import { EchoImpl } from "../helpers/echo-servant";

/** Echo that answers with what it received, sends `x-h` as a header and `x-t-bin` as a trailer, and records the request metadata. */
class MetadataEcho extends EchoImpl {
  seen: Array<Readonly<Metadata>> = [];

  private reflect(ctx: ServerContext): void {
    this.seen.push(ctx.metadata);
    ctx.sendHeaders({ "x-h": `headers for ${ctx.method}` });
    ctx.setTrailers({ "x-t-bin": Buffer.from([0, 1, 2, 255]) });
    ctx.setTrailers({ "x-t2": "second" });
  }

  override async say(request: EchoRequest, ctx: ServerContext): Promise<DeepPartial<EchoReply>> {
    this.reflect(ctx);
    return { text: request.text };
  }

  override async *repeat(request: EchoRequest, ctx: ServerContext): AsyncIterable<DeepPartial<EchoReply>> {
    this.reflect(ctx);
    for (let i = 0; i < request.count; i++) yield { index: i };
  }

  override async sum(requests: AsyncIterable<EchoRequest>, ctx: ServerContext): Promise<DeepPartial<SumReply>> {
    this.reflect(ctx);
    let total = 0;
    for await (const r of requests) total += r.count;
    return { total };
  }

  override async *chat(requests: AsyncIterable<EchoRequest>, ctx: ServerContext): AsyncIterable<DeepPartial<EchoReply>> {
    this.reflect(ctx);
    for await (const r of requests) yield { text: r.text };
  }

  override async fail(request: FailRequest, ctx: ServerContext): Promise<DeepPartial<Empty>> {
    if (request.code === "BAD_HEADER") ctx.sendHeaders({ "x-bad-bin": "not a buffer" as never });
    ctx.setTrailers({ "x-why": "refused" });
    throw new SgridError(request.code, request.message, { status: Status.FAILED_PRECONDITION });
  }
}

async function* gen<T>(items: T[]): AsyncIterable<T> {
  for (const i of items) yield i;
}

for (const protocol of ["grpc", "sgrid"] as const) {
  describe(`framework call metadata over ${protocol}`, function () {
    this.timeout(30_000);
    let app: Application;
    let servant: MetadataEcho;
    let comm: Communicator;
    let proxy: EchoProxy;

    before(async () => {
      servant = new MetadataEcho();
      app = new Application({ handleSignals: false, app: "Test", server: "Md", adapters: { EchoObj: `${protocol === "sgrid" ? "sgrid://" : ""}127.0.0.1:0` } });
      app.addServant("EchoObj", servant);
      await app.start();
      comm = new Communicator();
      proxy = comm.stringToProxy(EchoProxy, `Test.Md.EchoObj@${protocol === "sgrid" ? "sgrid" : "tcp"} -h 127.0.0.1 -p ${app.adapters()[0]!.endpoint.port}`);
    });

    after(async () => {
      comm.close();
      await app.stop(500);
    });

    function capture(): { headers?: Metadata; trailers?: Metadata; options: { onHeaders: (m: Metadata) => void; onTrailers: (m: Metadata) => void } } {
      const c: { headers?: Metadata; trailers?: Metadata; options: { onHeaders: (m: Metadata) => void; onTrailers: (m: Metadata) => void } } = {
        options: { onHeaders: (m) => { c.headers = m; }, onTrailers: (m) => { c.trailers = m; } },
      };
      return c;
    }

    function expectReflected(c: { headers?: Metadata; trailers?: Metadata }, path: string): void {
      expect(c.headers?.["x-h"]).to.equal(`headers for ${path}`);
      expect(Buffer.isBuffer(c.trailers?.["x-t-bin"])).to.equal(true);
      expect([...(c.trailers!["x-t-bin"] as Buffer)]).to.deep.equal([0, 1, 2, 255]);
      expect(c.trailers?.["x-t2"]).to.equal("second");
      expect(c.trailers).to.not.have.property("sgrid-error-code");
    }

    it("request metadata reaches the servant, -bin values as Buffers, text values as strings", async () => {
      servant.seen = [];
      const bin = Buffer.from([0xde, 0xad, 0x00, 0xbe, 0xef]);
      await proxy.say({ text: "x" }, { metadata: { "x-trace": "abc 123", "x-blob-bin": bin } });
      const md = servant.seen[0]!;
      expect(md["x-trace"]).to.equal("abc 123");
      expect(Buffer.isBuffer(md["x-blob-bin"])).to.equal(true);
      expect(Buffer.compare(md["x-blob-bin"] as Buffer, bin)).to.equal(0);
    });

    it("a servant's headers and trailers reach the proxy on unary, server-streaming, client-streaming and bidi calls", async () => {
      const u = capture();
      expect((await proxy.say({ text: "u" }, u.options)).text).to.equal("u");
      expectReflected(u, "/demo.echo.v1.Echo/Say");

      const s = capture();
      const got: number[] = [];
      for await (const r of proxy.repeat({ count: 3 }, s.options)) got.push(r.index);
      expect(got).to.deep.equal([0, 1, 2]);
      expectReflected(s, "/demo.echo.v1.Echo/Repeat");

      const c = capture();
      expect(Number((await proxy.sum(gen([{ count: 2 }, { count: 5 }]), c.options)).total)).to.equal(7);
      expectReflected(c, "/demo.echo.v1.Echo/Sum");

      const b = capture();
      const texts: string[] = [];
      for await (const r of proxy.chat(gen([{ text: "a" }, { text: "b" }]), b.options)) texts.push(r.text);
      expect(texts).to.deep.equal(["a", "b"]);
      expectReflected(b, "/demo.echo.v1.Echo/Chat");
    });

    it("trailers come with an error too, and a plain await without callbacks is unchanged", async () => {
      const f = capture();
      const err = await proxy.fail({ code: "NOPE", message: "no" }, f.options).then(() => undefined, (e: unknown) => e);
      expect((err as SgridError).code).to.equal("NOPE");
      expect(f.trailers?.["x-why"]).to.equal("refused");
      expect(await proxy.say({ text: "plain" })).to.include({ text: "plain" });
    });

    it("bad metadata is refused before sending, with a clear InvalidArgumentError, and the connection keeps serving", async () => {
      const before = servant.calls;
      servant.seen = [];
      const cases: Array<[Metadata, RegExp]> = [
        [{ "x-data-bin": "a string" }, /binary \(-bin\).*must be a Buffer/],
        [{ "grpc-timeout": "1S" }, /reserved/],
        [{ "content-type": "text/plain" }, /reserved/],
        [{ "Bad Key": "v" }, /not a valid gRPC metadata key/],
        [{ "x-text": "caf\u00e9" }, /outside printable ASCII/],
        [{ "x-text": Buffer.from("v") }, /takes a string value/],
      ];
      for (const [metadata, message] of cases) {
        const err = await proxy.say({ text: "x" }, { metadata }).then(() => undefined, (e: unknown) => e);
        expect(err, JSON.stringify(Object.keys(metadata))).to.be.instanceOf(InvalidArgumentError);
        expect((err as Error).message).to.match(message);
        const streamErr = await (async () => { for await (const _ of proxy.chat(gen([{ text: "a" }]), { metadata })) { /* none */ } })().then(() => undefined, (e: unknown) => e);
        expect(streamErr).to.be.instanceOf(InvalidArgumentError);
      }
      expect(servant.seen, "nothing reached the servant").to.deep.equal([]);
      expect(servant.calls).to.equal(before);
      expect((await proxy.say({ text: "still serving" })).text).to.equal("still serving");
    });

    it("a servant sending a bad header gets InvalidArgumentError, which its caller sees; the connection keeps serving", async () => {
      const err = await proxy.fail({ code: "BAD_HEADER" }).then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(InvalidArgumentError);
      expect((err as Error).message).to.match(/x-bad-bin.*must be a Buffer/);
      expect((await proxy.say({ text: "after" })).text).to.equal("after");
    });
  });
}
