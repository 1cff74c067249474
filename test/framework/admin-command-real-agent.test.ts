/**
 * Admin commands end to end against the node agent's real local channel
 * (LocalChannelServer): a servant process built on the framework says hello
 * with its instance id and token, keeps alive, and answers commands.
 */
import { expect } from "chai";
import { LocalChannelServer } from "../../nodeagent/agent";
import { startEchoServer, type Spawned } from "../helpers/processes";
import { waitFor } from "../helpers/wait";


describe("framework admin commands through the node agent's local channel", function () {
  this.timeout(60_000);
  let channel: LocalChannelServer;
  const keepalives = new Map<string, number>();
  const procs: Spawned[] = [];

  before(async () => {
    channel = new LocalChannelServer({
      listen: "127.0.0.1:0",
      tokenOf: (id) => ({ "301": "tok-301", "302": "tok-302" } as Record<string, string>)[id],
      onKeepalive: (id) => keepalives.set(id, (keepalives.get(id) ?? 0) + 1),
      keepaliveIntervalMs: () => 100,
    });
    await channel.start();
    for (const id of ["301", "302"]) {
      procs.push(await startEchoServer({
        SGRID_ADAPTERS: JSON.stringify({ EchoObj: "127.0.0.1:0" }), TEST_NAME: `p${id}`, SGRID_REGISTRY: "",
        SGRID_AGENT: channel.address, SGRID_INSTANCE_ID: id, SGRID_AGENT_TOKEN: `tok-${id}`, SGRID_VERSION: `v${id}`,
      }));
    }
    await waitFor("both servants connected and ready", () => ["301", "302"].every((id) => channel.connected(id) && channel.readyObjs(id).length > 0));
  });

  after(async () => {
    for (const p of procs) { p.child.kill("SIGKILL"); await p.exited; }
    await channel.stop();
  });

  it("reports ready Objs and keeps alive at the agent's interval", async () => {
    expect(channel.readyObjs("301")).to.deep.equal(["Test.EchoServer.EchoObj"]);
    const before = keepalives.get("301") ?? 0;
    await waitFor("three more keepalives", () => (keepalives.get("301") ?? 0) >= before + 3);
  });

  it("returns the reply of the instance the command was sent to, and a clear error for an unknown command", async () => {
    const v301 = JSON.parse((await channel.sendCommand("301", "sgrid.viewversion", "")).output) as { release: string };
    const v302 = JSON.parse((await channel.sendCommand("302", "sgrid.viewversion", "")).output) as { release: string };
    expect(v301.release).to.equal("v301");
    expect(v302.release).to.equal("v302");
    const status = JSON.parse((await channel.sendCommand("302", "sgrid.viewstatus", "")).output) as { pid: number };
    expect(status.pid).to.equal(procs[1]!.child.pid);
    const unknown = await channel.sendCommand("301", "sgrid.frobnicate", "now");
    expect(unknown.ok).to.equal(false);
    expect(unknown.error).to.contain('unknown command "sgrid.frobnicate"');
  });
});
