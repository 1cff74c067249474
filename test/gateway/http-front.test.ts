/**
 * The gateway's HTTP front with a real servant on port 0 behind the real
 * forwarder: JSON calls of every kind (transcoded with the servant's own
 * reflection), gRPC-Web in binary and text mode, CORS, bearer auth, rate
 * limits, body size limits, routes swapped under a client's open keep-alive
 * connection, and the per-route figures on /metrics.
 */
import * as http from "node:http";
import { expect } from "chai";
import { Application, Communicator, Status, type DeepPartial, type ServerContext } from "sgridnext";
import { StaticServiceResolver } from "../../gateway/forwarder";
import { FRAME_DATA, FRAME_TRAILERS, decodeGrpcMessage, decodeTextBody, encodeFrame, parseFrames, parseTrailers } from "../../gateway/grpc-web";
import { HttpFront } from "../../gateway/http-front";
import { parseRoutes } from "../../gateway/routes";
import { EchoReply, EchoRequest } from "../gen/demo/echo";
import { EchoImpl } from "../helpers/echo-servant";
import { RecordingForwarder } from "../helpers/recording-forwarder";

/** Echo whose Say also sends a response header and a trailer. */
class HeaderEcho extends EchoImpl {
  override async say(request: EchoRequest, ctx: ServerContext): Promise<DeepPartial<EchoReply>> {
    ctx.sendHeaders({ "x-h": "from the servant" });
    ctx.setTrailers({ "x-t": "trailer" });
    return super.say(request, ctx);
  }
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The client side's port of the connection the answer came on. */
  localPort: number;
  json(): any;
}

describe("gateway HTTP front (JSON, gRPC-Web)", function () {
  this.timeout(30_000);
  let app: Application;
  let servant: HeaderEcho;
  let comm: Communicator;
  let forwarder: RecordingForwarder;
  let front: HttpFront;
  let port: number;
  let now = 0;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

  function request(method: string, path: string, body: string | Buffer = "", headers: Record<string, string> = {}): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port, method, path, agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c)).on("error", reject).on("end", () => {
          const b = Buffer.concat(chunks);
          resolve({ status: res.statusCode!, headers: res.headers, body: b, localPort: req.socket!.localPort!, json: () => JSON.parse(b.toString()) });
        });
      });
      req.on("error", reject);
      req.end(body);
    });
  }
  const postJson = (path: string, value: unknown, headers: Record<string, string> = {}) =>
    request("POST", path, JSON.stringify(value), { "content-type": "application/json", ...headers });
  const useRoutes = (yaml: string) => front.setRoutes(parseRoutes(yaml));

  before(async () => {
    servant = new HeaderEcho("http-backend");
    app = new Application({ handleSignals: false, app: "Test", server: "GwHttp", adapters: { EchoObj: "127.0.0.1:0" } });
    app.addServant("EchoObj", servant);
    await app.start();
    const backend = app.adapters()[0]!.endpoint.port;
    comm = new Communicator();
    forwarder = new RecordingForwarder({ communicator: comm, services: new StaticServiceResolver({ "demo.echo.v1.Echo": `Test.GwHttp.EchoObj@tcp -h 127.0.0.1 -p ${backend}` }), reportToServiceMonitor: false });
    front = new HttpFront({ forwarder, communicator: comm, now: () => now });
    port = await front.listen("127.0.0.1", 0);
  });

  beforeEach(() => useRoutes(""));

  after(async () => {
    agent.destroy();
    await front.shutdown(500);
    forwarder.close();
    comm.close();
    await app.stop(500);
  });

  it("calls a unary method with JSON and answers proto3 JSON, metadata both ways", async () => {
    const res = await postJson("/demo.echo.v1.Echo/Say", { text: "hello", envelope: { tags: [{ key: "k", value: "v" }], counters: { n: "1234567890123" } } }, { "grpc-metadata-x-trace": "t-1" });
    expect(res.status, res.body.toString()).to.equal(200);
    expect(res.headers["content-type"]).to.equal("application/json");
    const reply = res.json();
    expect(reply.text).to.equal("hello");
    expect(reply.envelope.tags).to.deep.equal([{ key: "k", value: "v" }]);
    expect(reply.envelope.counters).to.deep.equal({ n: "1234567890123" }); // int64 as a string (the fixture servant's ts-proto code refuses values past 2^53 itself)
    expect(reply.metadata).to.include({ "x-trace": "t-1", served_by: "http-backend" });
    expect(res.headers["grpc-metadata-x-h"]).to.equal("from the servant");
    // Only the servant's own headers: not the backend transport's (its gRPC server's content-type and date).
    expect(res.headers).to.not.have.property("grpc-metadata-content-type");
    expect(res.headers).to.not.have.property("grpc-metadata-date");
    expect(res.headers["grpc-trailer-x-t"]).to.equal("trailer");
  });

  it("streams a server-streaming reply as newline-delimited JSON and takes a JSON array for a client stream", async () => {
    const stream = await postJson("/demo.echo.v1.Echo/Repeat", { text: "r", count: 3 });
    expect(stream.status).to.equal(200);
    expect(stream.headers["content-type"]).to.equal("application/x-ndjson");
    const lines = stream.body.toString().trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => `${l.result.text}${l.result.index}`)).to.deep.equal(["r0", "r1", "r2"]);
    const sum = await postJson("/demo.echo.v1.Echo/Sum", [{ count: 2 }, { count: 40 }]);
    expect(sum.status).to.equal(200);
    expect(sum.json()).to.deep.equal({ total: "42", count: 2 });
    const notArray = await postJson("/demo.echo.v1.Echo/Sum", { count: 2 });
    expect(notArray.status).to.equal(400);
    expect(notArray.json().message).to.contain("JSON array");
  });

  it("refuses JSON that does not fit the message with INVALID_ARGUMENT naming the field, before the servant sees it", async () => {
    const before = servant.calls;
    const res = await postJson("/demo.echo.v1.Echo/Say", { text: "x", envelope: { tags: [{ key: "k", colour: "red" }] } });
    expect(res.status).to.equal(400);
    expect(res.json()).to.include({ code: Status.INVALID_ARGUMENT, error: "INVALID_ARGUMENT", field: "envelope.tags[0].colour" });
    expect(res.json().message).to.contain("envelope.tags[0].colour");
    const wrongType = await postJson("/demo.echo.v1.Echo/Say", { count: "lots" });
    expect(wrongType.json()).to.include({ field: "count" });
    const notJson = await request("POST", "/demo.echo.v1.Echo/Say", "{text:", { "content-type": "application/json" });
    expect(notJson.status).to.equal(400);
    expect(notJson.json().message).to.contain("not JSON");
    const inStream = await postJson("/demo.echo.v1.Echo/Sum", [{ count: 1 }, { cnt: 2 }]);
    expect(inStream.json()).to.include({ field: "[1].cnt" });
    expect(servant.calls).to.equal(before);
  });

  it("answers the servant's errors with the HTTP status grpc-gateway gives their code", async () => {
    const fail = await postJson("/demo.echo.v1.Echo/Fail", { code: "NOT_TODAY", message: "refused on purpose" });
    expect(fail.status).to.equal(400); // FAILED_PRECONDITION
    expect(fail.json()).to.include({ code: Status.FAILED_PRECONDITION, error: "NOT_TODAY", message: "refused on purpose" });
    const internal = await postJson("/demo.echo.v1.Echo/Fail", { message: "x", unexpected: true });
    expect(internal.status).to.equal(500);
    expect(internal.body.toString()).to.not.contain("secret internal detail");
    const noMethod = await postJson("/demo.echo.v1.Echo/NoSuchMethod", {});
    expect(noMethod.status).to.equal(404);
    // Not a method path, and no REST binding maps it.
    const notPath = await request("POST", "/just-a-path");
    expect(notPath.status).to.equal(404);
    expect(notPath.json().message).to.contain("no method is mapped to this path");
    const get = await request("GET", "/demo.echo.v1.Echo/Say");
    expect(get.status).to.equal(404);
  });

  it("refuses an oversized body with 413 RESOURCE_EXHAUSTED, declared or streamed, without calling the servant", async () => {
    useRoutes("defaults: { maxMessageBytes: 64 }");
    const before = servant.calls;
    const big = await postJson("/demo.echo.v1.Echo/Say", { text: "y".repeat(200) });
    expect(big.status).to.equal(413);
    expect(big.json()).to.include({ code: Status.RESOURCE_EXHAUSTED, error: "RESOURCE_EXHAUSTED" });
    expect(big.json().message).to.contain("64 bytes");
    // No content-length: the body arrives chunked and is cut off as it passes the limit.
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port, method: "POST", path: "/demo.echo.v1.Echo/Say", headers: { "content-type": "application/json" } }, (res) => { res.resume(); resolve(res.statusCode!); });
      req.on("error", reject);
      req.write(`{"text":"${"z".repeat(100)}`);
      req.write(`${"z".repeat(100)}"}`);
      req.end();
    });
    expect(chunked).to.equal(413);
    const small = await postJson("/demo.echo.v1.Echo/Say", { text: "ok" });
    expect(small.status).to.equal(200);
    expect(servant.calls).to.equal(before + 1);
  });

  it("refuses a request body that stops coming (a client-streaming JSON array left open) with 408 DEADLINE_EXCEEDED after the route's bodyIdleTimeoutMs, closes the connection, reaches no servant", async () => {
    useRoutes("defaults: { bodyIdleTimeoutMs: 300 }");
    forwarder.forwarded.clear();
    /** Opens a chunked POST, writes `parts` one per `everyMs`, and (when `end`) ends it; the answer and whether the server closed the socket. */
    const stream = (path: string, contentType: string, parts: Array<string | Buffer>, everyMs: number, end: boolean) =>
      new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string; closed: Promise<void> }>((resolve, reject) => {
        const req = http.request({ host: "127.0.0.1", port, method: "POST", path, agent: false, headers: { "content-type": contentType } }, (res) => {
          const closed = new Promise<void>((r) => req.socket!.once("close", () => r()));
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString(), closed }));
        });
        req.on("error", reject);
        let i = 0;
        const next = () => {
          if (i < parts.length) { req.write(parts[i++]!); setTimeout(next, everyMs); } else if (end) req.end();
        };
        next();
      });
    // JSON: the array's first element, then nothing (the request is never ended).
    const stalled = await stream("/demo.echo.v1.Echo/Sum", "application/json", ['[{"count":2},'], 0, false);
    expect(stalled.status).to.equal(408);
    expect(JSON.parse(stalled.body)).to.include({ code: Status.DEADLINE_EXCEEDED, error: "DEADLINE_EXCEEDED" });
    expect(JSON.parse(stalled.body).message).to.contain("300 ms");
    await stalled.closed;
    // gRPC-Web: half a frame, then nothing.
    const web = await stream("/demo.echo.v1.Echo/Say", "application/grpc-web+proto", [Buffer.from([0, 0, 0, 0, 9, 0x0a])], 0, false);
    expect(web.status).to.equal(200);
    expect(web.headers["grpc-status"]).to.equal(String(Status.DEADLINE_EXCEEDED));
    await web.closed;
    expect([...forwarder.forwarded.keys()]).to.deep.equal([]);
    // A slow body that keeps coming (each gap under the idle timeout, the whole over it) is served.
    const slow = await stream("/demo.echo.v1.Echo/Sum", "application/json", ["[", '{"count":2},', '{"count":3}', "]"], 150, true);
    expect(slow.status).to.equal(200);
    expect(JSON.parse(slow.body)).to.include({ total: "5", count: 2 });
  });

  it("needs the route's bearer token (401 UNAUTHENTICATED) and does not pass it on", async () => {
    useRoutes("routes: [{ service: demo.echo.v1.Echo, auth: { bearer: [s3cret] } }]");
    const before = servant.calls;
    const none = await postJson("/demo.echo.v1.Echo/Say", { text: "x" });
    expect(none.status).to.equal(401);
    expect(none.headers["www-authenticate"]).to.equal("Bearer");
    expect(none.json()).to.include({ code: Status.UNAUTHENTICATED, error: "UNAUTHENTICATED" });
    const wrong = await postJson("/demo.echo.v1.Echo/Say", { text: "x" }, { authorization: "Bearer nope" });
    expect(wrong.status).to.equal(401);
    expect(servant.calls).to.equal(before);
    const right = await postJson("/demo.echo.v1.Echo/Say", { text: "x" }, { authorization: "Bearer s3cret" });
    expect(right.status).to.equal(200);
    expect(right.json().metadata).to.not.have.property("authorization");
  });

  it("limits each client to the route's rate (429 RESOURCE_EXHAUSTED with Retry-After)", async () => {
    useRoutes("defaults: { rateLimit: { perSecond: 1, burst: 2 } }");
    now = 1_000_000;
    expect((await postJson("/demo.echo.v1.Echo/Say", { text: "1" })).status).to.equal(200);
    expect((await postJson("/demo.echo.v1.Echo/Say", { text: "2" })).status).to.equal(200);
    const third = await postJson("/demo.echo.v1.Echo/Say", { text: "3" });
    expect(third.status).to.equal(429);
    expect(third.headers["retry-after"]).to.equal("1");
    expect(third.json()).to.include({ code: Status.RESOURCE_EXHAUSTED });
    now += 1000;
    expect((await postJson("/demo.echo.v1.Echo/Say", { text: "4" })).status).to.equal(200);
  });

  it("answers a service the routes do not expose with 501 UNIMPLEMENTED", async () => {
    useRoutes("routes: [{ service: demo.echo.v1.Clock }]");
    const res = await postJson("/demo.echo.v1.Echo/Say", { text: "x" });
    expect(res.status).to.equal(501);
    expect(res.json()).to.include({ code: Status.UNIMPLEMENTED });
    expect(res.json().message).to.contain("demo.echo.v1.Echo");
  });

  it("applies swapped routes to the next request on the same keep-alive connection", async () => {
    const first = await postJson("/demo.echo.v1.Echo/Say", { text: "open" });
    expect(first.status).to.equal(200);
    useRoutes("routes: [{ service: demo.echo.v1.Echo, auth: { bearer: [t0ken] } }]");
    const refused = await postJson("/demo.echo.v1.Echo/Say", { text: "after" });
    const allowed = await postJson("/demo.echo.v1.Echo/Say", { text: "after" }, { authorization: "Bearer t0ken" });
    expect(refused.status).to.equal(401);
    expect(allowed.status).to.equal(200);
    expect([refused.localPort, allowed.localPort]).to.deep.equal([first.localPort, first.localPort]);
  });

  it("serves gRPC-Web, binary and text, unary and server-streaming, with the status in the trailers", async () => {
    const req = encodeFrame(FRAME_DATA, EchoRequest.encode({ text: "web", count: 2, envelope: undefined }).finish());
    const bin = await request("POST", "/demo.echo.v1.Echo/Say", req, { "content-type": "application/grpc-web+proto", "x-grpc-web": "1", "x-k": "v" });
    expect(bin.status).to.equal(200);
    expect(bin.headers["content-type"]).to.equal("application/grpc-web+proto");
    expect(bin.headers["x-h"]).to.equal("from the servant");
    const frames = parseFrames(bin.body);
    expect(frames.map((f) => f.flag)).to.deep.equal([FRAME_DATA, FRAME_TRAILERS]);
    const reply = EchoReply.decode(frames[0]!.payload);
    expect(reply.text).to.equal("web");
    expect(reply.metadata).to.include({ "x-k": "v" });
    expect(reply.metadata).to.not.have.property("x-grpc-web");
    expect(parseTrailers(frames[1]!.payload)).to.include({ "grpc-status": "0", "x-t": "trailer" });

    const text = await request("POST", "/demo.echo.v1.Echo/Repeat", req.toString("base64"), { "content-type": "application/grpc-web-text" });
    expect(text.headers["content-type"]).to.equal("application/grpc-web-text+proto");
    const tf = parseFrames(decodeTextBody(text.body.toString()));
    expect(tf.filter((f) => f.flag === FRAME_DATA).map((f) => EchoReply.decode(f.payload).index)).to.deep.equal([0, 1]);
    expect(parseTrailers(tf.at(-1)!.payload)["grpc-status"]).to.equal("0");
  });

  it("never forwards a caller's sgrid-error-* headers (a Sgrid error's trailers) on a route without auth: gRPC-Web unary and server-streaming", async () => {
    const req = encodeFrame(FRAME_DATA, EchoRequest.encode({ text: "web", count: 2, envelope: undefined }).finish());
    const forged = { "sgrid-error-code": "OUT_OF_STOCK", "sgrid-error-data": "{}", "x-keep": "kept" };
    for (const path of ["/demo.echo.v1.Echo/Say", "/demo.echo.v1.Echo/Repeat"]) {
      const res = await request("POST", path, req, { "content-type": "application/grpc-web+proto", ...forged });
      expect(res.status).to.equal(200);
      expect(parseTrailers(parseFrames(res.body).at(-1)!.payload)["grpc-status"]).to.equal("0");
      const md = forwarder.forwarded.get(path);
      expect(md).to.include({ "x-keep": "kept" });
      expect(Object.keys(md!).filter((k) => k.startsWith("sgrid-error-"))).to.deep.equal([]);
    }
  });

  it("answers gRPC-Web errors as trailers-only with the servant's status and code", async () => {
    const failReq = encodeFrame(FRAME_DATA, Buffer.from([0x0a, 0x03, ...Buffer.from("NOP")])); // FailRequest{code:"NOP"}
    const res = await request("POST", "/demo.echo.v1.Echo/Fail", failReq, { "content-type": "application/grpc-web" });
    expect(res.status).to.equal(200);
    expect(res.headers["grpc-status"]).to.equal(String(Status.FAILED_PRECONDITION));
    expect(res.headers["sgrid-error-code"]).to.equal("NOP");
    expect(res.body.length).to.equal(0);
    const chat = await request("POST", "/demo.echo.v1.Echo/Chat", failReq, { "content-type": "application/grpc-web" });
    expect(chat.headers["grpc-status"]).to.equal(String(Status.UNIMPLEMENTED));
    const truncated = await request("POST", "/demo.echo.v1.Echo/Say", failReq.subarray(0, 4), { "content-type": "application/grpc-web" });
    expect(truncated.headers["grpc-status"]).to.equal(String(Status.INVALID_ARGUMENT));
    useRoutes("routes: [{ service: demo.echo.v1.Echo, auth: { bearer: [s3cret] } }]");
    const unauth = await request("POST", "/demo.echo.v1.Echo/Say", failReq, { "content-type": "application/grpc-web" });
    expect(unauth.headers["grpc-status"]).to.equal(String(Status.UNAUTHENTICATED));
    expect(decodeGrpcMessage(String(unauth.headers["grpc-message"]))).to.contain("bearer token");
  });

  it("answers CORS preflights from the route's cors and marks answers readable by allowed origins only", async () => {
    useRoutes("defaults: { cors: { origins: ['https://app.example'], headers: [x-custom], maxAgeSeconds: 60 } }");
    const pre = await request("OPTIONS", "/demo.echo.v1.Echo/Say", "", { origin: "https://app.example", "access-control-request-method": "POST", "access-control-request-headers": "content-type,x-grpc-web" });
    expect(pre.status).to.equal(204);
    expect(pre.headers["access-control-allow-origin"]).to.equal("https://app.example");
    expect(pre.headers["access-control-allow-headers"]).to.contain("x-grpc-web").and.to.contain("x-custom");
    expect(pre.headers["access-control-max-age"]).to.equal("60");
    const other = await request("OPTIONS", "/demo.echo.v1.Echo/Say", "", { origin: "https://evil.example", "access-control-request-method": "POST" });
    expect(other.status).to.equal(403);
    expect(other.headers).to.not.have.property("access-control-allow-origin");
    const call = await postJson("/demo.echo.v1.Echo/Say", { text: "c" }, { origin: "https://app.example" });
    expect(call.headers["access-control-allow-origin"]).to.equal("https://app.example");
    expect(call.headers["access-control-expose-headers"]).to.contain("grpc-status");
    const foreign = await postJson("/demo.echo.v1.Echo/Say", { text: "c" }, { origin: "https://evil.example" });
    expect(foreign.headers).to.not.have.property("access-control-allow-origin");
  });

  it("shows per-route calls, errors by code and latency on /metrics", async () => {
    await postJson("/demo.echo.v1.Echo/Lookup", { text: "m" });
    await postJson("/demo.echo.v1.Echo/Lookup", { txt: "m" });
    const res = await request("GET", "/metrics");
    expect(res.status).to.equal(200);
    const text = res.body.toString();
    const labels = 'service="demo.echo.v1.Echo",method="/demo.echo.v1.Echo/Lookup"';
    expect(text).to.contain(`sgrid_gateway_http_calls_total{${labels}} 2`);
    expect(text).to.contain(`sgrid_gateway_http_errors_total{${labels},code="INVALID_ARGUMENT"} 1`);
    expect(text).to.match(new RegExp(`sgrid_gateway_http_latency_seconds_bucket\\{${labels.replace(/[./]/g, "\\$&")},le="\\+Inf"\\} 2`));
    expect(text).to.contain(`sgrid_gateway_http_latency_seconds_count{${labels}} 2`);
  });
});
