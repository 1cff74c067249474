/**
 * The node part inside a full RegistryServer: an agent with the configured
 * cluster token opens its session on the registry's one port
 * (Sgrid.Registry.NodeObj), gets its desired state, and an admin command sent
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

describe("registry node part in RegistryServer", () => {
  let reg: TestRegistry;
  const agents: FakeAgent[] = [];
  before(async () => {
    reg = await startTestRegistry(sqlite, { clusterToken: TOKEN });
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.close()));
    await reg?.cleanup();
  });

  it("serves sessions with the cluster token, relays commands, refuses a wrong token, and ends sessions at stop", async () => {
    const { store } = reg.server;
    const good = new FakeAgent(reg.target, "srv-node-1", { token: TOKEN });
    agents.push(good);
    await waitFor("the desired state", () => good.lastDesired());
    expect(good.lastDesired()!.registry).to.equal(reg.server.address.advertise);
    await store.servers.create({ application: "SrvApp", name: "Hello", type: "binary" });
    const inst = await store.instances.create({ application: "SrvApp", server: "Hello", node: "srv-node-1", adapters: [{ obj: "MainObj", host: "0.0.0.0", port: 23000 }] });
    await waitFor("the placement", () => good.lastDesired()?.instances.length === 1);
    expect(await reg.server.context.sessions.sendCommand(inst.id, "sgrid.viewstatus", "", 3000)).to.equal("echo sgrid.viewstatus ");
    expect(reg.server.context.sessions.localNodes()).to.deep.equal(["srv-node-1"]);

    const bad = new FakeAgent(reg.target, "srv-node-2", { token: "not-the-token" });
    agents.push(bad);
    await bad.done;
    expect(bad.outcome).to.be.instanceOf(UnauthenticatedError);

    await reg.server.stop();
    await waitFor("the session to end", () => good.outcome !== undefined);
    expect(good.outcome).to.be.instanceOf(UnavailableError);
  });
});
