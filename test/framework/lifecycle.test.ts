/**
 * Failover over explicit endpoints, graceful shutdown of a servant process,
 * and adapters that cannot bind.
 */
import { expect } from "chai";
import * as net from "node:net";
import { Application, BindError, Communicator, ConfigError, EndpointParseError, serverStats } from "sgridnext";
import { EchoProxy } from "../gen/demo/echo.sgrid";
import { EchoImpl } from "../helpers/echo-servant";
import { freePort, startEchoServer } from "../helpers/processes";

describe("framework lifecycle", function () {
  this.timeout(30_000);

  it("fails over: with two endpoints and one of them down, every call succeeds", async () => {
    const app = new Application({ handleSignals: false, adapters: { EchoObj: "127.0.0.1:0" } });
    app.addServant("EchoObj", new EchoImpl("alive"));
    await app.start();
    const up = app.adapters()[0]!.endpoint.port;
    const down = await freePort();
    const comm = new Communicator();
    try {
      const proxy = comm.stringToProxy(EchoProxy, `Test.EchoServer.EchoObj@tcp -h 127.0.0.1 -p ${down}:tcp -h 127.0.0.1 -p ${up}`);
      for (let i = 0; i < 20; i++) {
        const r = await proxy.say({ text: `${i}` });
        expect(r.metadata.served_by).to.equal("alive");
      }
      // The dead endpoint has been set aside: the proxy now sends everything to the live one.
      expect(proxy.$invoker.health.isAside(proxy.$invoker.currentEndpoints().find((e) => e.port === down)!)).to.equal(true);
    } finally {
      comm.close();
      await app.stop(200);
    }
  });

  it("an Application counts its Objs' calls from zero: not on top of a stopped Application's that served the same Obj in this process", async () => {
    const key = "Test.Life.EchoObj /demo.echo.v1.Echo/Say";
    const run = async (calls: number) => {
      const app = new Application({ handleSignals: false, app: "Test", server: "Life", adapters: { EchoObj: "127.0.0.1:0" } });
      app.addServant("EchoObj", new EchoImpl("counted"));
      await app.start();
      const comm = new Communicator();
      try {
        const proxy = comm.stringToProxy(EchoProxy, `Test.Life.EchoObj@tcp -h 127.0.0.1 -p ${app.adapters()[0]!.endpoint.port}`);
        for (let i = 0; i < calls; i++) await proxy.say({ text: `${i}` });
        await proxy.fail({ code: "OUT_OF_STOCK", message: "none" }).catch(() => undefined);
        return serverStats.toJSON() as Record<string, { calls: number; errorsByCode: Record<string, number> } | undefined>;
      } finally {
        comm.close();
        await app.stop(200);
      }
    };
    expect((await run(3))[key]?.calls).to.equal(3);
    const second = await run(2);
    expect(second[key]?.calls).to.equal(2);
    expect(second["Test.Life.EchoObj /demo.echo.v1.Echo/Fail"]?.errorsByCode).to.deep.equal({ OUT_OF_STOCK: 1 });
  });

  it("round-robins across endpoints", async () => {
    const apps = await Promise.all(["a", "b"].map(async (name) => {
      const app = new Application({ handleSignals: false, adapters: { EchoObj: "127.0.0.1:0" } });
      app.addServant("EchoObj", new EchoImpl(name));
      await app.start();
      return app;
    }));
    const comm = new Communicator();
    try {
      const proxy = comm.stringToProxy(EchoProxy, apps.map((a) => `127.0.0.1:${a.adapters()[0]!.endpoint.port}`).join(","));
      const seen: string[] = [];
      for (let i = 0; i < 6; i++) seen.push((await proxy.say({})).metadata.served_by!);
      expect(seen.filter((s) => s === "a")).to.have.length(3);
      expect(seen.filter((s) => s === "b")).to.have.length(3);
    } finally {
      comm.close();
      await Promise.all(apps.map((a) => a.stop(200)));
    }
  });

  it("graceful shutdown: a call in flight when SIGTERM arrives completes, and the process exits 0", async () => {
    const port = await freePort();
    const server = await startEchoServer({ SGRID_TARGET_HOST: "127.0.0.1", SGRID_TARGET_PORT: String(port) });
    const comm = new Communicator();
    try {
      const proxy = comm.stringToProxy(EchoProxy, `127.0.0.1:${port}`);
      await proxy.say({ text: "warm up" });
      const inflight = proxy.slow({ millis: 1500, id: "graceful" }, { timeoutMs: 10_000 });
      await new Promise((r) => setTimeout(r, 300));
      server.child.kill("SIGTERM");
      const reply = await inflight;
      expect(reply.text).to.equal("slept 1500");
      const exit = await server.exited;
      expect(exit.code).to.equal(0);
    } finally {
      comm.close();
      server.child.kill("SIGKILL");
    }
  });

  it("names the port when an adapter's port is already in use, and opens nothing", async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()));
    const port = (blocker.address() as net.AddressInfo).port;
    const app = new Application({ handleSignals: false, adapters: { EchoObj: `127.0.0.1:${port}` } });
    app.addServant("EchoObj", new EchoImpl());
    try {
      const err = await app.start().then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(BindError);
      expect((err as Error).message).to.include(String(port)).and.to.include("already in use");
    } finally {
      blocker.close();
    }
  });

  it("a servant process whose port is taken exits non-zero with a message naming the port", async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const err = await startEchoServer({ SGRID_TARGET_HOST: "127.0.0.1", SGRID_TARGET_PORT: String(port) }).then(() => undefined, (e: unknown) => e);
      expect((err as Error).message).to.match(new RegExp(`exited with 1: .*port ${port} is already in use`));
    } finally {
      blocker.close();
    }
  });

  it("refuses endpoint strings that do not parse, naming the bad part", () => {
    const comm = new Communicator();
    const bad: Array<[string, RegExp]> = [
      ["Demo.Hello.Obj@tcp -h 127.0.0.1", /missing -p port/],
      ["Demo.Hello.Obj@udp -h 127.0.0.1 -p 1", /unknown protocol "udp"/],
      ["Demo.Hello.Obj@tcp -h 127.0.0.1 -p 99999", /out of range/],
      ["Demo.Hello.Obj@tcp -h 127.0.0.1 -p x", /port "x" is not a number/],
      ["Demo.Hello.Obj@tcp -h 127.0.0.1 -p 1 -q 3", /unknown option "-q"/],
      ["Hello@tcp -h 127.0.0.1 -p 1", /not an App.Server.Obj name/],
      ["127.0.0.1", /neither an App.Server.Obj name nor host:port/],
      ["127.0.0.1:", /port "" is not a number/],
      ["ftp://127.0.0.1:80", /unknown scheme "ftp"/],
      ["", /empty proxy target/],
    ];
    for (const [text, re] of bad) {
      expect(() => comm.stringToProxy(EchoProxy, text), text).to.throw(EndpointParseError, re);
    }
    comm.close();
  });

  it("refuses to start without an adapter for a servant, naming the Obj", async () => {
    const app = new Application({ handleSignals: false, env: {}, app: "Demo", server: "HelloServer" });
    app.addServant("EchoObj", new EchoImpl());
    const err = await app.start().then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(ConfigError);
    expect((err as Error).message).to.include("Demo.HelloServer.EchoObj");
  });

  it("takes adapters from SGRID_ADAPTERS by full or short Obj name", async () => {
    const app = new Application({ handleSignals: false, env: { SGRID_APP: "Demo", SGRID_SERVER: "HelloServer", SGRID_ADAPTERS: JSON.stringify({ "Demo.HelloServer.EchoObj": "127.0.0.1:0" }) } });
    app.addServant("EchoObj", new EchoImpl());
    await app.start();
    expect(app.adapters()[0]!.obj).to.equal("Demo.HelloServer.EchoObj");
    expect(app.adapters()[0]!.endpoint.port).to.be.greaterThan(0);
    await app.stop(100);
  });
});
