/**
 * Issue 8, Must show 7: `sgrid up` started as a new user would (the CLI as
 * a child process, data in one folder, free ports), the admin page loads in
 * Chromium and logs in, a scaffolded servant (`sgrid create` -> build ->
 * `sgrid package`) published through the admin app answers through its
 * generated proxy resolved by Obj name, and Ctrl-C stops everything: no
 * servant process is left.
 *
 * Chromium: SGRID_TEST_CHROMIUM or /usr/bin/chromium, driven by
 * playwright-core (never a downloaded browser); without it the browser step
 * is skipped, saying so.
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as path from "node:path";
import { chromium, type Browser } from "playwright-core";
import { acquireLock, cgroupGroupFor, defaultNodeName, resolveUpOptions } from "../../cli/up";
import { FailedPreconditionError } from "sgridnext";
import { CLI, outputDir } from "../helpers/paths";
import { AdminHttp } from "./helpers/admin-http";
import { helloProxy, projectCommunicator } from "./helpers/client";
import { killProcessesUnder, Proc, processesUnder, removeCgroupGroup, waitFor } from "./helpers/procs";
import { runCommand, scaffoldBoth, type Scaffold } from "./helpers/scaffold";

const CHROMIUM = process.env.SGRID_TEST_CHROMIUM || "/usr/bin/chromium";
const ADMIN_LINE = /sgrid up: admin at (http:\/\/\S+) user (\S+) password (\S+)\n/;
const REGISTRY_LINE = /sgrid up: registry on (\S+) /;
const NODE_LINE = /sgrid up: node agent "([^"]+)" connected to the registry\n/;

describe("sgrid up: a new user's local cluster @slow", function () {
  this.timeout(15 * 60_000);
  let out: string;
  let dataDir: string;
  let up: Proc | undefined;
  let browser: Browser | undefined;
  let scaffold: Scaffold;
  let adminUrl = "";
  let adminUser = "";
  let password = "";
  let registry = "";
  let nodeName = "";

  /** The environment of a new user: no Sgrid settings inherited from the test run. */
  function userEnv(): Record<string, string> {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("SGRID_")) env[k] = v;
    return env;
  }

  function startUp(tag: string): Proc {
    const env = userEnv();
    return new Proc(`sgrid up (${tag})`, process.execPath, [CLI, "up", "--data-dir", dataDir, "--registry-port", "0", "--admin-port", "0"], {
      cwd: out, env, logFile: path.join(out, `up-${tag}.log`),
    });
  }

  before(async () => {
    out = outputDir("e2e-up");
    dataDir = path.join(out, "sgrid-data");
    // The scaffold (npm install is shared with the journeys test) while nothing else runs yet.
    scaffold = await scaffoldBoth();
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    if (up?.running) {
      up.signal("SIGINT");
      await Promise.race([up.exited, new Promise((r) => setTimeout(r, 20_000))]);
      up.signal("SIGKILL");
    }
    if (dataDir) {
      killProcessesUnder(dataDir);
      await removeCgroupGroup(cgroupGroupFor(dataDir));
    }
  });

  it("starts, saying what it does, and prints the admin URL and login", async () => {
    up = startUp("first");
    const admin = await up.waitForLine(ADMIN_LINE, 90_000);
    [, adminUrl, adminUser, password] = admin as unknown as [string, string, string, string];
    registry = (await up.waitForLine(REGISTRY_LINE))[1]!;
    nodeName = (await up.waitForLine(NODE_LINE))[1]!;
    await up.waitForLine(/sgrid up: ready/);
    expect(adminUser).to.equal("admin");
    expect(password.length).to.be.greaterThan(11);
    // Everything under the one folder; the secrets readable by their owner only.
    for (const d of ["registry", "node", "admin"]) expect(fs.statSync(path.join(dataDir, d)).isDirectory(), d).to.equal(true);
    expect(fs.statSync(path.join(dataDir, "cluster-token")).mode & 0o777).to.equal(0o600);
    expect(fs.statSync(path.join(dataDir, "admin-password")).mode & 0o777).to.equal(0o600);
    expect(fs.readFileSync(path.join(dataDir, "admin-password"), "utf8").trim()).to.equal(password);
    // The cluster token is never printed.
    expect(up.stdout + up.stderr).not.to.contain(fs.readFileSync(path.join(dataDir, "cluster-token"), "utf8").trim());
  });

  it("the admin page loads in Chromium and the printed login works", async function () {
    if (!fs.existsSync(CHROMIUM)) {
      console.warn(`skipping the browser step: no Chromium at ${CHROMIUM} (set SGRID_TEST_CHROMIUM)`);
      this.skip();
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--headless", "--no-sandbox", "--disable-gpu"] });
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(adminUrl);
    await page.waitForURL(/\/login/, { timeout: 30_000 });
    await page.fill("input[name=user]", adminUser);
    await page.fill("input[name=password]", password);
    await page.click("button[type=submit]");
    await page.locator(".who", { hasText: adminUser }).waitFor({ timeout: 30_000 });
    await page.goto(`${adminUrl}/nodes`);
    await page.locator(`.card.node[data-node="${nodeName}"]`).waitFor({ timeout: 30_000 });
    await page.screenshot({ path: path.join(out, "up-admin-nodes.png"), fullPage: true });
  });

  it("a scaffolded servant published through the admin app answers by its Obj name", async () => {
    const admin = new AdminHttp(adminUrl);
    await admin.login(adminUser, password);
    await waitFor("the node online in the admin app", async () => (await admin.nodes()).some((n) => n.name === nodeName && n.online));
    const deployed = await admin.deploy("Demo", "HelloServer", [nodeName], ["GreeterObj"]) as { instances: Array<{ id: number }> };
    const version = await admin.upload("Demo", "HelloServer", scaffold.helloV1.file, scaffold.helloV1.sha256, "first release");
    const task = await admin.publish(deployed.instances.map((i) => i.id), version, 0);
    await admin.waitTask(task.id);

    const comm = projectCommunicator(scaffold.hello, registry);
    try {
      const hello = helloProxy(comm, scaffold.hello);
      const reply = await waitFor("Hello to answer", () => hello.sayHello({ name: "Ann" }).catch(() => undefined), 30_000);
      expect(reply.message).to.equal("Hello, Ann");
    } finally {
      comm.close();
    }
    if (browser) {
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      await page.goto(adminUrl);
      await page.waitForURL(/\/login/, { timeout: 30_000 });
      await page.fill("input[name=user]", adminUser);
      await page.fill("input[name=password]", password);
      await page.click("button[type=submit]");
      await page.locator(".who", { hasText: adminUser }).waitFor({ timeout: 30_000 });
      await page.goto(`${adminUrl}/apps/Demo/HelloServer`);
      await page.locator("table.instances tbody tr").first().waitFor({ timeout: 30_000 });
      await page.screenshot({ path: path.join(out, "up-admin-server.png"), fullPage: true });
      await page.close();
    }
  });

  it("a second sgrid up on the same data dir refuses, naming the first one's pid", async () => {
    const second = await runCommand(process.execPath, [CLI, "up", "--data-dir", dataDir, "--registry-port", "0", "--admin-port", "0"], out, userEnv(), 60_000);
    expect(second.code).to.equal(1);
    expect(second.out).to.contain(`another sgrid up (pid ${up!.pid}) is running on ${dataDir}`);
    expect(up!.running, "the first one keeps running").to.equal(true);
  });

  it("Ctrl-C stops everything: no servant process is left", async () => {
    const servants = processesUnder(path.join(dataDir, "node"));
    expect(servants, "the published servant runs before Ctrl-C").to.have.length.greaterThan(0);
    up!.signal("SIGINT");
    await waitFor("sgrid up to exit", () => !up!.running, 60_000);
    expect(up!.exitCode, up!.stdout + up!.stderr).to.equal(0);
    expect(up!.stdout).to.match(/sgrid up: stopping 1 servant instance\.\.\./).and.match(/sgrid up: stopped\./);
    expect(processesUnder(path.join(dataDir, "node"))).to.deep.equal([]);
    for (const pid of servants) expect(fs.existsSync(`/proc/${pid}`), `servant ${pid} is gone`).to.equal(false);
    expect(fs.existsSync(path.join(dataDir, "up.lock")), "the lock is released").to.equal(false);
  });

  it("started again on the same folder, it prints the same login and runs the servant again", async () => {
    up = startUp("second");
    const m = await up.waitForLine(ADMIN_LINE, 90_000);
    expect(m[3]).to.equal(password);
    const newRegistry = (await up.waitForLine(REGISTRY_LINE))[1]!;
    const comm = projectCommunicator(scaffold.hello, newRegistry);
    try {
      const hello = helloProxy(comm, scaffold.hello);
      const reply = await waitFor("Hello to answer after the restart", () => hello.sayHello({ name: "Bo" }).catch(() => undefined), 60_000);
      expect(reply.message).to.equal("Hello, Bo");
    } finally {
      comm.close();
    }
    up.signal("SIGINT");
    await waitFor("sgrid up to exit", () => !up!.running, 60_000);
    expect(up.exitCode).to.equal(0);
    expect(processesUnder(path.join(dataDir, "node"))).to.deep.equal([]);
  });
});

describe("sgrid up: options and the data-dir lock", () => {
  let dir: string;

  before(() => {
    dir = outputDir("e2e-up-lock");
  });

  it("flags win over env, env over the documented defaults; bad ports are refused by name", () => {
    const o = resolveUpOptions({ registryPort: "0" }, { SGRID_REGISTRY_PORT: "7000", SGRID_ADMIN_PORT: "7001", SGRID_NODE_NAME: "n1" }, "/x");
    expect(o).to.deep.equal({ dataDir: "/x/sgrid-data", host: "127.0.0.1", registryPort: 0, adminPort: 7001, nodeName: "n1" });
    expect(resolveUpOptions({}, {}, "/x")).to.include({ registryPort: 9500, adminPort: 9600 });
    expect(() => resolveUpOptions({ adminPort: "70000" }, {}, "/x")).to.throw(/--admin-port must be a port number/);
    expect(() => resolveUpOptions({ nodeName: "a b" }, {}, "/x")).to.throw(/node name "a b"/);
    expect(defaultNodeName("my-host.example")).to.equal("my-host.example");
    expect(defaultNodeName("bad host!")).to.equal("local");
  });

  it("a lock left by a process that is gone is taken over; a live one is not", () => {
    fs.writeFileSync(path.join(dir, "up.lock"), JSON.stringify({ pid: 2 ** 22 + 7, startTime: 1 }));
    const release = acquireLock(dir);
    expect(JSON.parse(fs.readFileSync(path.join(dir, "up.lock"), "utf8")).pid).to.equal(process.pid);
    expect(() => acquireLock(dir)).to.throw(FailedPreconditionError, `another sgrid up (pid ${process.pid}) is running on ${dir}`);
    release();
    expect(fs.existsSync(path.join(dir, "up.lock"))).to.equal(false);
  });
});
