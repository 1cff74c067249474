/**
 * The registry's service map (Query.FindService / WatchServices, learnt from
 * the servants' reflection) and the gateway forwarding by service name
 * through it: balancing over the Obj's instances, failover when one goes
 * away, a new Obj found without restarting the gateway.
 */
import { expect } from "chai";
import { Application, Communicator, SgridError, Status } from "sgridnext";
import { registryProxy, registryEndpoints } from "sgridnext/internal/discovery/registry-client";
import { QueryProxy } from "sgridnext/gen/sgrid/registry/v1/query.sgrid";
import { Forwarder } from "../../gateway/forwarder";
import { GrpcFront } from "../../gateway/grpc-front";
import { RegistryServiceResolver } from "../../gateway/registry-services";
import { ClockProxy, EchoProxy } from "../gen/demo/echo.sgrid";
import { ClockImpl, EchoImpl } from "../helpers/echo-servant";
import { dialects, uniq } from "../registry/helpers/db";
import { startTestRegistry, type TestRegistry } from "../registry/helpers/registry";
import { waitFor } from "../helpers/wait";

describe("gateway through the registry's service map [sqlite]", function () {
  this.timeout(60_000);
  let reg: TestRegistry;
  const APP = uniq("Gw");
  const apps: Application[] = [];
  const comms: Communicator[] = [];
  let resolver: RegistryServiceResolver;
  let forwarder: Forwarder;
  let front: GrpcFront;
  let viaGateway: string;

  async function startServant(server: string, name: string, obj: string, servant: EchoImpl | ClockImpl): Promise<Application> {
    const app = new Application({ app: APP, server, handleSignals: false, agent: "", registry: "", adapters: { [obj]: "127.0.0.1:0" } });
    app.addServant(obj, servant);
    await app.start();
    apps.push(app);
    const store = reg.server.store;
    const node = uniq("node");
    await store.nodes.upsert({ name: node, address: "127.0.0.1", agentVersion: "test" });
    const inst = await store.instances.create({ application: APP, server, node, adapters: [{ obj, host: "127.0.0.1", port: app.adapters()[0]!.endpoint.port }], desiredState: "active" });
    await store.instances.reportObserved(inst.id, { state: "active", pid: process.pid });
    reg.server.changes.kick();
    return app;
  }

  function communicator(): Communicator {
    const c = new Communicator({ registry: reg.target, env: {} });
    comms.push(c);
    return c;
  }

  before(async () => {
    reg = await startTestRegistry(dialects().find((d) => d.name === "sqlite")!);
    await reg.server.store.servers.create({ application: APP, name: "EchoServer", type: "node" });
    await reg.server.store.servers.create({ application: APP, name: "ClockServer", type: "node" });
    await startServant("EchoServer", "a", "EchoObj", new EchoImpl("a"));
    await startServant("EchoServer", "b", "EchoObj", new EchoImpl("b"));
    const backend = communicator();
    resolver = new RegistryServiceResolver({ registry: reg.target, communicator: backend, token: "" });
    forwarder = new Forwarder({ communicator: backend, services: resolver });
    front = new GrpcFront({ forwarder });
    viaGateway = `Gateway.Front.GatewayObj@tcp -h 127.0.0.1 -p ${await front.listen("127.0.0.1", 0)}`;
  });

  after(async () => {
    await front?.shutdown(200);
    forwarder?.close();
    resolver?.close();
    for (const c of comms) c.close();
    for (const a of apps) await a.stop(200);
    await reg?.cleanup();
  });

  it("FindService names the Obj whose servants' reflection lists the service; an unknown service is NOT_FOUND naming it; a bad name INVALID_ARGUMENT", async () => {
    const query = registryProxy(QueryProxy, registryEndpoints(reg.target), (ep) => communicator().channel(ep), 5000);
    const found = await waitFor("the service map to list demo.echo.v1.Echo", () => query.findService({ service: "demo.echo.v1.Echo" }).catch(() => undefined));
    expect(found.objs).to.deep.equal([`${APP}.EchoServer.EchoObj`]);
    const missing = await query.findService({ service: "no.such.Service" }).then(() => undefined, (e: unknown) => e as SgridError);
    expect(missing?.status).to.equal(Status.NOT_FOUND);
    expect(missing?.message).to.contain("no.such.Service");
    const bad = await query.findService({ service: "not a name/" }).then(() => undefined, (e: unknown) => e as SgridError);
    expect(bad?.status).to.equal(Status.INVALID_ARGUMENT);
    const map = await (async () => { for await (const m of query.watchServices({}, { timeoutMs: 5000 })) return m; return undefined; })();
    expect(map?.services.map((s) => s.service)).to.include("demo.echo.v1.Echo").and.not.include("grpc.health.v1.Health");
  });

  it("a client that knows only the gateway calls the service by name, balanced over the Obj's instances, and keeps being served when one instance goes away", async () => {
    const echo = communicator().stringToProxy(EchoProxy, viaGateway);
    const served = new Set<string>();
    await waitFor("calls through the gateway to reach both instances", async () => {
      served.add((await echo.say({ text: "x" })).metadata.served_by!);
      return served.size === 2;
    });
    expect([...served].sort()).to.deep.equal(["a", "b"]);
    await apps[0]!.stop(200);
    let failed = 0;
    for (let i = 0; i < 30; i++) {
      try { expect((await echo.say({ text: "y" })).metadata.served_by).to.equal("b"); } catch { failed++; }
    }
    expect(failed).to.equal(0);
  });

  it("a service that appears later (a new Obj) is found without restarting the gateway", async () => {
    const clock = communicator().stringToProxy(ClockProxy, viaGateway);
    const before = await clock.now({}).then(() => undefined, (e: unknown) => e as SgridError);
    expect(before?.status).to.equal(Status.UNIMPLEMENTED);
    expect(before?.message).to.contain("demo.echo.v1.Clock");
    await startServant("ClockServer", "clock", "ClockObj", new ClockImpl());
    const now = await waitFor("the Clock service to be served through the gateway", () => clock.now({}).catch(() => undefined));
    expect(Number(now.seconds)).to.equal(Math.floor(Date.parse("2026-01-02T03:04:05.678Z") / 1000));
  });
});
