/**
 * `sgrid gateway` deployed as an ordinary Sgrid server: a real cluster
 * (registry, one agent in its network namespace, the Echo servant), the
 * gateway published as a package whose program is `sgrid gateway`, its
 * routes `gateway.yaml` in the config center. A client holds one HTTP/2
 * connection to the gateway while an operator pushes route changes with
 * `sgrid config push`: each applies to the client's next call on that same
 * connection, a routes file that does not pass is refused with the field
 * named and the routes in use stay; the gateway's own admin commands answer
 * through the registry, and its per-route calls reach the service monitor.
 */
import * as fs from "node:fs";
import * as http2 from "node:http2";
import * as path from "node:path";
import { expect } from "chai";
import { CLI } from "../helpers/paths";
import { reservePort } from "../helpers/ports";
import { waitFor } from "../helpers/wait";
import { FaultCluster } from "../fault/harness/cluster";
import { ECHO_OBJ, ECHO_SERVER } from "../fault/harness/scenario";
import { writePackage } from "../fixtures/packages/tar-builder";
import { EchoReply, EchoRequest } from "../gen/demo/echo";

const APP = "Edge";
const SERVER = "GatewayServer";
const GATEWAY_OBJ = `${APP}.${SERVER}.GatewayObj`;
const TOKEN = "push-token-7f3a";

/** One unary gRPC call as raw HTTP/2 on `session` (so the test sees exactly which connection it used). */
function callSay(session: http2.ClientHttp2Session, text: string, metadata: Record<string, string> = {}): Promise<{ status: number; message: string; text?: string }> {
  return new Promise((resolve, reject) => {
    const body = Buffer.from(EchoRequest.encode(EchoRequest.create({ text })).finish());
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt32BE(body.length, 1);
    body.copy(frame, 5);
    const stream = session.request({ ":method": "POST", ":path": "/demo.echo.v1.Echo/Say", "content-type": "application/grpc", te: "trailers", "grpc-timeout": "10S", ...metadata });
    const chunks: Buffer[] = [];
    let headers: http2.IncomingHttpHeaders = {};
    stream.on("response", (h) => { headers = h; });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("trailers", (t) => { headers = { ...headers, ...t }; });
    stream.on("error", reject);
    stream.on("close", () => {
      const data = Buffer.concat(chunks);
      const status = Number(headers["grpc-status"] ?? -1);
      const message = decodeURIComponent(String(headers["grpc-message"] ?? ""));
      resolve({ status, message, ...(data.length >= 5 ? { text: EchoReply.decode(data.subarray(5, 5 + data.readUInt32BE(1))).text } : {}) });
    });
    stream.end(frame);
  });
}

describe("gateway deployed as a Sgrid server: routes pushed from the config center, admin commands, service monitor @slow", function () {
  this.timeout(300_000);
  let cluster: FaultCluster | undefined;
  let session: http2.ClientHttp2Session | undefined;
  let sessionClosed = false;
  let gatewayInstance = 0;
  let gatewayHost = "";
  let metricsPort = 0;

  async function setRoutes(yaml: string): Promise<void> {
    const file = path.join(cluster!.out, "gateway.yaml");
    fs.writeFileSync(file, yaml);
    const r = await cluster!.cli(["config", "set", "gateway.yaml", "--app", APP, "--server", SERVER, "--from", file]);
    expect(r.code, r.out).to.equal(0);
  }

  async function push(): Promise<{ code: number | null; out: string }> {
    return cluster!.cli(["config", "push", "gateway.yaml", "--app", APP, "--server", SERVER]);
  }

  async function command(name: string, args = ""): Promise<{ output: string; ok: boolean; error: string }> {
    try {
      const r = await cluster!.admin.sendCommand({ instanceId: gatewayInstance, command: name, args, timeoutMs: 5000 }, cluster!.as);
      return { output: r.output, ok: true, error: "" };
    } catch (err) {
      return { output: "", ok: false, error: (err as Error).message };
    }
  }

  after(async () => {
    session?.destroy();
    await cluster?.stop();
  });

  it("serves the Obj's service on one connection through every pushed route change; refuses a bad file and keeps the routes in use", async () => {
    cluster = await FaultCluster.start({ name: "gateway-deployed", nodes: ["node-a"] });
    await cluster.publishEcho(ECHO_SERVER, cluster.nodes, "EchoObj", "1.0.0");
    await cluster.waitAllActive({ [ECHO_OBJ]: 1 });

    // The server first, so that its routes are in the config center before the gateway starts (without them it does not start).
    metricsPort = await reservePort();
    const deployed = await cluster.cli(["deploy", `${APP}.${SERVER}`, "--nodes", "node-a", "--obj", "GatewayObj", "--type", "node", "--env", `SGRID_METRICS_PORT=${metricsPort}`]);
    expect(deployed.code, deployed.out).to.equal(0);
    await setRoutes("routes:\n  - service: demo.echo.v1.Echo\n");
    const pkg = await writePackage(path.join(cluster.out, "packages"), `${APP}.${SERVER}-1.0.0.tgz`, {
      "sgrid.json": JSON.stringify({ app: APP, server: SERVER, type: "node", entry: "main.js", version: "1.0.0" }),
      // The program is this checkout's `sgrid gateway`: deployed, it takes its address and routes from the agent's environment.
      "main.js": `require(${JSON.stringify(CLI)}).main([process.argv[0], "sgrid", "gateway"]);\n`,
    });
    const published = await cluster.cli(["publish", `${APP}.${SERVER}`, pkg]);
    expect(published.code, published.out).to.equal(0);
    await cluster.waitAllActive({ [GATEWAY_OBJ]: 1 });
    gatewayInstance = (await cluster.instances(APP, SERVER))[0]!.id;
    const ep = (await cluster.find(GATEWAY_OBJ)).active[0]!;
    gatewayHost = ep.host;

    session = http2.connect(`http://${ep.host}:${ep.port}`);
    session.on("close", () => { sessionClosed = true; });
    session.on("error", () => undefined);
    // The gateway learns the service from the servant's reflection: the first calls may come before it has.
    await waitFor("a call through the gateway", async () => (await callSay(session!, "hello")).status === 0, 60_000, 200);

    await setRoutes(`routes:\n  - service: demo.echo.v1.Echo\n    auth: { bearer: [${TOKEN}] }\n`);
    const pushed = await push();
    expect(pushed.code, pushed.out).to.equal(0);
    expect(pushed.out).to.match(new RegExp(`${APP}\\.${SERVER}@node-a #${gatewayInstance}: ok`));
    const refused = await callSay(session, "no token");
    expect(refused.status, refused.message).to.equal(16);
    expect(refused.message).to.contain("needs a bearer token");
    const allowed = await callSay(session, "with token", { authorization: `Bearer ${TOKEN}` });
    expect([allowed.status, allowed.text]).to.deep.equal([0, "with token"]);

    await setRoutes("routes:\n  - service: demo.echo.v1.Echo\n    maxMessageBytes: lots\n");
    const bad = await push();
    expect(bad.code).to.equal(1);
    expect(bad.out).to.contain("FAILED").and.contain("routes.0.maxMessageBytes");
    expect((await callSay(session, "still guarded")).status, "the routes in use stay").to.equal(16);
    expect((await callSay(session, "still served", { authorization: `Bearer ${TOKEN}` })).status).to.equal(0);

    expect(sessionClosed, "the client's connection was never closed").to.equal(false);
    const routes = JSON.parse((await command("gateway.routes")).output) as { version: string; routes: Array<{ service: string; auth: string }> };
    expect(routes.routes).to.deep.equal([{ service: "demo.echo.v1.Echo", auth: "bearer (1 token)", maxMessageBytes: 4 * 1024 * 1024, bodyIdleTimeoutMs: 30_000 }]);
    expect(JSON.stringify(routes), "a token is never shown").to.not.contain(TOKEN);
  });

  it("answers its own admin commands and the built-ins through the registry", async () => {
    const stats = JSON.parse((await command("gateway.stats")).output) as { grpc: Record<string, { calls: number; errorsByCode: Record<string, number> }> };
    const say = stats.grpc["demo.echo.v1.Echo /demo.echo.v1.Echo/Say"]!;
    expect(say.calls).to.be.at.least(5);
    expect(say.errorsByCode.UNAUTHENTICATED).to.be.at.least(2);
    const services = JSON.parse((await command("gateway.services")).output) as Record<string, string[]>;
    expect(services["demo.echo.v1.Echo"]).to.deep.equal([ECHO_OBJ]);
    const help = await command("sgrid.help");
    expect(help.output).to.contain("gateway.routes").and.contain("gateway.reload").and.contain("sgrid.loadconfig");
    const version = JSON.parse((await command("sgrid.viewversion")).output) as { configs: Array<{ file: string }> };
    expect(version.configs.map((c) => c.file)).to.deep.equal(["gateway.yaml"]);
    // gateway.reload reads the config center as SIGHUP does: the bad version stored last is refused again ...
    const reload = await command("gateway.reload");
    expect(reload.ok).to.equal(false);
    expect(reload.error).to.contain("routes.0.maxMessageBytes");
    // ... and a good one is applied.
    await setRoutes(`routes:\n  - service: demo.echo.v1.Echo\n    auth: { bearer: [${TOKEN}, second-token] }\n`);
    const applied = await command("gateway.reload");
    expect(applied.ok, applied.error).to.equal(true);
    expect(applied.output).to.match(/^routes \S+ applied$/);
    const routes = JSON.parse((await command("gateway.routes")).output) as { routes: Array<{ auth: string }> };
    expect(routes.routes[0]!.auth).to.equal("bearer (2 tokens)");
  });

  it("serves each route's calls, errors by code and latency on /metrics (SGRID_METRICS_PORT)", async () => {
    const text = await (await fetch(`http://${gatewayHost}:${metricsPort}/metrics`)).text();
    const labels = 'obj="demo.echo.v1.Echo",method="/demo.echo.v1.Echo/Say"';
    expect(Number(new RegExp(`sgrid_server_calls_total\\{${labels}\\} (\\d+)`).exec(text)?.[1])).to.be.at.least(5);
    expect(Number(new RegExp(`sgrid_server_errors_total\\{${labels},code="UNAUTHENTICATED"\\} (\\d+)`).exec(text)?.[1])).to.be.at.least(2);
    expect(text).to.contain(`sgrid_server_latency_seconds_bucket{${labels}`);
  });

  it("reports each route's calls, errors by code and latency to the service monitor", async () => {
    await waitFor("the gateway's calls in the service monitor", async () => {
      const r = await cluster!.admin.queryCallStats({ application: APP, server: SERVER, side: "server" }, cluster!.as);
      const say = r.points.filter((p) => p.method === "/demo.echo.v1.Echo/Say" && p.scope === "demo.echo.v1.Echo");
      const calls = say.reduce((n, p) => n + Number(p.calls), 0);
      const unauth = say.reduce((n, p) => n + ((JSON.parse(p.errorsByCodeJson || "{}") as Record<string, number>).UNAUTHENTICATED ?? 0), 0);
      return calls >= 5 && unauth >= 2 && say.every((p) => p.p99Ms > 0);
    }, 60_000, 500);
  });
});
