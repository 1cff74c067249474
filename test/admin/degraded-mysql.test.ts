/**
 * Degraded, not blind: the admin app in front of a registry whose MariaDB
 * connection is cut while it runs. The cut is real: registry -> TCP
 * forwarder (in this test) -> MariaDB; two fake agents hold real node
 * sessions. While cut, a logged-in operator still lists nodes, servers and
 * instances (flagged degraded, with the time of the data), every write
 * answers 503 DATABASE_UNAVAILABLE with the reason, a new login answers 503
 * and an unknown token is refused; the browser shows the banner and every
 * write control disabled. Restored, everything works again without a
 * restart. MySQL only (SGRID_TEST_MYSQL_URL); screenshots in
 * test-output/admin-degraded-* (kept when a test fails, or with
 * SGRID_TEST_KEEP_OUTPUT=1).
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { Communicator } from "sgridnext";
import { AdminProxy } from "sgridnext/gen/sgrid/registry/v1/admin.sgrid";
import { outputDir } from "../helpers/paths";
import { dialects, rejects, type TestDatabase } from "../registry/helpers/db";
import { TcpForwarder, viaPort } from "../registry/helpers/registry";
import { ADMIN_PASSWORD, Client, FakeAgent, makePackage, startStack, waitFor, type Stack } from "./helpers";

const mysql = dialects().find((d) => d.name === "mysql");
const CHROMIUM = process.env.SGRID_TEST_CHROMIUM || "/usr/bin/chromium";
const OPS = { name: "ops", password: "ops-password-1" };
const WAIT = { timeout: 30_000 };

(mysql ? describe : describe.skip)("admin degraded mode: MariaDB cut while running [mysql] @slow", function () {
  this.timeout(180_000);
  let db: TestDatabase;
  let forwarder: TcpForwarder;
  let stack: Stack;
  let admin: Client;
  let ops: Client;
  let browser: Browser | undefined;
  let page: Page | undefined;
  let shots: string;
  const agents: FakeAgent[] = [];
  let ids: number[] = [];
  let atCut: any[] = [];

  async function shot(name: string): Promise<void> {
    await page?.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  }

  before(async () => {
    shots = outputDir("admin-degraded");
    db = await mysql!.create();
    const u = new URL(db.url);
    forwarder = new TcpForwarder({ host: u.hostname, port: u.port ? Number(u.port) : 3306 });
    const port = await forwarder.listen();
    stack = await startStack({ loginAttemptsPerMinute: 1000 }, { db: viaPort(db.url, port) });
    admin = new Client(stack.url);
    expect((await admin.login("admin", ADMIN_PASSWORD)).status).to.equal(200);
    expect((await admin.post("/api/users", { name: OPS.name, password: OPS.password, roles: [{ application: "Demo", role: "operator" }] })).status).to.equal(201);
    ops = new Client(stack.url);
    expect((await ops.login(OPS.name, OPS.password)).status).to.equal(200);
    agents.push(new FakeAgent(stack.registryTarget, "node-a"), new FakeAgent(stack.registryTarget, "node-b"));
    await waitFor("nodes online", async () => (await ops.get("/api/nodes")).body.nodes?.filter((n: any) => n.online).length === 2);
    const deployed = await ops.post("/api/servers", {
      application: "Demo", server: "HelloServer", type: "node", nodes: ["node-a", "node-b"], adapters: [{ obj: "HelloObj" }],
    });
    expect(deployed.status, JSON.stringify(deployed.body)).to.equal(201);
    ids = deployed.body.instances.map((i: any) => i.id);
    const pkg = await makePackage(shots, "degraded");
    expect((await ops.request("POST", "/api/patches/Demo/HelloServer", { raw: pkg })).status).to.equal(201);
    expect((await ops.put("/api/patches/Demo/HelloServer/1/default")).status).to.be.oneOf([200, 204]);
    const publish = await ops.post("/api/tasks", { kind: "publish", instanceIds: ids, version: 1 });
    expect(publish.status).to.equal(201);
    await waitFor("the publish task to succeed", async () => (await ops.get(`/api/tasks/${publish.body.id}`)).body.status === "success");
    atCut = await waitFor("both instances active at v1", async () => {
      const r = await ops.get("/api/instances?application=Demo&server=HelloServer");
      return r.body.instances?.length === 2 && r.body.instances.every((i: any) => i.observedState === "active" && i.observedVersion === 1) ? r.body.instances : undefined;
    });
    await admin.put("/api/configs/file", { scope: { level: "application", application: "Demo" }, fileName: "app.conf", content: "a=1\n" });
    if (fs.existsSync(CHROMIUM)) {
      browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--headless", "--no-sandbox", "--disable-gpu"] });
      page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      page.on("pageerror", (err) => console.error("page error:", err.message));
    } else {
      console.warn(`skipping the browser steps: no Chromium at ${CHROMIUM} (set SGRID_TEST_CHROMIUM)`);
    }
  });

  afterEach(async function () {
    if (this.currentTest?.state === "failed" && page) await shot(`failed-${this.currentTest.title.slice(0, 40).replace(/[^a-z0-9]+/gi, "-")}`).catch(() => undefined);
  });

  after(async () => {
    await browser?.close();
    for (const a of agents) await a.close();
    await stack?.stop();
    await forwarder?.close();
    await db?.drop();
  });

  it("before the cut: lists come from the database, not flagged", async () => {
    for (const p of ["/api/nodes", "/api/servers", "/api/instances?application=Demo&server=HelloServer", "/api/dashboard"]) {
      const r = await ops.get(p);
      expect(r.status, p).to.equal(200);
      expect(r.body.degraded, p).to.equal(undefined);
    }
    if (!page) return;
    await page.goto(`${stack.url}/apps/Demo/HelloServer`);
    await page.waitForURL(/\/login/, WAIT);
    await page.fill("input[name=user]", OPS.name);
    await page.fill("input[name=password]", OPS.password);
    await page.click("button[type=submit]");
    await page.waitForURL(/\/apps\/Demo\/HelloServer$/, WAIT);
    await page.locator("table.instances tbody tr").nth(1).waitFor(WAIT);
    expect(await page.locator(".degraded").count()).to.equal(0);
    expect(await page.getByRole("button", { name: "Stop", exact: true }).isDisabled()).to.equal(true); // nothing selected yet
    await page.check(`input[aria-label='select instance ${ids[0]}']`);
    expect(await page.getByRole("button", { name: "Stop", exact: true }).isEnabled()).to.equal(true);
    await shot("01-before-cut");
  });

  it("cut: a logged-in operator still lists nodes, servers and instances from memory, flagged degraded", async () => {
    const cutAt = Date.now();
    forwarder.cut();
    await waitFor("the registry to notice the outage", () => !stack.registry.changes.healthy);
    const nodes = await ops.get("/api/nodes");
    expect(nodes.status, JSON.stringify(nodes.body)).to.equal(200);
    expect(nodes.body.degraded.asOf).to.be.greaterThan(0).and.at.most(cutAt);
    expect(nodes.body.degraded.reason).to.match(/database .* is unavailable/);
    expect(nodes.body.degraded.reason).to.contain(`127.0.0.1:${forwarder.port}`);
    // Both agents hold sessions on this registry: online now, whatever the remembered rows say.
    expect(nodes.body.nodes.map((n: any) => [n.name, n.online, n.instanceCount])).to.deep.equal([["node-a", true, 1], ["node-b", true, 1]]);
    const insts = await ops.get("/api/instances?application=Demo&server=HelloServer");
    expect(insts.status).to.equal(200);
    expect(insts.body.degraded.asOf).to.be.greaterThan(0);
    // The same instances as before the cut, with their versions (patch versions remembered too).
    const view = (list: any[]) => list.map((i) => [i.id, i.node, i.desiredState, i.observedState, i.desiredVersion, i.observedVersion, i.type]).sort();
    expect(view(insts.body.instances)).to.deep.equal(view(atCut));
    const one = await ops.get("/api/instances?node=node-b");
    expect(one.body.instances.map((i: any) => i.node)).to.deep.equal(["node-b"]);
    const servers = await ops.get("/api/servers");
    expect(servers.status).to.equal(200);
    expect(servers.body.degraded).to.not.equal(undefined);
    expect(servers.body.servers.map((s: any) => [s.application, s.name, s.defaultVersion, s.instanceCount])).to.deep.equal([["Demo", "HelloServer", 1, 2]]);
    const dash = await ops.get("/api/dashboard");
    expect(dash.status).to.equal(200);
    expect(dash.body.degraded).to.not.equal(undefined);
    expect(dash.body.servers[0].states).to.deep.equal({ active: 2 });
    // Reads that are not kept in memory answer 503 with the reason.
    const events = await ops.get("/api/events?targetPrefix=Demo.");
    expect(events.status).to.equal(503);
    expect(events.body.error.code).to.equal("DATABASE_UNAVAILABLE");
    expect(events.body.error.message).to.contain("unavailable");
  });

  it("cut: every write answers 503 DATABASE_UNAVAILABLE with the reason, and changes nothing", async () => {
    const id = ids[0]!;
    const writes: Array<[string, string, unknown?]> = [
      ["POST", "/api/servers", { application: "Demo", server: "Other", type: "node", nodes: ["node-a"], adapters: [{ obj: "OtherObj" }] }],
      ["DELETE", "/api/servers/Demo/HelloServer"],
      ["PATCH", `/api/instances/${id}`, { env: { CHANGED: "1" } }],
      ["POST", `/api/instances/${id}/command`, { command: "sgrid.viewstatus" }],
      ["POST", "/api/tasks", { kind: "stop", instanceIds: [id] }],
      ["POST", "/api/tasks/1/rollback", {}],
      ["PUT", "/api/patches/Demo/HelloServer/1/default"],
      ["DELETE", "/api/patches/Demo/HelloServer/1"],
      ["PUT", "/api/configs/file", { scope: { level: "application", application: "Demo" }, fileName: "app.conf", content: "a=2\n" }],
      ["POST", "/api/configs/rollback", { scope: { level: "application", application: "Demo" }, fileName: "app.conf", version: 1 }],
      ["DELETE", "/api/configs/file?level=application&application=Demo&fileName=app.conf"],
      ["POST", "/api/configs/push", { fileName: "app.conf", instanceIds: [id] }],
      ["DELETE", "/api/nodes/node-a"],
      ["POST", "/api/users", { name: "newbie", password: "newbie-password-1", roles: [] }],
      ["PUT", `/api/users/${OPS.name}/password`, { password: "another-password-1" }],
      ["POST", `/api/users/${OPS.name}/grants`, { application: "Other", role: "viewer" }],
      ["DELETE", `/api/users/${OPS.name}/grants/Demo`],
      ["DELETE", `/api/users/${OPS.name}`],
      ["POST", "/api/try/call", { obj: "Demo.HelloServer.HelloObj", method: "demo.Hello/Say", request: {} }],
    ];
    for (const [method, p, body] of writes) {
      const r = await admin.request(method, p, body === undefined ? {} : { body });
      expect([r.status, r.body?.error?.code], `${method} ${p}: ${JSON.stringify(r.body)}`).to.deep.equal([503, "DATABASE_UNAVAILABLE"]);
      expect(r.body.error.message, `${method} ${p}`).to.match(/database .* is unavailable/);
    }
    const upload = await admin.request("POST", "/api/patches/Demo/HelloServer", { raw: await makePackage(shots, "during-cut") });
    expect([upload.status, upload.body?.error?.code]).to.deep.equal([503, "DATABASE_UNAVAILABLE"]);
    // The operator's own write: the same answer.
    const stop = await ops.post("/api/tasks", { kind: "stop", instanceIds: [id] });
    expect([stop.status, stop.body.error.code]).to.deep.equal([503, "DATABASE_UNAVAILABLE"]);
  });

  it("cut: a new login answers 503 with the reason, an unknown token is refused, and the refusals end no session", async () => {
    const fresh = new Client(stack.url);
    const r = await fresh.login(OPS.name, OPS.password);
    expect([r.status, r.body.error.code]).to.deep.equal([503, "DATABASE_UNAVAILABLE"]);
    expect(r.body.error.message).to.match(/cannot log in now: database .* is unavailable/);
    expect((await fresh.get("/api/nodes")).status).to.equal(401);
    // A browser with a made-up session cookie: 401 from the admin app.
    const forged = new Client(stack.url);
    forged.cookie = "sgrid_admin_sid=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    expect((await forged.get("/api/nodes")).status).to.equal(401);
    // Straight to the registry with a token it never verified: refused, no data (it cannot be checked now).
    const comm = new Communicator();
    try {
      const proxy = comm.stringToProxy(AdminProxy, stack.registryTarget, { timeoutMs: 20_000 });
      const err = await rejects(proxy.listNodes({}, { metadata: { authorization: "Bearer not-a-token-this-registry-ever-saw" } }));
      expect(err.code).to.equal("DATABASE_UNAVAILABLE");
      expect(err.message).to.contain("cannot check the login token");
      const none = await rejects(proxy.listNodes({}, {}));
      expect(none.code).to.equal("UNAUTHENTICATED");
    } finally {
      comm.close();
    }
    // The logged-in operator is still logged in.
    expect((await ops.get("/api/nodes")).status).to.equal(200);
  });

  it("cut, in Chromium: the banner says the page shows the registry's memory, and every write control is disabled", async function () {
    if (!page) this.skip();
    const p = page!;
    await p.locator(".degraded", { hasText: "database unavailable: showing the registry's memory as of" }).waitFor(WAIT);
    expect(await p.textContent(".degraded")).to.contain("changes are disabled");
    expect(await p.textContent(".degraded-reason")).to.match(/database .* is unavailable/);
    // Still the instances, from memory.
    expect(await p.locator("table.instances tbody tr").count()).to.equal(2);
    for (const label of ["Start", "Stop", "Restart", "Undeploy"]) expect(await p.getByRole("button", { name: label, exact: true }).isDisabled(), label).to.equal(true);
    expect(await p.locator(`input[aria-label='select instance ${ids[1]}']`).isDisabled()).to.equal(true);
    await shot("02-cut-server-page");
    await p.click("nav.tabs a[href$='tab=patches']");
    // The patch list is not kept in memory: the 503 reason, not a generic error.
    await p.locator(".error[data-code=DATABASE_UNAVAILABLE]").waitFor(WAIT);
    expect(await p.textContent(".error[data-code=DATABASE_UNAVAILABLE]")).to.match(/database .* is unavailable/);
    expect(await p.locator("form[aria-label='upload package'] button[type=submit]").isDisabled()).to.equal(true);
    await shot("03-cut-patches-503");
    await p.click("a[href='/nodes']");
    await p.locator(".card.node[data-node=node-a]").waitFor(WAIT);
    expect(await p.textContent(".card.node[data-node=node-a] h3")).to.contain("online");
    await p.locator(".degraded").waitFor(WAIT);
    await shot("04-cut-nodes");
    await p.goto(`${stack.url}/apps/Demo/HelloServer/instances/${ids[0]}`);
    await p.locator(".degraded").waitFor(WAIT);
    await p.locator("dl.facts").waitFor(WAIT);
    expect(await p.locator("form[aria-label='admin command'] button[type=submit]").isDisabled()).to.equal(true);
    // Its events are not kept in memory: the reason, not "nothing recorded".
    await p.locator("[aria-label='instance events'] .error[data-code=DATABASE_UNAVAILABLE]").waitFor(WAIT);
    expect(await p.locator("[aria-label='instance events']").textContent()).to.not.contain("No crash");
    await shot("05-cut-instance");
  });

  it("restored: writes succeed again, nothing refused changed anything, and the banner goes, without restarting anything", async () => {
    forwarder.restore();
    await waitFor("the registry to see the database again", () => stack.registry.changes.healthy);
    const nodes = await waitFor("lists from the database again", async () => {
      const r = await ops.get("/api/nodes");
      return r.status === 200 && r.body.degraded === undefined ? r : undefined;
    });
    expect(nodes.body.nodes).to.have.length(2);
    const insts = await ops.get("/api/instances?application=Demo&server=HelloServer");
    expect(insts.body.degraded).to.equal(undefined);
    expect(insts.body.instances.map((i: any) => i.env.CHANGED)).to.deep.equal([undefined, undefined]);
    expect((await admin.get("/api/users")).body.users.map((u: any) => u.name).sort()).to.deep.equal(["admin", "ops"]);
    expect((await admin.get("/api/patches/Demo/HelloServer")).body.patches).to.have.length(1);
    const stop = await ops.post("/api/tasks", { kind: "stop", instanceIds: [ids[0]] });
    expect(stop.status, JSON.stringify(stop.body)).to.equal(201);
    await waitFor("instance stopped", async () => (await ops.get("/api/instances?application=Demo&server=HelloServer")).body.instances.find((i: any) => i.id === ids[0])?.observedState === "inactive");
    const again = new Client(stack.url);
    expect((await again.login(OPS.name, OPS.password)).status).to.equal(200);
    if (!page) return;
    await page.goto(`${stack.url}/apps/Demo/HelloServer`);
    await page.locator("table.instances tbody tr").nth(1).waitFor(WAIT);
    await page.locator(".degraded").waitFor({ state: "detached", ...WAIT });
    await page.check(`input[aria-label='select instance ${ids[1]}']`);
    expect(await page.getByRole("button", { name: "Restart", exact: true }).isEnabled()).to.equal(true);
    await shot("06-restored");
  });
});
