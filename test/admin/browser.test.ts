/**
 * The admin UI in a real browser: the system Chromium (SGRID_TEST_CHROMIUM or
 * /usr/bin/chromium) driven by playwright-core, which never downloads one.
 * Against a real registry on SQLite and two fake agents holding real node
 * sessions. Each step saves a screenshot under test-output/ (kept when a
 * test fails, or with SGRID_TEST_KEEP_OUTPUT=1: test/helpers/output.ts).
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { LimitEvents } from "../../nodeagent/agent/limit-events";
import { outputDir } from "../helpers/paths";
import { ADMIN_PASSWORD, Client, FakeAgent, makePackage, startStack, waitFor, type Stack } from "./helpers";

const CHROMIUM = process.env.SGRID_TEST_CHROMIUM || "/usr/bin/chromium";
const OPS = { name: "ops", password: "ops-password-1" };
const VIEWER = { name: "viewer", password: "viewer-password-1" };
const OTHER = { name: "other", password: "other-password-1" };
const WAIT = { timeout: 30_000 };

describe("admin UI in Chromium @slow", function () {
  this.timeout(180_000);
  let stack: Stack;
  let browser: Browser;
  let page: Page;
  let shots: string;
  let pkgDir: string;
  const agents: FakeAgent[] = [];
  let firstPublishTask = "";

  async function shot(name: string): Promise<void> {
    await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  }

  async function login(p: Page, user: string, password: string, start = "/"): Promise<void> {
    await p.goto(stack.url + start);
    await p.waitForURL(/\/login/, WAIT);
    await p.fill("input[name=user]", user);
    await p.fill("input[name=password]", password);
    await p.click("button[type=submit]");
    await p.locator(".who", { hasText: user }).waitFor(WAIT);
  }

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) {
      // CI installs it (.ci/run); a developer machine without it skips, saying why.
      console.warn(`skipping browser tests: no Chromium at ${CHROMIUM} (set SGRID_TEST_CHROMIUM)`);
      this.skip();
    }
    shots = outputDir("admin-browser");
    stack = await startStack({ loginAttemptsPerMinute: 1000 });
    pkgDir = fs.mkdtempSync(path.join(shots, "pkgs-"));
    const admin = new Client(stack.url);
    expect((await admin.login("admin", ADMIN_PASSWORD)).status).to.equal(200);
    await admin.post("/api/users", { name: OPS.name, password: OPS.password, roles: [{ application: "Demo", role: "operator" }] });
    await admin.post("/api/users", { name: VIEWER.name, password: VIEWER.password, roles: [{ application: "Demo", role: "viewer" }] });
    await admin.post("/api/users", { name: OTHER.name, password: OTHER.password, roles: [{ application: "Other", role: "operator" }] });
    agents.push(new FakeAgent(stack.registryTarget, "node-a"), new FakeAgent(stack.registryTarget, "node-b"));
    await waitFor("nodes online", async () => (await admin.get("/api/nodes")).body.nodes?.filter((n: any) => n.online).length === 2);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--headless", "--no-sandbox", "--disable-gpu"] });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on("pageerror", (err) => console.error("page error:", err.message));
  });

  afterEach(async function () {
    // A failing step leaves its screenshot too.
    if (this.currentTest?.state === "failed" && page) await shot(`failed-${this.currentTest.title.slice(0, 40).replace(/[^a-z0-9]+/gi, "-")}`).catch(() => undefined);
  });

  after(async () => {
    await browser?.close();
    for (const a of agents) await a.close();
    await stack?.stop();
  });

  it("logs in (a page without a session goes to the login page first)", async () => {
    await page.goto(`${stack.url}/nodes`);
    await page.waitForURL(/\/login\?next=%2Fnodes/, WAIT);
    await page.fill("input[name=user]", OPS.name);
    await page.fill("input[name=password]", "wrong-password");
    await page.click("button[type=submit]");
    await page.locator(".error", { hasText: "wrong user name or password" }).waitFor(WAIT);
    await shot("01-login-refused");
    await page.fill("input[name=password]", OPS.password);
    await page.click("button[type=submit]");
    await page.waitForURL(/\/nodes$/, WAIT);
    await page.locator(".who", { hasText: "ops" }).waitFor(WAIT);
    // The session cookie is HttpOnly: the page's script cannot read it.
    expect(await page.evaluate(() => (globalThis as any).document.cookie)).to.equal("");
    await shot("02-logged-in");
  });

  it("deploys a server to two nodes, showing a bad field next to it first", async () => {
    await page.click("a[href='/deploy']");
    await page.fill("input[name=application]", "Demo");
    await page.fill("input[name=server]", "HelloServer");
    await page.fill("input[name=obj-0]", "HelloObj");
    await page.click("button[type=submit]");
    await page.locator(".field-error[data-field=nodes]").waitFor(WAIT);
    expect(await page.textContent(".field-error[data-field=nodes]")).to.contain("choose at least one node");
    await shot("03-deploy-missing-nodes");
    await page.check("input[name=node-node-a]");
    await page.check("input[name=node-node-b]");
    // An empty Obj is refused next to its row (an instance without one is one nobody can call).
    await page.fill("input[name=obj-0]", "");
    await page.click("button[type=submit]");
    await page.locator(".field-error[data-field='adapters.0']").waitFor(WAIT);
    expect(await page.textContent(".field-error[data-field='adapters.0']")).to.contain("Obj name is required");
    await shot("03b-deploy-empty-obj");
    await page.fill("input[name=obj-0]", "HelloObj");
    await page.fill("textarea[name=env]", "GREETING=hello");
    await page.fill("input[name=memoryMiB]", "256");
    // Launch options: one argument per line, never split on spaces (no shell).
    await page.fill("textarea[name=launchArgs]", "--greeting\nhello world");
    await page.fill("textarea[name=runtimeOptions]", "--max-old-space-size=128");
    await page.click("button[type=submit]");
    await page.waitForURL(/\/apps\/Demo\/HelloServer$/, WAIT);
    await page.locator("table.instances tbody tr").nth(1).waitFor(WAIT);
    // The sidebar shows the new server without a reload (it listened for the change, not its 10 s poll).
    await page.locator("nav.tree a[href='/apps/Demo/HelloServer']").waitFor({ timeout: 5000 });
    const nodes = await page.locator("table.instances tbody tr").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-node")));
    expect(nodes.sort()).to.deep.equal(["node-a", "node-b"]);
    await shot("04-deployed");
    const api = new Client(stack.url);
    expect((await api.login("admin", ADMIN_PASSWORD)).status).to.equal(200);
    const placed = (await api.get("/api/instances?application=Demo&server=HelloServer")).body.instances as any[];
    expect(placed).to.have.length(2);
    for (const inst of placed) {
      expect(inst.launch.args).to.deep.equal(["--greeting", "hello world"]);
      expect(inst.launch.nodeOptions).to.deep.equal(["--max-old-space-size=128"]);
      expect(inst.launch.jvmOptions).to.deep.equal([]);
    }
    await page.click(`a[href='/apps/Demo/HelloServer/instances/${placed[0].id}']`);
    await page.locator("dl.facts").waitFor(WAIT);
    await waitFor("the launch options on the instance page", async () => (await page.textContent("dl.facts"))?.includes('args "--greeting" "hello world"') ?? false);
    expect(await page.textContent("dl.facts")).to.contain('node "--max-old-space-size=128"');
    await page.click("h1 a[href='/apps/Demo/HelloServer']");
    await page.locator("table.instances tbody tr").nth(1).waitFor(WAIT);
  });

  async function upload(tag: string, comment: string): Promise<void> {
    const file = path.join(pkgDir, `${tag}.tgz`);
    fs.writeFileSync(file, await makePackage(pkgDir, tag));
    await page.goto(`${stack.url}/apps/Demo/HelloServer?tab=patches`);
    await page.setInputFiles("input[name=file]", file);
    await page.fill("form[aria-label='upload package'] input[name=comment]", comment);
    await page.click("form[aria-label='upload package'] button[type=submit]");
    await page.locator("[role=status]", { hasText: "uploaded version" }).waitFor(WAIT);
  }

  it("uploads a package (a non-tgz is refused next to the file field)", async () => {
    await page.click("a[href='/apps/Demo/HelloServer?tab=patches']");
    const bad = path.join(pkgDir, "notes.txt");
    fs.writeFileSync(bad, "not a package");
    await page.setInputFiles("input[name=file]", bad);
    await page.click("form[aria-label='upload package'] button[type=submit]");
    await page.locator(".field-error[data-field=file]").waitFor(WAIT);
    expect(await page.textContent(".field-error[data-field=file]")).to.contain("not a .tgz");
    await shot("05-upload-refused");
    await upload("v1", "first release");
    await page.locator("table.patches tr[data-version='1']").waitFor(WAIT);
    const row = await page.textContent("table.patches tr[data-version='1']");
    expect(row).to.contain("ops").and.contain("first release");
    await shot("06-uploaded");
  });

  it("publishes it and the task view reaches SUCCESS live, without a reload", async () => {
    await page.click("a[href='/apps/Demo/HelloServer?tab=publish']");
    await page.locator("form[aria-label=publish] select[name=version] option").first().waitFor({ state: "attached", ...WAIT });
    await page.selectOption("select[name=version]", "1");
    await page.fill("input[name=batchSize]", "1");
    await page.fill("form[aria-label=publish] input[name=comment]", "first rollout");
    await page.click("form[aria-label=publish] button[type=submit]");
    await page.waitForURL(/\/tasks\/\d+$/, WAIT);
    firstPublishTask = page.url();
    // Marks the document: a reload would lose the mark.
    await page.evaluate(() => ((globalThis as any).__noReload = true));
    await page.locator(".task-status[data-status=success]").waitFor(WAIT);
    expect(await page.evaluate(() => (globalThis as any).__noReload)).to.equal(true);
    expect(await page.locator("table.task-items tr[data-item-status=SUCCESS]").count()).to.equal(2);
    expect(await page.textContent(".task-comment")).to.equal("first rollout");
    // A first publish has nothing to roll back to: no button that would answer 409.
    await page.locator("[data-no-rollback]").waitFor(WAIT);
    expect(await page.locator("button:has-text('Roll back')").count()).to.equal(0);
    await shot("07-published");
    await page.goto(`${stack.url}/apps/Demo/HelloServer`);
    await waitFor("both instances on v1", async () => {
      const versions = await page.locator("table.instances td.version").allTextContents();
      return versions.length === 2 && versions.every((v) => v === "v1");
    });
  });

  it("rolls back with one click to the previous version", async () => {
    await upload("v2", "second release");
    await page.click("a[href='/apps/Demo/HelloServer?tab=publish']");
    await page.locator("select[name=version] option[value='2']").waitFor({ state: "attached", ...WAIT });
    await page.selectOption("select[name=version]", "2");
    await page.click("form[aria-label=publish] button[type=submit]");
    await page.waitForURL(/\/tasks\/\d+$/, WAIT);
    expect(page.url()).not.to.equal(firstPublishTask);
    await page.locator(".task-status[data-status=success]").waitFor(WAIT);
    const v2Task = page.url();
    await page.click("button:has-text('Roll back')");
    await page.waitForURL((u) => /\/tasks\/\d+$/.test(u.pathname) && u.href !== v2Task, WAIT);
    await page.locator(".task-status[data-status=success]").waitFor(WAIT);
    expect(await page.textContent(".task-kind")).to.contain(`rollback of task ${v2Task.split("/").pop()}`);
    await shot("08-rolled-back");
    await page.goto(`${stack.url}/apps/Demo/HelloServer`);
    await waitFor("both instances back on v1", async () => {
      const versions = await page.locator("table.instances td.version").allTextContents();
      return versions.length === 2 && versions.every((v) => v === "v1");
    });
    await shot("09-instances-v1");
  });

  it("edits and pushes a config, and shows its history and a diff", async () => {
    await page.click("a[href='/apps/Demo/HelloServer?tab=config']");
    await page.locator("select[name=level]").waitFor(WAIT);
    await page.fill("input[name=fileName]", "app.json");
    await page.fill("textarea[name=content]", '{\n  "greeting": "hello",\n  "workers": 2\n}');
    await page.fill("form[aria-label='config editor'] input[name=comment]", "first");
    await page.click("form[aria-label='config editor'] button[type=submit]");
    await page.locator("[role=status]", { hasText: "saved app.json v1" }).waitFor(WAIT);
    await page.locator("table.history tbody tr").first().waitFor(WAIT);
    await page.fill("textarea[name=content]", '{\n  "greeting": "hi",\n  "workers": 2\n}');
    await page.fill("form[aria-label='config editor'] input[name=comment]", "shorter greeting");
    await page.click("form[aria-label='config editor'] button[type=submit]");
    await page.locator("[role=status]", { hasText: "saved app.json v2" }).waitFor(WAIT);
    await waitFor("two versions in history", async () => (await page.locator("table.history tbody tr").count()) === 2);
    expect(await page.textContent("table.history")).to.contain("shorter greeting");
    // The history may still be refreshing after the save (which resets the selection): pick and show again until the diff is there.
    await waitFor("the diff of v1 and v2", async () => {
      await page.selectOption("select[name=diffFrom]", "1");
      await page.selectOption("select[name=diffTo]", "2");
      await page.click("button:has-text('Show diff')");
      return (await page.locator(".diff .diff-del").count()) > 0 && (await page.locator(".diff .diff-add").count()) > 0;
    });
    expect(await page.locator(".diff .diff-del").allTextContents()).to.have.length(1);
    expect(await page.textContent(".diff .diff-del")).to.contain('"greeting": "hello"');
    expect(await page.textContent(".diff .diff-add")).to.contain('"greeting": "hi"');
    // A new version arriving (saved while the diff is open) keeps the diff being read on screen.
    await page.fill("textarea[name=content]", '{\n  "greeting": "hi",\n  "workers": 3\n}');
    await page.fill("form[aria-label='config editor'] input[name=comment]", "three workers");
    await page.click("form[aria-label='config editor'] button[type=submit]");
    await page.locator("[role=status]", { hasText: "saved app.json v3" }).waitFor(WAIT);
    await waitFor("three versions in history", async () => (await page.locator("table.history tbody tr").count()) === 3);
    // The panel reacts to the new history after it renders it: give it time to (wrongly) clear the diff.
    await page.waitForTimeout(300);
    expect(await page.locator(".diff .diff-head").count(), "the diff is still shown").to.equal(1);
    expect(await page.textContent(".diff .diff-head")).to.contain("v1 → v2");
    expect(await page.textContent(".diff .diff-add")).to.contain('"greeting": "hi"');
    await page.click("button:has-text('Merged view')");
    await page.locator(".merged pre").waitFor(WAIT);
    expect(await page.textContent(".merged pre")).to.contain('"greeting": "hi"');
    await page.click("button:has-text('Push app.json')");
    await page.locator(".push-results li.ok").nth(1).waitFor(WAIT);
    await shot("10-config");
  });

  it("keeps what is typed in the config editor when the history it was waiting for lands after", async () => {
    await page.goto(`${stack.url}/apps/Demo/HelloServer?tab=config`);
    await page.locator("select[name=level]").waitFor(WAIT);
    await page.click("button:has-text('New file')");
    await page.fill("input[name=fileName]", "late.json");
    await page.fill("textarea[name=content]", '{ "v": 1 }');
    // Hold the history the save reloads until the next version is being typed.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const isHistory = (u: URL): boolean => u.pathname === "/api/configs/history";
    await page.route(isHistory, async (route) => {
      await held;
      await route.continue();
    });
    try {
      await page.click("form[aria-label='config editor'] button[type=submit]");
      await page.locator("[role=status]", { hasText: "saved late.json v1" }).waitFor(WAIT);
      await page.fill("textarea[name=content]", '{ "v": 2 }');
      release();
      await page.locator("table.history tbody tr").first().waitFor(WAIT);
      // Effects run after paint: let the panel react to the history it just rendered.
      await page.evaluate("new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 100)))");
    } finally {
      release();
      await page.unroute(isHistory);
    }
    expect(await page.inputValue("textarea[name=content]")).to.equal('{ "v": 2 }');
    await page.click("form[aria-label='config editor'] button[type=submit]");
    await page.locator("[role=status]", { hasText: "saved late.json v2" }).waitFor(WAIT);
    await waitFor("two versions of late.json", async () => (await page.locator("table.history tbody tr").count()) === 2);
    const res = await page.request.get(`${stack.url}/api/configs/history?level=server&application=Demo&server=HelloServer&fileName=late.json`);
    expect(res.status()).to.equal(200);
    expect((await res.json()).versions.map((v: any) => v.content)).to.deep.equal(['{ "v": 2 }', '{ "v": 1 }']);
  });

  it("opens the node list with charts and each node's instances", async () => {
    await page.click("a[href='/nodes']");
    await page.locator(".card.node[data-node=node-a]").waitFor(WAIT);
    expect(await page.locator(".card.node").count()).to.equal(2);
    expect(await page.textContent(".card.node[data-node=node-a]")).to.contain("online").and.contain("HelloServer");
    await waitFor("charts drawn", async () => (await page.locator(".card.node[data-node=node-a] svg polyline").count()) >= 1);
    await shot("11-nodes");
  });

  it("shows an instance's stderr and stdout, searches, follows and downloads its log", async () => {
    await page.goto(`${stack.url}/apps/Demo/HelloServer`);
    await page.locator("table.instances tbody tr").nth(1).waitFor(WAIT);
    const id = await page.locator("table.instances tbody tr").first().getAttribute("data-instance");
    await page.click(`a[href='/apps/Demo/HelloServer/instances/${id}']`);
    await page.locator("form[aria-label=log]").waitFor(WAIT);
    // stderr first: where a framework servant's logger writes.
    await page.click("form[aria-label=log] button[type=submit]");
    await page.locator("pre[aria-label='log lines']", { hasText: `stderr line 1 of instance ${id}` }).waitFor(WAIT);
    await shot("13-log-stderr");
    await page.selectOption("form[aria-label=log] select[name=stream]", "stdout");
    await page.fill("form[aria-label=log] input[name=grep]", "warn");
    await page.click("form[aria-label=log] button[type=submit]");
    await page.locator("pre[aria-label='log lines']", { hasText: "stdout line 2" }).waitFor(WAIT);
    expect(await page.textContent("pre[aria-label='log lines']")).to.equal(`stdout line 2 of instance ${id} WARN slow call`);
    await shot("14-log-search");
    await page.fill("form[aria-label=log] input[name=grep]", "");
    await page.check("form[aria-label=log] input[name=follow]");
    await page.locator("pre[aria-label='log lines']", { hasText: "stdout line 3" }).waitFor(WAIT);
    const href = await page.getAttribute("form[aria-label=log] a[download]", "href");
    expect(href).to.equal(`/api/instances/${id}/log/download?stream=stdout`);
    const [download] = await Promise.all([page.waitForEvent("download", WAIT), page.click("form[aria-label=log] a[download]")]);
    expect(download.suggestedFilename()).to.equal(`instance-${id}.stdout.log`);
    const saved = path.join(shots, `instance-${id}.stdout.log`);
    await download.saveAs(saved);
    expect(fs.readFileSync(saved, "utf8")).to.contain(`stdout line 1 of instance ${id}`);
    await page.uncheck("form[aria-label=log] input[name=follow]");
    await shot("15-log-follow");
  });

  it("edits an instance's env, limits and arguments from its page, and lists its events", async () => {
    await page.goto(`${stack.url}/apps/Demo/HelloServer`);
    await page.locator("table.instances tbody tr").nth(1).waitFor(WAIT);
    const id = Number(await page.locator("table.instances tbody tr").first().getAttribute("data-instance"));
    const node = await page.locator("table.instances tbody tr").first().getAttribute("data-node");
    agents.find((a) => a.node === node)!.reportEvent(id, "oom", "oom killed");
    await page.click(`a[href='/apps/Demo/HelloServer/instances/${id}']`);
    await page.locator("[aria-label='instance events'] tr[data-kind='instance.oom']", { hasText: "memory limit (OOM)" }).waitFor(WAIT);
    await page.click("button:has-text('Edit instance')");
    await page.fill("form[aria-label='edit instance'] textarea[name=env]", "GREETING=bonjour\nBROKEN");
    await page.click("form[aria-label='edit instance'] button[type=submit]");
    await page.locator("form[aria-label='edit instance'] .field-error[data-field=env]", { hasText: "BROKEN" }).waitFor(WAIT);
    await shot("17-instance-edit-refused");
    await page.fill("form[aria-label='edit instance'] input[name=memoryMiB]", "128");
    await page.fill("form[aria-label='edit instance'] textarea[name=env]", "GREETING=bonjour\nMODE=calm");
    await page.click("form[aria-label='edit instance'] button[type=submit]");
    await page.locator("[role=status]", { hasText: "saved" }).waitFor(WAIT);
    const api = new Client(stack.url);
    expect((await api.login("admin", ADMIN_PASSWORD)).status).to.equal(200);
    const inst = ((await api.get("/api/instances?application=Demo&server=HelloServer")).body.instances as any[]).find((i) => i.id === id);
    expect(inst.env).to.deep.equal({ GREETING: "bonjour", MODE: "calm" });
    expect(inst.limits.memoryBytes).to.equal(128 * 1024 * 1024);
    expect(inst.launch.args).to.deep.equal(["--greeting", "hello world"]);
    await shot("18-instance-edited");
  });

  it("shows the service monitor: calls, errors by code and latency per method, charts with axes, CSV export", async () => {
    await page.goto(`${stack.url}/apps/Demo/HelloServer`);
    await page.locator("table.instances tbody tr").nth(1).waitFor(WAIT);
    const rows = page.locator("table.instances tbody tr");
    // Reports as agents pass them on from their servants (the real chain is test/registry/call-stats.test.ts).
    for (let i = 0; i < 2; i++) {
      const id = Number(await rows.nth(i).getAttribute("data-instance"));
      const node = await rows.nth(i).getAttribute("data-node");
      agents.find((a) => a.node === node)!.sendStats(id, { at: Date.now(), stats: [
        { side: "server", scope: "Demo.HelloServer.HelloObj", method: "/demo.Hello/SayHello", calls: 20, errors: 2, errorsByCodeJson: JSON.stringify({ UNAVAILABLE: 2 }), buckets: [0, 5, 10, 3, 2], totalMs: 60 },
        { side: "server", scope: "Demo.HelloServer.HelloObj", method: "/demo.Hello/Ping", calls: 50, errors: 0, errorsByCodeJson: "{}", buckets: [50], totalMs: 10 },
      ] });
    }
    await page.click("a[href='/apps/Demo/HelloServer?tab=monitor']");
    const say = page.locator("table.monitor-table tr[data-method='/demo.Hello/SayHello']");
    await waitFor("both instances' reports summed", async () => (await say.count()) === 1 && (await say.locator("td.calls").textContent()) === "40");
    expect(await say.locator("td.errors").textContent()).to.equal("4");
    expect(await say.textContent()).to.contain("10.0 %").and.contain("UNAVAILABLE 4").and.contain("10 ms");
    // Problems first: the method with errors is the first row.
    expect(await page.locator("table.monitor-table tbody tr").first().getAttribute("data-method")).to.equal("/demo.Hello/SayHello");
    const axis = await page.locator("[aria-label='method charts'] svg text.chart-axis").allTextContents();
    expect(axis.some((t) => /\/min$/.test(t))).to.equal(true);
    expect(axis.some((t) => /^\d\d:\d\d$/.test(t))).to.equal(true);
    await shot("21-monitor");
    const [download] = await Promise.all([page.waitForEvent("download", WAIT), page.click("a:has-text('Export CSV')")]);
    const saved = path.join(shots, "monitor.csv");
    await download.saveAs(saved);
    const csv = fs.readFileSync(saved, "utf8").trim().split("\n");
    expect(csv[0]).to.equal("time,side,scope,method,calls,errors,errors_by_code,avg_ms,p50_ms,p99_ms");
    expect(csv.filter((l) => l.includes("SayHello")).reduce((n, l) => n + Number(l.split(",")[4]), 0)).to.equal(40);
    await page.click("a[href='/nodes']");
    await page.locator(".card.node[data-node=node-a] svg text.chart-axis").first().waitFor(WAIT);
    const nodeAxis = await page.locator(".card.node[data-node=node-a] svg text.chart-axis").allTextContents();
    expect(nodeAxis.some((t) => /GiB$/.test(t)), "memory axis in bytes").to.equal(true);
    expect(nodeAxis.some((t) => /cores$/.test(t)), "CPU axis in cores").to.equal(true);
    await shot("22-nodes-axes");
  });

  it("the servers list shows health at a glance (states, versions, calls, errors), ISO dates, and the events time on one line", async () => {
    await page.goto(`${stack.url}/`);
    await page.locator("table.grid td.time").first().waitFor(WAIT);
    const row = page.locator("table.health tr[data-server='Demo.HelloServer']");
    expect(await row.locator("td.states").textContent()).to.match(/active\s*2/);
    expect(await row.textContent()).to.contain("v1");
    // The monitor test's reports (40 + 100 calls, 4 errors) are within the last 5 minutes.
    expect(await row.textContent()).to.contain("2.9 %").and.contain("28");
    expect(await row.locator("td.problem").textContent()).to.equal("2.9 % errors");
    expect(await page.locator("table.grid td.time").first().textContent()).to.match(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    await shot("19-servers");
    await page.goto(`${stack.url}/events`);
    await page.locator("table.events tbody tr").first().waitFor(WAIT);
    // One line each: the time's text lays out in one line box (the row may be taller when the message wraps).
    const wrapped = await page.locator("table.events tbody tr td:first-child").evaluateAll((tds) => tds.slice(0, 5).map((td) => {
      const range = (globalThis as any).document.createRange();
      range.selectNodeContents(td);
      return range.getClientRects().length > 1;
    }));
    expect(wrapped).to.deep.equal(wrapped.map(() => false));
    await shot("20-events");
  });

  it("an operator of another application is refused Demo's config and instances", async () => {
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const op = await ctx.newPage();
    try {
      await login(op, OTHER.name, OTHER.password, "/apps/Demo/HelloServer?tab=config");
      await op.locator("[role=alert]").first().waitFor(WAIT);
      expect(await op.locator("[role=alert]").first().textContent()).to.match(/needs role viewer on application "Demo"/);
      await op.screenshot({ path: path.join(shots, "16-other-operator-config-refused.png"), fullPage: true });
      const statuses = await op.evaluate(async () => {
        const urls = [
          "/api/configs/file?level=application&application=Demo&fileName=app.json",
          "/api/configs/merged?application=Demo&server=HelloServer&node=node-a&fileName=app.json",
          "/api/instances?application=Demo&server=HelloServer",
        ];
        return Promise.all(urls.map(async (u) => (await fetch(u)).status));
      });
      expect(statuses).to.deep.equal([403, 403, 403]);
    } finally {
      await ctx.close();
    }
  });

  it("shows the package's own version beside vN in the patch list, and badges pids-limit and CPU-throttling events on the instance page", async () => {
    const ops = new Client(stack.url);
    expect((await ops.login(OPS.name, OPS.password)).status).to.equal(200);
    const up = await ops.request("POST", "/api/patches/Demo/HelloServer?comment=with+its+own+version", { raw: await makePackage(pkgDir, "v3", "Demo", "HelloServer", "2.5.0-rc.1") });
    expect(up.status, JSON.stringify(up.body)).to.equal(201);
    const v3 = up.body.version as number;
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const op = await ctx.newPage();
    try {
      await login(op, OPS.name, OPS.password, "/apps/Demo/HelloServer?tab=patches");
      await op.locator(`table.patches tr[data-version='${v3}']`).waitFor(WAIT);
      expect((await op.textContent(`table.patches tr[data-version='${v3}'] td.package-version`))?.trim()).to.equal("2.5.0-rc.1");
      // A package without a version of its own: a dash, not an empty cell.
      expect((await op.textContent("table.patches tr[data-version='1'] td.package-version"))?.trim()).to.equal("—");
      expect(await op.textContent("table.patches thead")).to.contain("Package version");
      await op.screenshot({ path: path.join(shots, "23-patches-package-version.png"), fullPage: true });

      // The events as the agent makes them from its group's counters (nodeagent/agent/limit-events.ts), sent up a real node session.
      const inst = ((await ops.get("/api/instances?application=Demo&server=HelloServer")).body.instances as any[])[0];
      const limits = new LimitEvents();
      const usage = { memoryBytes: 0, cpuUsageNanos: 0, pids: 3, pidsLimitHits: 0, cpuThrottledPeriods: 0 };
      limits.observe(String(inst.id), usage, true);
      const events = limits.observe(String(inst.id), { ...usage, pids: 16, pidsLimitHits: 7, cpuThrottledPeriods: 42 });
      expect(events.map((e) => e.event)).to.deep.equal(["pids_limit", "cpu_throttled"]);
      const agent = agents.find((a) => a.node === inst.node)!;
      for (const e of events) agent.reportEvent(inst.id, e.event, "", e.detail);
      await op.goto(`${stack.url}/apps/Demo/HelloServer/instances/${inst.id}`);
      const pids = op.locator("[aria-label='instance events'] tr[data-kind='instance.pids_limit']");
      const cpu = op.locator("[aria-label='instance events'] tr[data-kind='instance.cpu_throttled']");
      await pids.waitFor(WAIT);
      await cpu.waitFor(WAIT);
      expect(await pids.locator(".badge").textContent()).to.equal("pids limit");
      expect(await pids.textContent()).to.contain("the pids limit refused 7 forks");
      expect(await cpu.locator(".badge").textContent()).to.equal("CPU quota (throttled)");
      expect(await cpu.textContent()).to.contain("throttled it in 42 periods of 100 ms");
      await op.locator("[aria-label='instance events']").scrollIntoViewIfNeeded();
      await op.screenshot({ path: path.join(shots, "24-instance-limit-events.png"), fullPage: true });
    } finally {
      await ctx.close();
    }
  });

  it("a viewer sees the server but cannot publish: no buttons, and the API says 403", async () => {
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const vp = await ctx.newPage();
    try {
      await login(vp, VIEWER.name, VIEWER.password, "/apps/Demo/HelloServer");
      await vp.waitForURL(/\/apps\/Demo\/HelloServer$/, WAIT);
      await vp.locator("table.instances tbody tr").nth(1).waitFor(WAIT);
      expect(await vp.locator("button:has-text('Start')").count()).to.equal(0);
      expect(await vp.locator("button:has-text('Restart')").count()).to.equal(0);
      await vp.click("a[href='/apps/Demo/HelloServer?tab=publish']");
      await vp.locator("[data-readonly=publish]").waitFor(WAIT);
      expect(await vp.locator("form[aria-label=publish]").count()).to.equal(0);
      expect(await vp.locator("button:has-text('Publish')").count()).to.equal(0);
      await vp.click("a[href='/apps/Demo/HelloServer?tab=patches']");
      await vp.locator("table.patches tr[data-version='1']").waitFor(WAIT);
      expect(await vp.locator("form[aria-label='upload package']").count()).to.equal(0);
      await vp.screenshot({ path: path.join(shots, "12-viewer.png"), fullPage: true });
      // Straight to the API from the viewer's page, with its own valid CSRF token: the registry refuses.
      const status = await vp.evaluate(async () => {
        const s: any = await (await fetch("/api/session")).json();
        const inst: any = await (await fetch("/api/instances?application=Demo&server=HelloServer")).json();
        const r = await fetch("/api/tasks", {
          method: "POST",
          headers: { "content-type": "application/json", "x-csrf-token": s.csrfToken },
          body: JSON.stringify({ kind: "publish", version: 1, instanceIds: inst.instances.map((i: any) => i.id) }),
        });
        return r.status;
      });
      expect(status).to.equal(403);
    } finally {
      await ctx.close();
    }
  });
});
