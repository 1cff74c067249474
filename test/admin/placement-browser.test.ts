/**
 * Node tags and placement in a real Chromium (playwright-core, the system
 * browser) against a real registry and admin app: an operator edits a
 * node's tags on the Nodes page (people's tags win, "-key" hides an agent
 * tag); the deploy form places a server by a query that matches no node,
 * and the server page shows the placement with the reason; a query that
 * does not parse is shown next to its field with the column.
 * Screenshots: test-output/admin-placement-* (kept when a test fails, or
 * with SGRID_TEST_KEEP_OUTPUT=1).
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { outputDir } from "../helpers/paths";
import { openLoggedIn } from "./browser-page";
import { ADMIN_PASSWORD, startStack, type Stack } from "./helpers";

const CHROMIUM = process.env.SGRID_TEST_CHROMIUM || "/usr/bin/chromium";
const WAIT = { timeout: 30_000 };

describe("admin UI: node tags and placement in Chromium @slow", function () {
  this.timeout(120_000);
  let s: Stack;
  let browser: Browser;
  let shots: string;

  const open = (pathname: string): Promise<Page> => openLoggedIn(browser, s.url, pathname, "admin", ADMIN_PASSWORD);

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) {
      console.warn(`skipping browser tests: no Chromium at ${CHROMIUM} (set SGRID_TEST_CHROMIUM)`);
      this.skip();
    }
    shots = outputDir("admin-placement");
    s = await startStack();
    for (const [name, tags] of [["node-a", ["ssd", "zone=a"]], ["node-b", ["zone=b"]]] as const) {
      await s.registry.store.nodes.upsert({ name, address: "127.0.0.1", agentVersion: "test", tags: [...tags], hostInfo: { cpuCount: 4, memory: { totalBytes: 8 * 1024 ** 3 } } });
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--headless", "--no-sandbox", "--disable-gpu"] });
  });

  after(async () => {
    await browser?.close();
    await s?.stop();
  });

  it("edits a node's tags: people's tags win over the agent's, -key hides an agent tag", async () => {
    const page = await open("/nodes");
    try {
      const tags = page.locator(".tags[data-tags=node-a]");
      await tags.locator(".badge.tag", { hasText: "ssd" }).waitFor(WAIT);
      await page.fill("form[aria-label='tags of node-a'] input[name=tags]", "zone=c rack=r1 -ssd");
      await page.click("form[aria-label='tags of node-a'] button[type=submit]");
      await tags.locator(".badge.tag", { hasText: "rack=r1" }).waitFor(WAIT);
      const shown = await tags.locator(".badge.tag").allTextContents();
      expect(shown).to.deep.equal(["rack=r1", "zone=c"]);
      expect(await tags.textContent()).to.contain("agent: ssd zone=a");
      await page.screenshot({ path: path.join(shots, "01-node-tags.png"), fullPage: true });
      expect((await s.registry.store.nodes.get("node-a")).tags).to.deep.equal({ rack: "r1", zone: "c" });

      await page.fill("form[aria-label='tags of node-a'] input[name=tags]", "bad!tag");
      await page.click("form[aria-label='tags of node-a'] button[type=submit]");
      await page.locator(".tags[data-tags=node-a] .error", { hasText: "invalid tag key" }).waitFor(WAIT);
      await page.screenshot({ path: path.join(shots, "02-bad-tag.png"), fullPage: true });
      expect((await s.registry.store.nodes.get("node-a")).tags).to.deep.equal({ rack: "r1", zone: "c" });
    } finally {
      await page.close();
    }
  });

  it("deploys by a query that matches no node: the server page shows the reason and no instance", async () => {
    const page = await open("/deploy");
    try {
      await page.fill("input[name=application]", "Pl");
      await page.fill("input[name=server]", "Echo");
      await page.fill("input[name=obj-0]", "EchoObj");
      await page.fill("input[name=place]", "tags:ssd AND");
      await page.fill("input[name=count]", "2");
      await page.click("form[aria-label=deploy] button[type=submit]");
      await page.locator(".field-error[data-field=place]", { hasText: "at column 13" }).waitFor(WAIT);
      await page.screenshot({ path: path.join(shots, "03-query-does-not-parse.png"), fullPage: true });
      expect(await s.registry.store.servers.find("Pl", "Echo")).to.equal(undefined);

      await page.fill("input[name=place]", "tags:gpu");
      await page.click("form[aria-label=deploy] button[type=submit]");
      await page.waitForURL(/\/apps\/Pl\/Echo/, WAIT);
      const card = page.locator(".card.placement[data-placement-state=no_match]");
      await card.waitFor(WAIT);
      expect(await card.textContent()).to.contain("0 placed").and.contain("tags:gpu").and.contain("count 2");
      expect(await card.locator(".reason").first().textContent()).to.contain("no node matches tags:gpu (2 node(s) known)");
      await page.screenshot({ path: path.join(shots, "04-placement-no-match.png"), fullPage: true });
      expect(await s.registry.store.instances.list({ application: "Pl" })).to.deep.equal([]);
    } finally {
      await page.close();
    }
  });
});
