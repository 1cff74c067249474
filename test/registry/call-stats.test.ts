/**
 * The service monitor: a servant's call stats go servant -> agent -> registry
 * -> Admin API / admin app, checked against a known call pattern.
 *
 * The servant is a real framework process (test/helpers/echo-server-main)
 * connected to the node agent's real local channel (LocalChannelServer); its
 * reports are passed up a real node session of a real registry the way
 * NodeAgent does (one `session.send` per report, test/admin/helpers
 * FakeAgent holding the session); the registry stores them per minute; the
 * admin app answers them as JSON and CSV. Then the store alone, on SQLite
 * and MySQL: sums across instances and minutes, and the retention sweep.
 */
import { expect } from "chai";
import { Communicator, InternalError } from "sgridnext";
import { LocalChannelServer } from "../../nodeagent/agent";
import { EchoProxy } from "../gen/demo/echo.sgrid";
import { ADMIN_PASSWORD, Client, FakeAgent, startStack, type Stack } from "../admin/helpers";
import { startEchoServer, type Spawned } from "../helpers/processes";
import { waitFor } from "../helpers/wait";
import { type DialectCase, forEachDialect } from "./helpers/db";
import { startHarness, type Harness } from "./config-patch-harness";

const N_SAY = 20;
const N_FAIL = 5;

describe("service monitor: servant -> agent -> registry -> admin", function () {
  this.timeout(60_000);
  let stack: Stack;
  let agent: FakeAgent;
  let channel: LocalChannelServer;
  let servant: Spawned | undefined;
  let admin: Client;
  let instanceId = 0;

  before(async () => {
    stack = await startStack();
    admin = new Client(stack.url);
    expect((await admin.login("admin", ADMIN_PASSWORD)).status).to.equal(200);
    agent = new FakeAgent(stack.registryTarget, "node-a");
    await waitFor("node online", async () => (await admin.get("/api/nodes")).body.nodes?.some((n: any) => n.online));
    const r = await admin.post("/api/servers", { application: "Test", server: "EchoServer", type: "node", nodes: ["node-a"], adapters: [{ obj: "EchoObj", port: 0 }] });
    expect(r.status, JSON.stringify(r.body)).to.equal(201);
    instanceId = r.body.instances[0].id;
    await waitFor("the agent's session knows the instance", () => agent.lastDesired?.instances.some((i) => i.instanceId === instanceId));
    channel = new LocalChannelServer({ listen: "127.0.0.1:0", tokenOf: (id) => (id === String(instanceId) ? "tok" : undefined), onKeepalive: () => undefined, keepaliveIntervalMs: () => 100 });
    await channel.start();
    // What NodeAgent does with the channel's reports.
    channel.on("stats", (id, report) => agent.sendStats(Number(id), report));
    servant = await startEchoServer({
      SGRID_ADAPTERS: JSON.stringify({ EchoObj: "127.0.0.1:0" }), SGRID_REGISTRY: "",
      SGRID_AGENT: channel.address, SGRID_INSTANCE_ID: String(instanceId), SGRID_AGENT_TOKEN: "tok",
    });
    await waitFor("servant on the channel", () => channel.connected(String(instanceId)));
  });

  after(async () => {
    if (servant) {
      servant.child.kill("SIGKILL");
      await servant.exited;
    }
    await channel?.stop();
    await agent?.close();
    await stack?.stop();
  });

  it(`counts ${N_SAY} calls and ${N_FAIL} errors by code per method, as the caller made them`, async () => {
    const comm = new Communicator();
    try {
      const proxy = comm.stringToProxy(EchoProxy, `127.0.0.1:${servant!.adapters[0]!.port}`);
      for (let i = 0; i < N_SAY; i++) await proxy.say({ text: `hello ${i}` });
      for (let i = 0; i < N_FAIL; i++) {
        const err = await proxy.fail({ code: "OUT_OF_STOCK", message: "none left", unexpected: false }).then(() => undefined, (e: Error) => e);
        expect(err).to.be.instanceOf(Error);
      }
      const unexpected = await proxy.fail({ code: "", message: "boom", unexpected: true }).then(() => undefined, (e: Error) => e);
      expect(unexpected).to.be.instanceOf(InternalError);
    } finally {
      comm.close();
    }
    const byMethod = async () => {
      const r = await admin.get("/api/stats?application=Test&server=EchoServer&side=server");
      expect(r.status, JSON.stringify(r.body)).to.equal(200);
      const sums = new Map<string, { calls: number; errors: number; codes: Record<string, number>; p99: number }>();
      for (const p of r.body.points as any[]) {
        expect(p.scope).to.equal("Test.EchoServer.EchoObj");
        const s = sums.get(p.method) ?? { calls: 0, errors: 0, codes: {}, p99: 0 };
        s.calls += Number(p.calls);
        s.errors += Number(p.errors);
        for (const [c, n] of Object.entries(JSON.parse(p.errorsByCodeJson) as Record<string, number>)) s.codes[c] = (s.codes[c] ?? 0) + n;
        s.p99 = Math.max(s.p99, p.p99Ms);
        sums.set(p.method, s);
      }
      return sums;
    };
    const sums = await waitFor("the reports stored", async () => {
      const s = await byMethod();
      const say = [...s.entries()].find(([m]) => /say$/i.test(m))?.[1];
      const fail = [...s.entries()].find(([m]) => /fail$/i.test(m))?.[1];
      return say?.calls === N_SAY && fail?.calls === N_FAIL + 1 ? s : undefined;
    });
    const say = [...sums.entries()].find(([m]) => /say$/i.test(m))![1];
    const fail = [...sums.entries()].find(([m]) => /fail$/i.test(m))![1];
    expect(say).to.include({ calls: N_SAY, errors: 0 });
    expect(fail).to.include({ calls: N_FAIL + 1, errors: N_FAIL + 1 });
    expect(fail.codes).to.deep.equal({ OUT_OF_STOCK: N_FAIL, INTERNAL: 1 });
    expect(say.p99).to.be.above(0);
    // The same numbers as CSV, for a spreadsheet.
    const csv = await admin.get("/api/stats?application=Test&server=EchoServer&side=server&format=csv");
    expect(csv.headers.get("content-type")).to.match(/^text\/csv/);
    const lines = String(csv.body).trim().split("\n");
    expect(lines[0]).to.equal("time,side,scope,method,calls,errors,errors_by_code,avg_ms,p50_ms,p99_ms");
    const csvCalls = lines.slice(1).filter((l) => /,Test\.EchoServer\.EchoObj,[^,]*[Ss]ay,/.test(l)).reduce((n, l) => n + Number(l.split(",")[4]), 0);
    expect(csvCalls).to.equal(N_SAY);
  });

  it("refuses another application's viewer and bad ranges", async () => {
    await admin.post("/api/users", { name: "otherview", password: "otherview-pass-1", roles: [{ application: "Other", role: "viewer" }] });
    const other = new Client(stack.url);
    expect((await other.login("otherview", "otherview-pass-1")).status).to.equal(200);
    expect((await other.get("/api/stats?application=Test&server=EchoServer")).status).to.equal(403);
    const bad = await admin.get("/api/stats?application=Test&server=EchoServer&from=2000&to=1000");
    expect(bad.status).to.equal(400);
    expect((await admin.get("/api/stats?application=Test&server=EchoServer&side=sideways")).body.error.field).to.equal("side");
  });
});

forEachDialect("service monitor storage", (d: DialectCase) => {
  let h: Harness;
  before(async () => {
    h = await startHarness(d);
    await h.store.servers.create({ application: "Mon", name: "Svc", type: "node" });
  });
  after(async () => h?.close());

  const stat = (method: string, calls: number, errors: number, fast: number) => ({
    side: "server", scope: "Mon.Svc.Obj", method, calls, errors, errorsByCode: (errors ? { UNAVAILABLE: errors } : {}) as Record<string, number>,
    buckets: [fast, calls - fast], totalMs: calls * 0.7,
  });

  it("adds deltas of several instances into per-minute rows, and sums them when read", async () => {
    const t0 = Date.UTC(2026, 0, 1, 10, 0, 0);
    await h.store.callStats.add({ id: 1, application: "Mon", server: "Svc", node: "n1" }, t0 + 5_000, [stat("Get", 10, 1, 10)]);
    await h.store.callStats.add({ id: 1, application: "Mon", server: "Svc", node: "n1" }, t0 + 30_000, [stat("Get", 5, 0, 5)]);
    await h.store.callStats.add({ id: 2, application: "Mon", server: "Svc", node: "n2" }, t0 + 40_000, [stat("Get", 7, 2, 0)]);
    await h.store.callStats.add({ id: 2, application: "Mon", server: "Svc", node: "n2" }, t0 + 61_000, [stat("Get", 3, 0, 3)]);
    const rows = await h.store.callStats.query({ application: "Mon", server: "Svc", from: t0, to: t0 + 120_000 });
    expect(rows.map((r) => [r.minute - t0, r.calls, r.errors, r.errorsByCode, r.buckets])).to.deep.equal([
      [0, 22, 3, { UNAVAILABLE: 3 }, [15, 7]],
      [60_000, 3, 0, {}, [3, 0]],
    ]);
  });

  it("deletes minutes older than the retention, keeping the rest", async () => {
    const t0 = Date.UTC(2026, 0, 1, 10, 0, 0);
    expect(await h.store.callStats.prune(t0 + 60_000)).to.equal(2);
    const left = await h.store.callStats.query({ application: "Mon", server: "Svc", from: 0, to: Number.MAX_SAFE_INTEGER });
    expect(left.map((r) => r.minute - t0)).to.deep.equal([60_000]);
  });
});
