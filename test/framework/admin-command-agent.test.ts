/**
 * The local agent channel and admin commands: real servants (Applications)
 * talking to an agent stand-in over real gRPC on loopback.
 */
import { expect } from "chai";
import { Application, Communicator, frameworkVersion, getLogLevel, setLogLevel } from "sgridnext";
import { EchoProxy } from "../gen/demo/echo.sgrid";
import { EchoImpl } from "../helpers/echo-servant";
import { StandInAgent } from "./agent-standin";
import { waitFor } from "../helpers/wait";


describe("framework admin commands over the local agent channel", function () {
  this.timeout(60_000);
  let agent: StandInAgent;
  const apps = new Map<string, Application>();
  const comm = new Communicator({ registry: "", env: {} });
  const levelBefore = getLogLevel();

  async function startInstance(id: string): Promise<Application> {
    const app = new Application({
      app: "Test", server: "EchoServer", handleSignals: false, registry: "",
      adapters: { EchoObj: "127.0.0.1:0" },
      env: { SGRID_AGENT: agent.address, SGRID_INSTANCE_ID: id, SGRID_AGENT_TOKEN: `token-${id}`, SGRID_VERSION: "7", SGRID_NODE: "node1" },
    });
    app.addServant("EchoObj", new EchoImpl(`echo-${id}`));
    app.registerCommand("whoami", (args) => `instance ${id}${args ? ` (${args})` : ""}`, "who answers");
    app.registerCommand("boom", () => { throw new Error("it broke"); });
    await app.start();
    apps.set(id, app);
    return app;
  }

  before(async () => {
    agent = new StandInAgent();
    agent.tokens.set("101", "token-101");
    agent.tokens.set("102", "token-102");
    await agent.start();
    await startInstance("101");
    await startInstance("102");
    await waitFor("both instances connected", () => !!agent.connection("101") && !!agent.connection("102"));
  });

  after(async () => {
    setLogLevel(levelBefore);
    comm.close();
    for (const app of apps.values()) await app.stop(200);
    await agent.stop();
  });

  it("says hello with the instance id, token, pid and framework version, reports its adapters ready, and keeps alive at the agent's interval", async () => {
    const conn = agent.connection("101")!;
    expect(conn.hello).to.deep.include({ instanceId: "101", token: "token-101", pid: process.pid, version: frameworkVersion() });
    expect(frameworkVersion()).to.match(/^\d+\.\d+\.\d+/);
    await waitFor("AdaptersReady", () => conn.ready.length > 0);
    expect(conn.ready[0]).to.deep.equal(["Test.EchoServer.EchoObj"]);
    // The stand-in asks for a keepalive every 100 ms (the default before it says so is 5 s).
    await waitFor("keepalives", () => conn.keepalives >= 3, 5_000);
  });

  it("answers a command sent to one instance with that instance's reply", async () => {
    const r102 = await agent.send("102", "whoami", "please");
    expect(r102).to.deep.include({ ok: true, output: "instance 102 (please)", error: "" });
    const r101 = await agent.send("101", "whoami");
    expect(r101.output).to.equal("instance 101");
  });

  it("answers an unknown command with an error naming it", async () => {
    const r = await agent.send("101", "sgrid.nosuch", "x");
    expect(r.ok).to.equal(false);
    expect(r.error).to.contain('unknown command "sgrid.nosuch"');
    expect(r.error).to.contain("whoami");
  });

  it("turns a failing handler into an error reply, and keeps serving", async () => {
    const r = await agent.send("101", "boom");
    expect(r).to.deep.include({ ok: false, error: "boom: it broke" });
    expect((await agent.send("101", "whoami")).ok).to.equal(true);
  });

  it("sgrid.viewstatus shows per-method servant statistics", async () => {
    const port = apps.get("102")!.adapters()[0]!.endpoint.port;
    const proxy = comm.stringToProxy(EchoProxy, `127.0.0.1:${port}`);
    for (let i = 0; i < 5; i++) await proxy.say({ text: "s" });
    await proxy.fail({ code: "OUT_OF_STOCK", message: "none" }).catch(() => undefined);
    const r = await agent.send("102", "sgrid.viewstatus");
    expect(r.ok).to.equal(true);
    const status = JSON.parse(r.output) as { servants: Record<string, { calls: number; errors: number; errorsByCode: Record<string, number> }>; adapters: unknown[] };
    expect(status.servants["Test.EchoServer.EchoObj /demo.echo.v1.Echo/Say"]!.calls).to.be.at.least(5);
    expect(status.servants["Test.EchoServer.EchoObj /demo.echo.v1.Echo/Fail"]!.errorsByCode).to.deep.equal({ OUT_OF_STOCK: 1 });
    expect(status.adapters).to.have.length(1);
  });

  it("sgrid.viewversion, sgrid.setloglevel, sgrid.connections and sgrid.help", async () => {
    const v = JSON.parse((await agent.send("101", "sgrid.viewversion")).output) as Record<string, unknown>;
    expect(v).to.deep.include({ app: "Test", server: "EchoServer", release: "7", framework: frameworkVersion(), node: process.version });

    const set = await agent.send("101", "sgrid.setloglevel", "debug");
    expect(set.ok).to.equal(true);
    expect(getLogLevel()).to.equal("debug");
    const bad = await agent.send("101", "sgrid.setloglevel", "loud");
    expect(bad.ok).to.equal(false);
    expect(bad.error).to.contain('unknown log level "loud"');
    setLogLevel(levelBefore);

    const conns = JSON.parse((await agent.send("101", "sgrid.connections")).output) as { incoming: unknown[]; outgoing: Array<{ endpoint: string }> };
    expect(conns.outgoing.map((c) => c.endpoint)).to.include(`grpc://${agent.address}`);

    const help = (await agent.send("101", "sgrid.help")).output;
    for (const name of ["sgrid.viewstatus", "sgrid.viewversion", "sgrid.setloglevel", "sgrid.loadconfig", "sgrid.connections", "sgrid.help", "whoami"]) {
      expect(help).to.contain(name);
    }
  });

  it("refuses reserved or taken command names", () => {
    const app = apps.get("101")!;
    expect(() => app.registerCommand("sgrid.mine", () => "")).to.throw(TypeError, /reserved/);
    expect(() => app.registerCommand("whoami", () => "")).to.throw(TypeError, /already registered/);
    expect(() => app.registerCommand("bad name", () => "")).to.throw(TypeError, /bad command name/);
  });

  it("keeps serving when the agent goes away, and reconnects (hello and ready again) when it is back", async () => {
    const port = apps.get("101")!.adapters()[0]!.endpoint.port;
    const proxy = comm.stringToProxy(EchoProxy, `127.0.0.1:${port}`);
    const hellosBefore = agent.connections.filter((c) => c.hello.instanceId === "101").length;
    await agent.stop();
    await waitFor("the servant to notice", () => !apps.get("101")!.agentChannel!.connected);
    for (let i = 0; i < 20; i++) expect((await proxy.say({ text: "still here" })).text).to.equal("still here");
    await agent.start();
    await waitFor("a new hello from 101", () => agent.connections.filter((c) => c.hello.instanceId === "101").length > hellosBefore, 20_000);
    const conn = agent.connection("101")!;
    await waitFor("ready again", () => conn.ready.length > 0);
    expect((await agent.send("101", "whoami")).output).to.equal("instance 101");
  });

  it("a servant with a wrong token gets no session, and keeps serving", async () => {
    agent.tokens.set("103", "the-right-one");
    const app = await startInstance("103");
    await waitFor("the stand-in to refuse 103 twice (it retries)", () => (agent.refused.get("103") ?? 0) >= 2);
    expect(agent.connection("103")).to.equal(undefined);
    const proxy = comm.stringToProxy(EchoProxy, `127.0.0.1:${app.adapters()[0]!.endpoint.port}`);
    expect((await proxy.say({ text: "ok" })).text).to.equal("ok");
  });
});
