/**
 * The Admin API over real gRPC against a real registry (SQLite always, MySQL
 * when SGRID_TEST_MYSQL_URL is set): Deploy with automatic ports and
 * duplicate placement, role checks per application, instances, servers,
 * nodes, config writes, commands and config push through a real node
 * session, and no secret in the event log.
 */
import { expect } from "chai";
import {
  AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, NotFoundError, PermissionDeniedError, UnauthenticatedError,
} from "sgridnext";
import { type DialectCase, forEachDialect } from "./helpers/db";
import {
  ADMIN_PASSWORD, type AdminHarness, type SimAgent, addPatch, connectAgent, rejects, startAdminRegistry, uniq,
} from "./helpers/admin-harness";

forEachDialect("registry admin API", (d: DialectCase) => {
  let h: AdminHarness;
  const agents: SimAgent[] = [];
  before(async () => {
    h = await startAdminRegistry(d);
  });
  after(async () => {
    for (const a of agents) await a.close();
    await h?.cleanup();
  });

  async function nodes(n: number): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const name = uniq("node");
      await h.reg.server.store.nodes.upsert({ name, address: `10.9.0.${i + 1}:9600`, agentVersion: "test" });
      out.push(name);
    }
    return out;
  }

  it("deploys on several nodes with automatic ports from 20000, per node", async () => {
    const app = uniq("App");
    const [n1, n2] = await nodes(2);
    const first = await h.admin.deploy({
      application: app, server: "Hello", type: "node", nodes: [n1!, n2!],
      adapters: [{ obj: "GreeterObj", host: "", port: 0, protocol: "", weight: 0 }, { obj: "AdminObj", host: "", port: 0, protocol: "sgrid", weight: 50 }],
      env: { MODE: "test" }, limits: { memoryBytes: 256 << 20, cpuCores: 0.5, pids: 0 },
    }, h.as(h.token));
    expect(first.server?.type).to.equal("node");
    expect(first.server?.instanceCount).to.equal(2);
    expect(first.instances).to.have.length(2);
    const byNode = new Map(first.instances.map((i) => [i.node, i]));
    expect(byNode.get(n1!)!.adapters).to.deep.equal([
      { obj: "GreeterObj", host: "10.9.0.1", port: 20000, protocol: "grpc", weight: 100 },
      { obj: "AdminObj", host: "10.9.0.1", port: 20001, protocol: "sgrid", weight: 50 },
    ]);
    expect(byNode.get(n2!)!.adapters.map((a) => a.port)).to.deep.equal([20000, 20001]);
    expect(byNode.get(n1!)!.limits).to.deep.equal({ memoryBytes: 256 << 20, cpuCores: 0.5, pids: 0 });
    expect(byNode.get(n1!)!.desiredState).to.equal("inactive");

    // A second server on n1 gets the next free ports; a fixed port is kept.
    const second = await h.admin.deploy({
      application: app, server: "World", type: "binary", nodes: [n1!],
      adapters: [{ obj: "AObj", host: "", port: 0, protocol: "", weight: 0 }, { obj: "BObj", host: "0.0.0.0", port: 20002, protocol: "", weight: 0 }, { obj: "CObj", host: "", port: 0, protocol: "", weight: 0 }],
    }, h.as(h.token));
    expect(second.instances[0]!.adapters.map((a) => a.port)).to.deep.equal([20003, 20002, 20004]);
    expect(await h.reg.server.store.instances.usedPorts(n1!)).to.deep.equal([20000, 20001, 20002, 20003, 20004]);
  });

  it("refuses a duplicate placement (ALREADY_EXISTS) and changes nothing", async () => {
    const app = uniq("App");
    const [n1, n2] = await nodes(2);
    await h.admin.deploy({ application: app, server: "Hello", type: "node", nodes: [n1!], adapters: [{ obj: "GreeterObj", host: "", port: 0, protocol: "", weight: 0 }] }, h.as(h.token));
    const err = await rejects(h.admin.deploy({ application: app, server: "Hello", type: "node", nodes: [n2!, n1!], adapters: [{ obj: "GreeterObj", host: "", port: 0, protocol: "", weight: 0 }] }, h.as(h.token)));
    expect(err).to.be.instanceOf(AlreadyExistsError);
    expect(err.message).to.include(`${app}.Hello`).and.include(n1!);
    // Not even the n2 placement of the same request was kept.
    expect((await h.admin.listInstances({ application: app, server: "", node: "" }, h.as(h.token))).instances.map((i) => i.node)).to.deep.equal([n1]);
  });

  it("answers bad deploys with the right status and a message naming the thing", async () => {
    const app = uniq("App");
    const [n1] = await nodes(1);
    const ad = [{ obj: "GreeterObj", host: "", port: 0, protocol: "", weight: 0 }];
    const unknownNode = await rejects(h.admin.deploy({ application: app, server: "Hello", type: "node", nodes: ["no-such-node"], adapters: ad }, h.as(h.token)));
    expect(unknownNode).to.be.instanceOf(NotFoundError);
    expect(unknownNode.message).to.include("no-such-node");
    // The server was not created by the failed request.
    expect(await h.reg.server.store.servers.find(app, "Hello")).to.equal(undefined);
    expect(await rejects(h.admin.deploy({ application: app, server: "Hello", type: "python", nodes: [n1!], adapters: ad }, h.as(h.token)))).to.be.instanceOf(InvalidArgumentError);
    expect(await rejects(h.admin.deploy({ application: app, server: "Hello", type: "", nodes: [n1!], adapters: ad }, h.as(h.token)))).to.be.instanceOf(InvalidArgumentError);
    expect(await rejects(h.admin.deploy({ application: app, server: "Hello", type: "node", nodes: [n1!], adapters: ad, version: 7 }, h.as(h.token)))).to.be.instanceOf(NotFoundError);
    const noVersion = await rejects(h.admin.deploy({ application: app, server: "Hello", type: "node", nodes: [n1!], adapters: ad, start: true }, h.as(h.token)));
    expect(noVersion).to.be.instanceOf(FailedPreconditionError);
    await h.admin.deploy({ application: app, server: "Hello", type: "node", nodes: [n1!], adapters: ad }, h.as(h.token));
    const [n2] = await nodes(1);
    const typeClash = await rejects(h.admin.deploy({ application: app, server: "Hello", type: "java", nodes: [n2!], adapters: ad }, h.as(h.token)));
    expect(typeClash).to.be.instanceOf(FailedPreconditionError);
    expect(typeClash.message).to.include("type node");
    expect(await rejects(h.admin.deploy({ application: app, server: "Hello", type: "node", nodes: [n2!], adapters: [{ obj: "bad/obj", host: "", port: 0, protocol: "", weight: 0 }] }, h.as(h.token)))).to.be.instanceOf(InvalidArgumentError);
  });

  it("deploys with a version and starts at once", async () => {
    const app = uniq("App");
    const [n1] = await nodes(1);
    await h.admin.deploy({ application: app, server: "Hello", type: "node", nodes: [n1!], adapters: [] }, h.as(h.token));
    const patch = await addPatch(h.reg.server.store, app, "Hello");
    const [n2] = await nodes(1);
    const r = await h.admin.deploy({
      application: app, server: "Hello", nodes: [n2!], adapters: [], version: patch.version, start: true,
      healthCheck: { kind: "tcp", port: 0, path: "", initialDelayMs: 100, intervalMs: 1000, timeoutMs: 500, failureThreshold: 3 },
      launch: { args: ["--flag", "a b"], jvmOptions: [], nodeOptions: ["--max-old-space-size=64"], entry: "", runAsUser: "", stopSignal: "SIGINT", stopGraceMs: 2000, keepaliveTimeoutMs: 0 },
    }, h.as(h.token));
    const inst = r.instances[0]!;
    expect(inst.desiredState).to.equal("active");
    expect(inst.desiredVersion).to.equal(patch.version);
    expect(inst.healthCheck?.kind).to.equal("tcp");
    expect(inst.healthCheck?.failureThreshold).to.equal(3);
    expect(inst.launch?.args).to.deep.equal(["--flag", "a b"]);
    expect(inst.launch?.stopSignal).to.equal("SIGINT");
    const rec = await h.reg.server.store.instances.get(inst.id);
    expect(rec.launch).to.deep.equal({ args: ["--flag", "a b"], nodeOptions: ["--max-old-space-size=64"], stopSignal: "SIGINT", stopGraceMs: 2000 });
  });

  it("checks roles per application: viewers read, operators change their own application only", async () => {
    const app = uniq("App");
    const other = uniq("App");
    const [n1, n2] = await nodes(2);
    const ad = [{ obj: "GreeterObj", host: "", port: 0, protocol: "", weight: 0 }];
    const viewer = await h.userWith([{ application: app, role: "viewer" }]);
    const operator = await h.userWith([{ application: app, role: "operator" }]);
    const otherOp = await h.userWith([{ application: other, role: "operator" }]);

    expect(await rejects(h.admin.deploy({ application: app, server: "Hello", type: "node", nodes: [n1!], adapters: ad }, h.as(viewer.token)))).to.be.instanceOf(PermissionDeniedError);
    const denied = await rejects(h.admin.deploy({ application: app, server: "Hello", type: "node", nodes: [n1!], adapters: ad }, h.as(otherOp.token)));
    expect(denied).to.be.instanceOf(PermissionDeniedError);
    expect(denied.message).to.include(app);
    const ok = await h.admin.deploy({ application: app, server: "Hello", type: "node", nodes: [n1!, n2!], adapters: ad }, h.as(operator.token));
    const ids = ok.instances.map((i) => i.id);

    // Viewer reads its application, and only it.
    expect((await h.admin.listInstances({ application: app, server: "", node: "" }, h.as(viewer.token))).instances).to.have.length(2);
    expect(await rejects(h.admin.listInstances({ application: other, server: "", node: "" }, h.as(viewer.token)))).to.be.instanceOf(PermissionDeniedError);
    const servers = await h.admin.listServers({ application: "" }, h.as(viewer.token));
    expect(servers.servers.map((s) => s.application)).to.deep.equal([app]);
    expect(servers.applications).to.deep.equal([app]);

    // Publishing: a viewer and an operator of another application are refused, before anything is checked or stored.
    const patch = await addPatch(h.reg.server.store, app, "Hello");
    const pub = { kind: "publish", instanceIds: ids, version: patch.version, batchSize: 1, stopOnFailure: true, batchTimeoutS: 0 };
    expect(await rejects(h.admin.createTask(pub, h.as(viewer.token)))).to.be.instanceOf(PermissionDeniedError);
    expect(await rejects(h.admin.createTask(pub, h.as(otherOp.token)))).to.be.instanceOf(PermissionDeniedError);
    expect(await rejects(h.admin.createTask(pub, {}))).to.be.instanceOf(UnauthenticatedError);
    expect((await h.admin.listTasks({ application: app, server: "", limit: 0, beforeId: 0 }, h.as(h.token))).tasks).to.have.length(0);
    // Config writes and commands likewise.
    const scope = { level: "application", application: app, server: "", node: "" };
    expect(await rejects(h.admin.putConfig({ scope, fileName: "a.conf", content: "x", comment: "" }, h.as(viewer.token)))).to.be.instanceOf(PermissionDeniedError);
    expect(await rejects(h.admin.sendCommand({ instanceId: ids[0]!, command: "sgrid.viewstatus", args: "", timeoutMs: 0 }, h.as(viewer.token)))).to.be.instanceOf(PermissionDeniedError);
    expect(await rejects(h.admin.deleteServer({ application: app, server: "Hello" }, h.as(otherOp.token)))).to.be.instanceOf(PermissionDeniedError);
    // Admin-only things.
    expect(await rejects(h.admin.deleteNode({ name: n1! }, h.as(operator.token)))).to.be.instanceOf(PermissionDeniedError);
    expect(await rejects(h.admin.listUsers({}, h.as(operator.token)))).to.be.instanceOf(PermissionDeniedError);
    // The operator publishes (creating the task is enough here).
    const task = await h.admin.createTask(pub, h.as(operator.token));
    expect(task.kind).to.equal("publish");
    expect(task.createdBy).to.equal(operator.name);
    expect((await h.admin.getTask({ id: task.id }, h.as(viewer.token))).id).to.equal(task.id);
    expect(await rejects(h.admin.getTask({ id: task.id }, h.as(otherOp.token)))).to.be.instanceOf(PermissionDeniedError);
  });

  it("updates an instance by update_mask, lists servers and nodes, deletes what is unused", async () => {
    const app = uniq("App");
    const [n1] = await nodes(1);
    const r = await h.admin.deploy({ application: app, server: "Hello", type: "java", nodes: [n1!], adapters: [{ obj: "GreeterObj", host: "", port: 0, protocol: "", weight: 0 }], env: { A: "1" } }, h.as(h.token));
    const id = r.instances[0]!.id;
    const up = await h.admin.updateInstance({ instanceId: id, updateMask: ["env", "limits"], env: { B: "2" }, limits: { memoryBytes: 0, cpuCores: 2, pids: 100 }, adapters: [] }, h.as(h.token));
    expect(up.env).to.deep.equal({ B: "2" });
    expect(up.limits).to.deep.equal({ memoryBytes: 0, cpuCores: 2, pids: 100 });
    // Adapters were not in the mask: unchanged.
    expect(up.adapters.map((a) => a.port)).to.deep.equal([20000]);
    const up2 = await h.admin.updateInstance({ instanceId: id, updateMask: ["adapters"], adapters: [{ obj: "GreeterObj", host: "", port: 0, protocol: "", weight: 0 }, { obj: "NewObj", host: "", port: 0, protocol: "", weight: 0 }] }, h.as(h.token));
    expect(up2.adapters.map((a) => a.port)).to.deep.equal([20000, 20001]);
    expect(await rejects(h.admin.updateInstance({ instanceId: id, updateMask: ["pid"] }, h.as(h.token)))).to.be.instanceOf(InvalidArgumentError);
    expect(await rejects(h.admin.updateInstance({ instanceId: id, updateMask: [] }, h.as(h.token)))).to.be.instanceOf(InvalidArgumentError);
    expect(await rejects(h.admin.updateInstance({ instanceId: 999999, updateMask: ["env"] }, h.as(h.token)))).to.be.instanceOf(NotFoundError);

    const servers = await h.admin.listServers({ application: app }, h.as(h.token));
    expect(servers.servers).to.deep.include({ application: app, name: "Hello", type: "java", defaultVersion: 0, createdAt: servers.servers[0]!.createdAt, instanceCount: 1, placement: undefined });
    const listed = await h.admin.listNodes({}, h.as(h.token));
    expect(listed.nodes.find((n) => n.name === n1)?.instanceCount).to.equal(1);
    expect(await rejects(h.admin.deleteServer({ application: app, server: "Hello" }, h.as(h.token)))).to.be.instanceOf(FailedPreconditionError);
    expect(await rejects(h.admin.deleteNode({ name: n1! }, h.as(h.token)))).to.be.instanceOf(FailedPreconditionError);
  });

  it("writes configs (put, list, rollback, delete) and refuses bad file names", async () => {
    const app = uniq("App");
    const scope = { level: "server", application: app, server: "Hello", node: "" };
    await h.reg.server.store.servers.create({ application: app, name: "Hello", type: "node" });
    const v1 = await h.admin.putConfig({ scope, fileName: "app.yaml", content: "a: 1\n", comment: "first" }, h.as(h.token));
    expect(v1.version).to.equal(1);
    expect(v1.author).to.equal("admin");
    expect(v1.scope).to.deep.equal(scope);
    await h.admin.putConfig({ scope, fileName: "app.yaml", content: "a: 2\n", comment: "" }, h.as(h.token));
    const back = await h.admin.rollbackConfig({ scope, fileName: "app.yaml", version: 1, comment: "undo" }, h.as(h.token));
    expect(back.version).to.equal(3);
    expect(back.content).to.equal("a: 1\n");
    expect(back.rolledBackFrom).to.equal(1);
    const files = await h.admin.listConfigFiles({ scope }, h.as(h.token));
    expect(files.files.map((f) => [f.fileName, f.currentVersion])).to.deep.equal([["app.yaml", 3]]);
    for (const bad of ["../x", "a/b", "a\\b"]) {
      const err = await rejects(h.admin.putConfig({ scope, fileName: bad, content: "x", comment: "" }, h.as(h.token)));
      expect(err, bad).to.be.instanceOf(InvalidArgumentError);
    }
    expect(await rejects(h.admin.putConfig({ scope: { ...scope, level: "galaxy" }, fileName: "x.conf", content: "x", comment: "" }, h.as(h.token)))).to.be.instanceOf(InvalidArgumentError);
    await h.admin.deleteConfig({ scope, fileName: "app.yaml" }, h.as(h.token));
    expect((await h.admin.listConfigFiles({ scope }, h.as(h.token))).files).to.deep.equal([]);
  });

  it("sends commands and pushes configs through the node's session", async () => {
    const app = uniq("App");
    const node = uniq("node");
    const agent = await connectAgent(h.reg.target, node);
    agents.push(agent);
    const r = await h.admin.deploy({ application: app, server: "Hello", type: "node", nodes: [node], adapters: [{ obj: "GreeterObj", host: "", port: 0, protocol: "", weight: 0 }] }, h.as(h.token));
    const id = r.instances[0]!.id;
    expect(r.instances[0]!.adapters[0]!.host).to.equal("127.0.0.1");
    const out = await h.admin.sendCommand({ instanceId: id, command: "sgrid.viewstatus", args: "verbose", timeoutMs: 0 }, h.as(h.token));
    expect(out.output).to.equal("echo sgrid.viewstatus verbose");
    await h.admin.putConfig({ scope: { level: "application", application: app, server: "", node: "" }, fileName: "db.conf", content: "x=1", comment: "" }, h.as(h.token));
    const push = await h.admin.pushConfig({ fileName: "db.conf", instanceIds: [] }, h.as(h.token));
    expect(push.results).to.deep.equal([{ instanceId: id, ok: true, message: "echo sgrid.loadconfig db.conf" }]);
    expect(await rejects(h.admin.pushConfig({ fileName: "other.conf", instanceIds: [id] }, h.as(h.token)))).to.be.instanceOf(NotFoundError);
    // Usage from heartbeats shows in ListInstances.
    agent.fake.heartbeat([{ instanceId: id, memoryBytes: 12345, cpuCoresUsed: 0.25 }]);
    const inst = await waitForValue(async () => (await h.admin.listInstances({ application: app, server: "", node: "" }, h.as(h.token))).instances.find((i) => i.memoryBytes === 12345));
    expect(inst.cpuCoresUsed).to.equal(0.25);
    const listed = await waitForValue(async () => (await h.admin.listNodes({}, h.as(h.token))).nodes.find((n) => n.name === node && n.samples.length > 0));
    expect(listed.online).to.equal(true);
  });

  it("records every change as an event by the user, with no secret in the log", async () => {
    const app = uniq("App");
    const node = uniq("node");
    const agent = await connectAgent(h.reg.target, node);
    agents.push(agent);
    const secrets = ["env-secret-0xDEADBEEF", "config-secret-0xFEEDFACE", "user-password-0xC0FFEE", "command-arg-secret-0xBADF00D", "changed-password-0xABCDEF"];
    const r = await h.admin.deploy({ application: app, server: "Hello", type: "node", nodes: [node], adapters: [], env: { DB_PASSWORD: secrets[0]! } }, h.as(h.token));
    const id = r.instances[0]!.id;
    await h.admin.updateInstance({ instanceId: id, updateMask: ["env"], env: { DB_PASSWORD: secrets[0]! } }, h.as(h.token));
    await h.admin.putConfig({ scope: { level: "application", application: app, server: "", node: "" }, fileName: "db.conf", content: `password=${secrets[1]}`, comment: "" }, h.as(h.token));
    const name = uniq("user");
    await h.admin.createUser({ name, password: secrets[2]!, roles: [{ application: app, role: "operator" }] }, h.as(h.token));
    const login = await h.admin.login({ user: name, password: secrets[2]! });
    await h.admin.setPassword({ name, password: secrets[4]! }, h.as(login.token));
    await h.admin.sendCommand({ instanceId: id, command: "custom.rotate", args: secrets[3]!, timeoutMs: 0 }, h.as(login.token));
    await h.admin.pushConfig({ fileName: "db.conf", instanceIds: [id] }, h.as(login.token));
    await rejects(h.admin.login({ user: name, password: "wrong-password-0x1234" }));
    const events = (await h.admin.listEvents({ kind: "", targetPrefix: "", actor: "", beforeId: 0, afterId: 0, limit: 1000 }, h.as(h.token))).events;
    const text = JSON.stringify(events);
    for (const s of [...secrets, login.token, h.token, ADMIN_PASSWORD, "wrong-password-0x1234"]) expect(text, s).to.not.include(s);
    // And the events are there, by the right actors.
    const kinds = (actor: string) => events.filter((e) => e.actor === actor).map((e) => e.kind);
    expect(kinds("admin")).to.include.members(["server.create", "instance.deploy", "instance.update", "config.put", "user.create"]);
    expect(kinds(name)).to.include.members(["user.login", "user.password", "instance.command", "config.push"]);
    const deployEvent = events.find((e) => e.kind === "instance.deploy" && e.target === `${app}.Hello@${node}`)!;
    expect(JSON.parse(deployEvent.dataJson).envNames).to.deep.equal(["DB_PASSWORD"]);
    // An operator of the application sees its events only when asking for them.
    const opEvents = await h.admin.listEvents({ kind: "", targetPrefix: `${app}.`, actor: "", beforeId: 0, afterId: 0, limit: 0 }, h.as(login.token));
    expect(opEvents.events.length).to.be.greaterThan(0);
    expect(await rejects(h.admin.listEvents({ kind: "", targetPrefix: "", actor: "", beforeId: 0, afterId: 0, limit: 0 }, h.as(login.token)))).to.be.instanceOf(PermissionDeniedError);
  });
});

async function waitForValue<T>(fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 50));
  }
}
