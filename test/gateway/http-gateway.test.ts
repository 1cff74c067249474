/**
 * `sgrid gateway --http` as its own process, with a real registry and an Echo
 * servant registered with it (found by service name through the registry's
 * service map), routes from the config center: a browser-style fetch with
 * JSON, a gRPC-Web call, the same two from a Chromium page on another origin
 * (through the CORS preflight; an origin the routes do not list is refused),
 * and a route change written to the config center
 * applied to the next request on the client's same keep-alive connection.
 */
import * as http from "node:http";
import { expect } from "chai";
import { chromium, type Browser } from "playwright-core";
import { Application, Status } from "sgridnext";
import { FRAME_DATA, decodeTextBody, encodeFrame, parseFrames, parseTrailers } from "../../gateway/grpc-web";
import { EchoReply, EchoRequest } from "../gen/demo/echo";
import { EchoImpl } from "../helpers/echo-servant";
import { startGatewayProcess, type GatewayProcess } from "./gateway-process";
import { outputDir } from "../helpers/paths";
import { waitFor } from "../helpers/wait";
import { dialects, uniq } from "../registry/helpers/db";
import { startTestRegistry, type TestRegistry } from "../registry/helpers/registry";
import type { ServiceIndex } from "../../registry/query/service-index";

describe("gateway: JSON and gRPC-Web through sgrid gateway --http, routes from the config center @slow", function () {
  this.timeout(90_000);
  let reg: TestRegistry;
  let app: Application;
  let gw: GatewayProcess | undefined;
  const APP = uniq("GwHttp");
  const GW_APP = uniq("GwFront");
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  /** Serves the page a browser calls the gateway from (another origin than the gateway's). */
  let pages: http.Server;
  let pageOrigin: string;
  let browser: Browser | undefined;

  function post(path: string, body: string | Buffer, headers: Record<string, string>): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer; localPort: number }> {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port: gw!.httpPort, method: "POST", path, agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c)).on("error", reject).on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), localPort: req.socket!.localPort! }));
      });
      req.on("error", reject);
      req.end(body);
    });
  }

  before(async () => {
    pages = http.createServer((_req, res) => res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>gateway page</title>"));
    await new Promise<void>((r) => pages.listen(0, "127.0.0.1", r));
    pageOrigin = `http://127.0.0.1:${(pages.address() as { port: number }).port}`;
    reg = await startTestRegistry(dialects().find((d) => d.name === "sqlite")!);
    const store = reg.server.store;
    await store.servers.create({ application: APP, name: "EchoServer", type: "node" });
    await store.servers.create({ application: GW_APP, name: "Gateway", type: "node" });
    await store.configs.put({ level: "server", application: GW_APP, server: "Gateway" }, "gateway.yaml", { content: `defaults: { cors: { origins: ["${pageOrigin}"] } }\nroutes:\n  - service: demo.echo.v1.Echo\n`, author: "test" });
    app = new Application({ handleSignals: false, app: APP, server: "EchoServer", agent: "", registry: "", adapters: { EchoObj: "127.0.0.1:0" } });
    app.addServant("EchoObj", new EchoImpl("behind-the-gateway"));
    await app.start();
    const node = uniq("node");
    await store.nodes.upsert({ name: node, address: "127.0.0.1", agentVersion: "test" });
    const inst = await store.instances.create({ application: APP, server: "EchoServer", node, adapters: [{ obj: "EchoObj", host: "127.0.0.1", port: app.adapters()[0]!.endpoint.port }], desiredState: "active" });
    await store.instances.reportObserved(inst.id, { state: "active", pid: process.pid });
    reg.server.changes.kick();
    await waitFor("the service map to list demo.echo.v1.Echo", () => {
      try { return reg.server.part<{ services: ServiceIndex }>("query")!.services.find("demo.echo.v1.Echo").objs.length > 0; } catch { return false; }
    }, 15_000);
    gw = await startGatewayProcess(
      ["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--registry", reg.target, "--config", "gateway.yaml", "--routes-poll", "100"],
      { SGRID_APP: GW_APP, SGRID_SERVER: "Gateway", SGRID_NODE: "gw-node", SGRID_CONF_DIR: outputDir("gateway-http-conf") },
    );
  });

  after(async () => {
    agent.destroy();
    await browser?.close();
    pages?.close();
    gw?.child.kill("SIGTERM");
    await app?.stop(500);
    await reg?.cleanup();
  });

  it("answers a browser-style fetch with JSON, by service name", async () => {
    const res = await fetch(`http://127.0.0.1:${gw!.httpPort}/demo.echo.v1.Echo/Say`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ text: "from fetch", count: 1 }) });
    expect(res.status, gw!.stderr()).to.equal(200);
    const reply = (await res.json()) as { text: string; metadata: Record<string, string> };
    expect(reply.text).to.equal("from fetch");
    expect(reply.metadata.served_by).to.equal("behind-the-gateway");
    const bad = await fetch(`http://127.0.0.1:${gw!.httpPort}/demo.echo.v1.Echo/Say`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ text: 7 }) });
    expect(bad.status).to.equal(400);
    expect(await bad.json()).to.include({ code: Status.INVALID_ARGUMENT, field: "text" });
  });

  it("answers a gRPC-Web call", async () => {
    const frame = encodeFrame(FRAME_DATA, EchoRequest.encode({ text: "from grpc-web", count: 0, envelope: undefined }).finish());
    const res = await post("/demo.echo.v1.Echo/Say", frame, { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" });
    expect(res.status).to.equal(200);
    const frames = parseFrames(res.body);
    expect(EchoReply.decode(frames[0]!.payload).text).to.equal("from grpc-web");
    expect(parseTrailers(frames.at(-1)!.payload)["grpc-status"]).to.equal("0");
  });

  it("serves a Chromium page on another origin: fetch with JSON and a gRPC-Web (text) call, through the CORS preflight", async () => {
    browser = await chromium.launch({ executablePath: process.env.SGRID_TEST_CHROMIUM || "/usr/bin/chromium", headless: true, args: ["--headless", "--no-sandbox", "--disable-gpu"] });
    const page = await browser.newPage();
    await page.goto(pageOrigin);
    const frame = encodeFrame(FRAME_DATA, EchoRequest.encode({ text: "from chromium grpc-web", count: 0, envelope: undefined }).finish());
    const got = await page.evaluate(async ({ gw, frameB64 }) => {
      const json = await fetch(`${gw}/demo.echo.v1.Echo/Say`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ text: "from chromium fetch" }) });
      const web = await fetch(`${gw}/demo.echo.v1.Echo/Say`, { method: "POST", headers: { "content-type": "application/grpc-web-text", "x-grpc-web": "1", "x-user-agent": "grpc-web-javascript/0.1" }, body: frameB64 });
      return { status: json.status, reply: (await json.json()) as { text: string }, webStatus: web.status, webType: web.headers.get("content-type"), webBody: await web.text() };
    }, { gw: `http://127.0.0.1:${gw!.httpPort}`, frameB64: frame.toString("base64") });
    expect(got.status).to.equal(200);
    expect(got.reply.text).to.equal("from chromium fetch");
    expect(got.webStatus).to.equal(200);
    expect(got.webType).to.equal("application/grpc-web-text+proto");
    const frames = parseFrames(decodeTextBody(got.webBody));
    expect(EchoReply.decode(frames[0]!.payload).text).to.equal("from chromium grpc-web");
    expect(parseTrailers(frames.at(-1)!.payload)["grpc-status"]).to.equal("0");
    // A page on an origin the routes do not list cannot read the answer: the preflight is refused.
    await page.goto(pageOrigin.replace("127.0.0.1", "localhost"));
    const other = await page.evaluate(async (gw) => {
      try { await fetch(`${gw}/demo.echo.v1.Echo/Say`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }); return "read"; } catch { return "refused"; }
    }, `http://127.0.0.1:${gw!.httpPort}`);
    expect(other).to.equal("refused");
  });

  it("applies a route change written to the config center to the next request on the same connection", async () => {
    const json = { "content-type": "application/json" };
    const open = await post("/demo.echo.v1.Echo/Say", JSON.stringify({ text: "before" }), json);
    expect(open.status).to.equal(200);
    await reg.server.store.configs.put({ level: "server", application: GW_APP, server: "Gateway" }, "gateway.yaml", { content: "routes:\n  - service: demo.echo.v1.Echo\n    auth: { bearer: [pushed-token] }\n", author: "test" });
    const refused = await waitFor("the gateway to apply the pushed routes", async () => {
      const r = await post("/demo.echo.v1.Echo/Say", JSON.stringify({ text: "after" }), json);
      return r.status === 401 ? r : undefined;
    }, 15_000, 50);
    expect(JSON.parse(refused.body.toString())).to.include({ code: Status.UNAUTHENTICATED });
    const allowed = await post("/demo.echo.v1.Echo/Say", JSON.stringify({ text: "after" }), { ...json, authorization: "Bearer pushed-token" });
    expect(allowed.status).to.equal(200);
    expect([refused.localPort, allowed.localPort]).to.deep.equal([open.localPort, open.localPort]);
  });
});
