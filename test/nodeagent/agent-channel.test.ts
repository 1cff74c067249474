/**
 * The local servant channel, end to end: a servant process (a node package
 * speaking the channel through the generated AgentProxy) connects to its
 * agent with the token from its environment; admin commands from the
 * registry stand-in reach it and come back; "agent.tail_log" is answered
 * by the agent; keepalives keep it alive while a servant that sends none
 * is restarted for a keepalive timeout; a wrong token is refused.
 */
import { expect } from "chai";
import { AsyncQueue, Communicator, SgridError, type DeepPartial } from "sgridnext";
import { AgentProxy } from "sgridnext/gen/sgrid/agent/v1/agent.sgrid";
import type { ServantMessage } from "sgridnext/gen/sgrid/agent/v1/agent";
import { freePort } from "../helpers/processes";
import { desiredInstance } from "./helpers/agent-fake-registry";
import { AgentHarness } from "./helpers/agent-harness";
import { binaryPackage, channelNodePackage } from "./helpers/agent-packages";
import { waitFor } from "./helpers/agent-test-env";

describe("nodeagent/agent: local servant channel and admin commands", function () {
  this.timeout(90_000);
  const h = new AgentHarness();
  const CH = 201;
  const BIN = 202;
  let requestId = 1;

  function launch(extra: Record<string, unknown> = {}) {
    return { args: [h.marker], jvmOptions: [], nodeOptions: [], entry: "", runAsUser: "", stopSignal: "", stopGraceMs: 0, keepaliveTimeoutMs: 0, ...extra };
  }

  async function command(instanceId: number, cmd: string, args = "", timeoutMs = 0) {
    const id = requestId++;
    h.registry.sendCommand({ requestId: id, instanceId, command: cmd, args, timeoutMs });
    return h.registry.waitReply(id);
  }

  before(async () => {
    await h.startRegistry();
    const ch = h.registry.addPatch({ id: 1, version: 1, data: await channelNodePackage(h.pkgDir, "Demo", "ChanServer", "1") });
    const bin = h.registry.addPatch({ id: 2, version: 7, data: await binaryPackage(h.pkgDir, "Demo", "BinServer", "7") });
    h.registry.setInstances([
      desiredInstance({
        instanceId: CH, application: "Demo", server: "ChanServer", type: "node",
        adapters: [{ obj: "HttpObj", host: "127.0.0.1", port: await freePort(), protocol: "grpc", weight: 100 }],
        launch: launch({ keepaliveTimeoutMs: 5000 }),
        patch: { id: ch.id, version: ch.version, sha256: ch.sha256, size: ch.size },
      }),
      desiredInstance({
        instanceId: BIN, application: "Demo", server: "BinServer", type: "binary",
        adapters: [{ obj: "HttpObj", host: "127.0.0.1", port: await freePort(), protocol: "grpc", weight: 100 }],
        env: { NODE_BIN: process.execPath },
        launch: launch({ keepaliveTimeoutMs: 800 }),
        patch: { id: bin.id, version: bin.version, sha256: bin.sha256, size: bin.size },
      }),
    ]);
    await h.startAgent();
    await waitFor("channel servant connected", () => h.agent!.channel.connected(String(CH)), 20_000);
  });
  after(() => h.teardown());

  it("relays admin commands to the servant and returns its replies", async () => {
    expect(await command(CH, "echo", "hello servant")).to.include({ ok: true, output: "hello servant" });
    expect(await command(CH, "sgrid.viewversion")).to.include({ ok: true, output: "1" });
    const unknown = await command(CH, "no.such.command");
    expect(unknown.ok).to.equal(false);
    expect(unknown.error).to.equal("unknown command no.such.command");
    expect(h.agent!.channel.readyObjs(String(CH))).to.deep.equal(["Demo.ChanServer.HttpObj"]);
  });

  it("answers with a clear error when the servant does not answer in time", async () => {
    const r = await command(CH, "slow", "", 300);
    expect(r.ok).to.equal(false);
    expect(r.error).to.match(/^AGENT_COMMAND_TIMEOUT: instance 201 did not answer "slow" within 300 ms/);
  });

  it("answers with a clear error for a servant without a channel and for an unknown instance", async () => {
    const noChannel = await command(BIN, "echo", "x");
    expect(noChannel.ok).to.equal(false);
    expect(noChannel.error).to.match(/^AGENT_NO_CHANNEL: instance 202 has no local channel open/);
    const unknown = await command(999, "echo", "x");
    expect(unknown.error).to.match(/^AGENT_INSTANCE_NOT_FOUND: instance 999 is not supervised on node test-node/);
  });

  it("agent.tail_log returns the last lines of the instance's stdout log", async () => {
    await command(CH, "echo", "marker-line-for-tail");
    const r = await command(CH, "agent.tail_log", "5");
    expect(r.ok).to.equal(true);
    const lines = r.output.split("\n");
    expect(lines.length).to.be.at.most(5);
    expect(lines).to.include("command echo marker-line-for-tail");
    const bad = await command(CH, "agent.tail_log", "many");
    expect(bad.ok).to.equal(false);
    expect(bad.error).to.match(/^INVALID_ARGUMENT: agent.tail_log: line count/);
  });

  it("agent.tail_log also reads stderr, and finds the lines containing a text (case-insensitive)", async () => {
    await command(CH, "warn", "disk-almost-full");
    await command(CH, "warn", "cache-miss");
    const err = await command(CH, "agent.tail_log", JSON.stringify({ stream: "stderr", lines: 50 }));
    expect(err.ok, err.error).to.equal(true);
    expect(err.output.split("\n")).to.include.members(["warning disk-almost-full", "warning cache-miss"]);
    expect(err.output).not.to.contain("command echo");
    const found = await command(CH, "agent.tail_log", JSON.stringify({ stream: "stderr", grep: "DISK" }));
    expect(found.output).to.equal("warning disk-almost-full");
    const out = await command(CH, "agent.tail_log", JSON.stringify({ grep: "marker-line-for-tail", lines: 1 }));
    expect(out.output).to.equal("command echo marker-line-for-tail");
    const bad = await command(CH, "agent.tail_log", JSON.stringify({ stream: "journal" }));
    expect(bad.error).to.match(/^INVALID_ARGUMENT: agent.tail_log: stream must be stdout or stderr/);
  });

  it("restarts a servant that sends no keepalive, while keepalives keep the other one running", async () => {
    const from = h.registry.observed.length;
    await h.registry.waitObserved("keepalive restart", (o) => o.instanceId === BIN && o.event === "keepalive", 20_000, from);
    const second = await h.registry.waitObserved("second keepalive restart", (o) => o.instanceId === BIN && o.event === "keepalive" && o.restarts >= 2, 20_000, from);
    expect(second.lastExitReason).to.match(/^keepalive timeout/);
    const ch = h.agent!.supervisor.get(String(CH))!.observed();
    expect(ch.state).to.equal("active");
    expect(ch.restarts, "the channel servant's keepalives reached the supervisor").to.equal(0);
  });

  it("refuses a channel with a wrong token or without hello", async () => {
    const comm = new Communicator();
    try {
      const proxy = comm.stringToProxy(AgentProxy, h.agent!.channel.address);
      for (const first of [
        { kind: { $case: "hello", value: { instanceId: String(CH), token: "not-the-token", pid: 1 } } },
        { kind: { $case: "keepalive", value: {} } },
      ] as Array<DeepPartial<ServantMessage>>) {
        const out = new AsyncQueue<DeepPartial<ServantMessage>>();
        out.push(first);
        let error: unknown;
        try {
          for await (const _m of proxy.channel(out)) { /* nothing expected */ }
        } catch (err) {
          error = err;
        }
        out.close();
        expect(error).to.be.instanceOf(SgridError);
        expect((error as SgridError).code).to.equal("AGENT_CHANNEL_UNAUTHENTICATED");
      }
      expect(h.agent!.channel.connected(String(CH)), "the real servant's channel is untouched").to.equal(true);
    } finally {
      comm.close();
    }
  });
});
