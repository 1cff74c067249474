/**
 * "Try a call" through the admin API: a real framework servant process
 * (test/helpers/echo-server-main, server reflection on) listening on the
 * port its instance was deployed with, registered in a real registry whose
 * node session (FakeAgent) reports the instance active; the admin app finds
 * the Obj's endpoint there, lists the methods from reflection and calls them
 * with JSON. Checked: a unary call with its reply and status, a server
 * stream bounded to 100 messages, a client stream from a JSON array, a
 * servant error shown as a status, JSON that does not fit (400 naming the
 * field), an unknown method (404), no active endpoint (503), a viewer and
 * another application's operator refused (403), a bad timeout (400), and
 * the event log: one entry per call, without the request or reply body.
 */
import { expect } from "chai";
import { Client } from "./helpers";
import { ECHO_OBJ as OBJ, startServantStack, type ServantStack } from "./servant-stack";

const SECRET = "s3cret-in-the-body";

describe("admin: try a call (reflection, JSON) @slow", function () {
  this.timeout(90_000);
  let s: ServantStack;
  let admin: Client;
  let ops: Client;
  let viewer: Client;
  let other: Client;
  let servant: ServantStack["servant"];

  before(async () => {
    s = await startServantStack([["try-ops", "password-123", "Test", "operator"], ["try-viewer", "password-123", "Test", "viewer"], ["try-other", "password-123", "Other", "operator"]], async (a) => {
      // Before any version is published the instance is not active: no endpoint.
      const none = await a.post("/api/try/call", { obj: OBJ, method: "demo.echo.v1.Echo/Say", request: {} });
      expect(none.status, JSON.stringify(none.body)).to.equal(503);
      expect(none.body.error.code).to.equal("NO_ENDPOINT");
    });
    ({ admin, servant } = s);
    ops = new Client(s.stack.url);
    viewer = new Client(s.stack.url);
    other = new Client(s.stack.url);
    expect((await ops.login("try-ops", "password-123")).status).to.equal(200);
    expect((await viewer.login("try-viewer", "password-123")).status).to.equal(200);
    expect((await other.login("try-other", "password-123")).status).to.equal(200);
  });

  after(async () => {
    await s?.stop();
  });

  it("lists the Obj's services and methods from reflection, with request skeletons", async () => {
    const r = await ops.get(`/api/try/methods?obj=${OBJ}`);
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    const echo = r.body.services.find((s: any) => s.name === "demo.echo.v1.Echo");
    expect(echo, JSON.stringify(r.body.services.map((s: any) => s.name))).to.not.equal(undefined);
    expect(r.body.services.map((s: any) => s.name)).not.to.include("grpc.reflection.v1.ServerReflection");
    const say = echo.methods.find((m: any) => m.name === "Say");
    expect(say).to.include({ fullName: "demo.echo.v1.Echo/Say", kind: "unary", requestType: "demo.echo.v1.EchoRequest" });
    expect(say.skeleton).to.deep.equal({ text: "", count: 0 });
    expect(echo.methods.find((m: any) => m.name === "Repeat").kind).to.equal("server_stream");
  });

  it("a unary call: reply, status OK, headers and trailers, latency", async () => {
    const r = await ops.post("/api/try/call", { obj: OBJ, method: "demo.echo.v1.Echo/Say", request: { text: SECRET } });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    expect(r.body.status).to.deep.equal({ name: "OK", code: "OK", message: "" });
    expect(r.body.reply.text).to.equal(SECRET);
    expect(r.body.reply.metadata.served_by).to.equal("echo");
    expect(r.body.latencyMs).to.be.a("number").and.greaterThan(0);
    expect(r.body.headers).to.be.an("object");
    expect(r.body.trailers).to.be.an("object");
    expect(r.body.endpoint).to.equal(`127.0.0.1:${servant.adapters[0]!.port}`);
  });

  it("a server stream shows the first 100 messages and says it was cut; a client stream takes an array", async () => {
    const few = await ops.post("/api/try/call", { obj: OBJ, method: "demo.echo.v1.Echo/Repeat", request: { text: "r", count: 3 } });
    expect(few.status, JSON.stringify(few.body)).to.equal(200);
    expect(few.body.messages.map((m: any) => m.index)).to.deep.equal([0, 1, 2]);
    expect(few.body.truncated).to.equal(false);
    const many = await ops.post("/api/try/call", { obj: OBJ, method: "demo.echo.v1.Echo/Repeat", request: { text: "r", count: 150 } });
    expect(many.body.status.name).to.equal("OK");
    expect(many.body.messages).to.have.length(100);
    expect(many.body.truncated).to.equal(true);
    const sum = await ops.post("/api/try/call", { obj: OBJ, method: "demo.echo.v1.Echo/Sum", request: [{ count: 2 }, { count: 5 }] });
    expect(sum.body.reply).to.deep.equal({ total: "7", count: 2 });
    const notArray = await ops.post("/api/try/call", { obj: OBJ, method: "demo.echo.v1.Echo/Sum", request: { count: 2 } });
    expect(notArray.status).to.equal(400);
    expect(notArray.body.error.field).to.equal("request");
  });

  it("a servant's error is a status (code, message), not a failed page", async () => {
    const r = await ops.post("/api/try/call", { obj: OBJ, method: "demo.echo.v1.Echo/Fail", request: { code: "OUT_OF_STOCK", message: "none left" } });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    expect(r.body.status).to.deep.equal({ name: "FAILED_PRECONDITION", code: "OUT_OF_STOCK", message: "none left" });
    const slow = await ops.post("/api/try/call", { obj: OBJ, method: "demo.echo.v1.Echo/Slow", request: { millis: 3000 }, timeoutMs: 200 });
    expect(slow.body.status.name).to.equal("DEADLINE_EXCEEDED");
  });

  it("bad input: JSON that does not fit names the field (400), unknown method 404, bad timeout 400, bad Obj 400", async () => {
    const mismatch = await ops.post("/api/try/call", { obj: OBJ, method: "demo.echo.v1.Echo/Say", request: { text: 5 } });
    expect(mismatch.status).to.equal(400);
    expect(mismatch.body.error.field).to.equal("request");
    expect(mismatch.body.error.message).to.contain("demo.echo.v1.EchoRequest").and.to.contain("text");
    const unknownField = await ops.post("/api/try/call", { obj: OBJ, method: "demo.echo.v1.Echo/Say", request: { nosuch: 1 } });
    expect(unknownField.status).to.equal(400);
    expect(unknownField.body.error.message).to.contain("nosuch");
    const unknown = await ops.post("/api/try/call", { obj: OBJ, method: "demo.echo.v1.Echo/NoSuch", request: {} });
    expect(unknown.status).to.equal(404);
    expect(unknown.body.error.message).to.contain("NoSuch");
    const unknownService = await ops.post("/api/try/call", { obj: OBJ, method: "demo.nope.v1.Nope/Say", request: {} });
    expect(unknownService.status).to.equal(404);
    for (const timeoutMs of [0, 60_001, "5"]) {
      const r = await ops.post("/api/try/call", { obj: OBJ, method: "demo.echo.v1.Echo/Say", request: {}, timeoutMs });
      expect(r.status, String(timeoutMs)).to.equal(400);
      expect(r.body.error.field).to.equal("timeoutMs");
    }
    expect((await ops.post("/api/try/call", { obj: "not an obj", method: "demo.echo.v1.Echo/Say", request: {} })).status).to.equal(400);
    expect((await ops.post("/api/try/call", { obj: "Test.EchoServer.NoSuchObj", method: "demo.echo.v1.Echo/Say", request: {} })).status).to.equal(404);
  });

  it("a viewer and another application's operator are refused (403) and nothing is called", async () => {
    for (const c of [viewer, other]) {
      expect((await c.get(`/api/try/methods?obj=${OBJ}`)).status).to.equal(403);
      const r = await c.post("/api/try/call", { obj: OBJ, method: "demo.echo.v1.Echo/Say", request: { text: "refused" } });
      expect(r.status).to.equal(403);
    }
    const events = (await admin.get("/api/events?kind=call.try&limit=500")).body.events;
    expect(events.map((e: any) => e.actor)).not.to.include.members(["try-viewer", "try-other"]);
  });

  it("every call is in the event log: actor, Obj, method, status, latency; never the request or reply", async () => {
    const r = await admin.get("/api/events?kind=call.try&limit=500");
    expect(r.status).to.equal(200);
    const events: any[] = r.body.events;
    const say = events.find((e) => e.target === OBJ && JSON.parse(e.dataJson || "{}").method === "demo.echo.v1.Echo/Say" && JSON.parse(e.dataJson).status === "OK");
    expect(say, JSON.stringify(events)).to.not.equal(undefined);
    expect(say.actor).to.equal("try-ops");
    expect(JSON.parse(say.dataJson).latencyMs).to.be.a("number").and.greaterThan(0);
    const statuses = events.map((e) => JSON.parse(e.dataJson).status);
    expect(statuses).to.include.members(["OK", "FAILED_PRECONDITION", "DEADLINE_EXCEEDED", "INVALID_ARGUMENT", "NOT_FOUND"]);
    expect(JSON.stringify(events)).not.to.contain(SECRET);
  });
});
