/**
 * The node part inside a full RegistryServer: an agent with the configured
 * cluster token opens its session on the registry's one port
 * (Sgrid.Registry.NodeObj), or on its native port (`nativeListen`, an agent
 * listed as sgrid://host:port), gets its desired state, and an admin command sent
 * through the server's context reaches it; a wrong token is refused; stop()
 * ends the session (the agent reconnects elsewhere) instead of waiting.
 */
import { expect } from "chai";
import { UnauthenticatedError, UnavailableError } from "sgridnext";
import { dialects } from "./helpers/db";
import { FakeAgent, waitFor } from "./helpers/node-harness";
import { type TestRegistry, startTestRegistry } from "./helpers/registry";

const sqlite = dialects()[0]!;
const TOKEN = "server-cluster-token";

for (const via of ["grpc", "sgrid"] as const) describe(`registry node part in RegistryServer (${via}://)`, () => {
  let reg: TestRegistry;
  let target: string;
  const agents: FakeAgent[] = [];
  before(async () => {
    reg = await startTestRegistry(sqlite, { clusterToken: TOKEN, nativeListen: "127.0.0.1:0" });
    target = via === "grpc" ? reg.target : reg.server.address.native!;
    expect(target).to.match(via === "grpc" ? /^127\.0\.0\.1:\d+$/ : /^sgrid:\/\/127\.0\.0\.1:\d+$/);
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.close()));
    await reg?.cleanup();
  });

  it("serves sessions with the cluster token, relays commands, refuses a wrong token, and ends sessions at stop", async () => {
    const { store } = reg.server;
    const good = new FakeAgent(target, "srv-node-1", { token: TOKEN });
    agents.push(good);
    await waitFor("the desired state", () => good.lastDesired());
    expect(good.lastDesired()!.registry).to.equal(reg.server.address.advertise);
    await store.servers.create({ application: "SrvApp", name: "Hello", type: "binary" });
    const inst = await store.instances.create({ application: "SrvApp", server: "Hello", node: "srv-node-1", adapters: [{ obj: "MainObj", host: "0.0.0.0", port: 23000 }] });
    await waitFor("the placement", () => good.lastDesired()?.instances.length === 1);
    expect(await reg.server.context.sessions.sendCommand(inst.id, "sgrid.viewstatus", "", 3000)).to.equal("echo sgrid.viewstatus ");
    expect(reg.server.context.sessions.localNodes()).to.deep.equal(["srv-node-1"]);

    const bad = new FakeAgent(target, "srv-node-2", { token: "not-the-token" });
    agents.push(bad);
    await bad.done;
    expect(bad.outcome).to.be.instanceOf(UnauthenticatedError);

    await reg.server.stop();
    await waitFor("the session to end", () => good.outcome !== undefined);
    expect(good.outcome).to.be.instanceOf(UnavailableError);
  });
});
