/**
 * The gateway's transcoder, from descriptors fetched over a real servant's
 * server reflection: proto3 JSON in and out (camelCase names, int64 as
 * strings, enums by name, bytes base64, maps, nested messages), and JSON
 * that does not fit refused as INVALID_ARGUMENT naming the field.
 */
import { expect } from "chai";
import { Application, Communicator, InvalidArgumentError, NotFoundError, ReflectionClient } from "sgridnext";
import { Descriptors } from "../../gateway/transcoder";
import { ClockImpl, EchoImpl } from "../helpers/echo-servant";

describe("gateway transcoder (descriptors from server reflection)", function () {
  this.timeout(30_000);
  let app: Application;
  let comm: Communicator;
  let descriptors: Descriptors;
  let asked = 0;
  let now = 0;

  before(async () => {
    app = new Application({ app: "Test", server: "EchoServer", handleSignals: false, adapters: { EchoObj: "127.0.0.1:0", ClockObj: "127.0.0.1:0" } });
    app.addServant("EchoObj", new EchoImpl()).addServant("ClockObj", new ClockImpl());
    await app.start();
    const port = app.adapters().find((a) => a.obj === "Test.EchoServer.EchoObj")!.endpoint.port;
    comm = new Communicator({ registry: "" });
    descriptors = new Descriptors(() => { asked++; return new ReflectionClient(comm, `127.0.0.1:${port}`); }, { ttlMs: 60_000, now: () => now });
  });

  after(async () => {
    comm.close();
    await app.stop(1000);
  });

  it("turns proto3 JSON into the request's bytes and the reply's bytes back into JSON", async () => {
    const say = await descriptors.method("demo.echo.v1.Echo", "Say");
    expect(say.path).to.equal("/demo.echo.v1.Echo/Say");
    expect(say.kind).to.equal("unary");
    const json = {
      text: "hi", count: 2,
      envelope: {
        header: { kind: "KIND_EVENT", traceId: "t1" }, tags: [{ key: "k", value: "v" }],
        counters: { big: "9007199254740993" }, blob: Buffer.from("raw bytes").toString("base64"), priority: "PRIORITY_HIGH",
      },
    };
    const bytes = say.requestFromJson(json);
    const back = say.requestToJson(bytes) as any;
    expect(back.text).to.equal("hi");
    expect(back.envelope.header).to.deep.equal({ kind: "KIND_EVENT", traceId: "t1" });
    // int64 beyond 2^53 survives as a string; bytes as base64; enums by name.
    expect(back.envelope.counters).to.deep.equal({ big: "9007199254740993" });
    expect(Buffer.from(back.envelope.blob, "base64").toString()).to.equal("raw bytes");
    expect(back.envelope.priority).to.equal("PRIORITY_HIGH");
    // The .proto name is accepted on input too.
    expect((say.requestToJson(say.requestFromJson({ envelope: { header: { trace_id: "t2" } } })) as any).envelope.header.traceId).to.equal("t2");

    const reply = say.responseToJson(say.responseFromJson({ text: "x", metadata: { a: "b" } })) as any;
    expect(reply).to.include({ text: "x", index: 0, peer: "" });
    expect(reply.metadata).to.deep.equal({ a: "b" });
    const sum = await descriptors.method("demo.echo.v1.Echo", "Sum");
    expect(sum.kind).to.equal("client_stream");
    expect(sum.responseToJson(sum.responseFromJson({ total: "12345678901234" }))).to.deep.include({ total: "12345678901234" });
  });

  it("refuses JSON that does not fit with INVALID_ARGUMENT naming the field", async () => {
    const say = await descriptors.method("demo.echo.v1.Echo", "Say");
    const cases: Array<[unknown, string]> = [
      [{ txt: "typo" }, "txt"],
      [{ count: "many" }, "count"],
      [{ text: 12 }, "text"],
      [{ envelope: { header: { kind: "NO_SUCH_KIND" } } }, "envelope.header.kind"],
      [{ envelope: { tags: [{ key: "ok" }, { key: "k", colour: "red" }] } }, "envelope.tags[1].colour"],
      [{ envelope: { tagsById: { 7: { key: 5 } } } }, "envelope.tagsById.7.key"],
      [{ envelope: { createdAt: "yesterday" } }, "envelope.createdAt"],
      [{ envelope: "not an object" }, "envelope"],
      [[1, 2], "(request)"],
    ];
    for (const [json, field] of cases) {
      let err: unknown;
      try { say.requestFromJson(json as never); } catch (e) { err = e; }
      expect(err, JSON.stringify(json)).to.be.instanceOf(InvalidArgumentError);
      expect((err as InvalidArgumentError).data?.field, JSON.stringify(json)).to.equal(field);
      expect((err as Error).message, JSON.stringify(json)).to.contain(field);
    }
  });

  it("loads a service's descriptors once per ttl; an unknown service or method is NOT_FOUND and is asked again next time", async () => {
    const before = asked;
    await descriptors.method("demo.echo.v1.Echo", "Repeat");
    await descriptors.method("demo.echo.v1.Echo", "Chat");
    expect(asked - before).to.equal(0);
    let err: unknown;
    try { await descriptors.method("demo.echo.v1.Echo", "Nope"); } catch (e) { err = e; }
    expect(err).to.be.instanceOf(NotFoundError);
    expect((err as Error).message).to.contain("Nope");
    for (let i = 0; i < 2; i++) {
      err = undefined;
      try { await descriptors.method("no.such.Service", "X"); } catch (e) { err = e; }
      expect(err).to.be.instanceOf(NotFoundError);
    }
    expect(asked - before).to.equal(2);
    // Kept for ttlMs, then asked again (a new release of the servant may have new fields).
    now += 60_000;
    await descriptors.method("demo.echo.v1.Echo", "Say");
    await descriptors.method("demo.echo.v1.Echo", "Say");
    expect(asked - before).to.equal(3);
  });
});
