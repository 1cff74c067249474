/**
 * The Prometheus endpoint of a servant: per-method counts, errors by code and
 * latency histograms for servants and proxies, plus process metrics.
 */
import { expect } from "chai";
import { Application, BindError, Communicator } from "sgridnext";
import { EchoProxy } from "../gen/demo/echo.sgrid";
import { EchoImpl } from "../helpers/echo-servant";

async function scrape(port: number, urlPath = "/metrics"): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${urlPath}`);
  return { status: res.status, type: res.headers.get("content-type") ?? "", body: await res.text() };
}

/** The value of one sample line, or undefined. */
function sample(body: string, name: string, labels: string): number | undefined {
  const line = body.split("\n").find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

describe("framework metrics endpoint", function () {
  this.timeout(30_000);
  let app: Application;
  const comm = new Communicator({ registry: "", env: {} });

  before(async () => {
    // A unique Obj name: statistics are per process and other suites share this one.
    app = new Application({ app: "Metrics", server: "M1", handleSignals: false, agent: "", registry: "", adapters: { EchoObj: "127.0.0.1:0" }, env: { SGRID_METRICS_PORT: "0", SGRID_METRICS_HOST: "127.0.0.1" } });
    app.addServant("EchoObj", new EchoImpl("m"));
    await app.start();
  });

  after(async () => {
    comm.close();
    await app.stop(200);
  });

  it("shows call counts, errors by code and latency histograms of servants and proxies", async () => {
    const port = app.metrics!.port;
    const proxy = comm.stringToProxy(EchoProxy, `127.0.0.1:${app.adapters()[0]!.endpoint.port}`);
    const clientLabels = 'service="demo.echo.v1.Echo",method="/demo.echo.v1.Echo/Say"';
    const clientBefore = sample((await scrape(port)).body, "sgrid_client_calls_total", clientLabels) ?? 0;
    for (let i = 0; i < 7; i++) await proxy.say({ text: "m" });
    for (let i = 0; i < 2; i++) await proxy.fail({ code: "OUT_OF_STOCK", message: "none" }).catch(() => undefined);

    const { status, type, body } = await scrape(port);
    expect(status).to.equal(200);
    expect(type).to.match(/^text\/plain/);
    const say = 'obj="Metrics.M1.EchoObj",method="/demo.echo.v1.Echo/Say"';
    const fail = 'obj="Metrics.M1.EchoObj",method="/demo.echo.v1.Echo/Fail"';
    expect(sample(body, "sgrid_server_calls_total", say)).to.equal(7);
    expect(sample(body, "sgrid_server_calls_total", fail)).to.equal(2);
    expect(sample(body, "sgrid_server_errors_total", `${fail},code="OUT_OF_STOCK"`)).to.equal(2);
    expect(sample(body, "sgrid_server_latency_seconds_count", say)).to.equal(7);
    expect(sample(body, "sgrid_server_latency_seconds_bucket", `${say},le="+Inf"`)).to.equal(7);
    expect(sample(body, "sgrid_client_calls_total", clientLabels)).to.equal(clientBefore + 7);
    expect(body).to.contain("# TYPE sgrid_server_latency_seconds histogram");
    expect(body).to.match(/^process_cpu_user_seconds_total /m);
  });

  it("answers 404 for any other path", async () => {
    expect((await scrape(app.metrics!.port, "/")).status).to.equal(404);
  });

  it("is off unless asked for, and a taken port is a BindError naming it", async () => {
    const off = new Application({ app: "Metrics", server: "M2", handleSignals: false, agent: "", registry: "", adapters: { EchoObj: "127.0.0.1:0" }, env: {} });
    off.addServant("EchoObj", new EchoImpl("off"));
    await off.start();
    expect(off.metrics).to.equal(undefined);
    await off.stop(100);

    const clash = new Application({ app: "Metrics", server: "M3", handleSignals: false, agent: "", registry: "", adapters: { EchoObj: "127.0.0.1:0" }, metricsPort: app.metrics!.port, env: { SGRID_METRICS_HOST: "127.0.0.1" } });
    clash.addServant("EchoObj", new EchoImpl("clash"));
    const err = await clash.start().then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(BindError);
    expect((err as Error).message).to.contain(String(app.metrics!.port));
  });
});
