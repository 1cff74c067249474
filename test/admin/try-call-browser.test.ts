/**
 * "Try a call" in a real Chromium (playwright-core, the system browser)
 * against a real servant process registered in a real registry
 * (servant-stack.ts): an operator picks the method, sees the prefilled
 * request, sends it and reads the reply, status and latency; JSON that does
 * not fit is shown next to the request; a server stream lists its
 * messages; a viewer is told the page needs the operator role.
 * Screenshots: test-output/admin-try-call-* (kept when a test fails, or
 * with SGRID_TEST_KEEP_OUTPUT=1).
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { outputDir } from "../helpers/paths";
import { openLoggedIn } from "./browser-page";
import { waitFor } from "../helpers/wait";
import { ECHO_OBJ, startServantStack, type ServantStack } from "./servant-stack";

const CHROMIUM = process.env.SGRID_TEST_CHROMIUM || "/usr/bin/chromium";
const WAIT = { timeout: 30_000 };
const PAGE = "/apps/Test/EchoServer?tab=try";

describe("admin UI: try a call in Chromium @slow", function () {
  this.timeout(120_000);
  let s: ServantStack;
  let browser: Browser;
  let shots: string;

  const open = (user: string, password: string): Promise<Page> => openLoggedIn(browser, s.stack.url, PAGE, user, password);

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) {
      console.warn(`skipping browser tests: no Chromium at ${CHROMIUM} (set SGRID_TEST_CHROMIUM)`);
      this.skip();
    }
    shots = outputDir("admin-try-call");
    s = await startServantStack([["ops", "ops-password-1", "Test", "operator"], ["viewer", "viewer-password-1", "Test", "viewer"]]);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--headless", "--no-sandbox", "--disable-gpu"] });
  });

  after(async () => {
    await browser?.close();
    await s?.stop();
  });

  it("an operator calls Say with the prefilled request edited, and sees reply, status, latency; then a mismatch and a stream", async () => {
    const page = await open("ops", "ops-password-1");
    try {
      await page.locator("select[name=method] option[value='demo.echo.v1.Echo/Say']").waitFor({ state: "attached", ...WAIT });
      await page.selectOption("select[name=method]", "demo.echo.v1.Echo/Say");
      await waitFor("the request is prefilled", async () => (await page.inputValue("textarea[name=request]")).includes('"text"'));
      expect(JSON.parse(await page.inputValue("textarea[name=request]"))).to.deep.equal({ text: "", count: 0 });
      expect(await page.inputValue("select[name=obj]")).to.equal(ECHO_OBJ);
      await page.fill("textarea[name=request]", JSON.stringify({ text: "hello from the browser" }));
      await page.click("form[aria-label='try a call'] button[type=submit]");
      await page.locator(".try-status[data-status=OK]").waitFor(WAIT);
      expect(await page.textContent(".try-reply")).to.contain("hello from the browser");
      expect(await page.textContent(".try-status")).to.match(/\d+\.\d ms via 127\.0\.0\.1:\d+/);
      await page.screenshot({ path: path.join(shots, "01-unary-ok.png"), fullPage: true });

      await page.fill("textarea[name=request]", JSON.stringify({ text: 5 }));
      await page.click("form[aria-label='try a call'] button[type=submit]");
      await page.locator(".field-error[data-field=request]").waitFor(WAIT);
      expect(await page.textContent(".field-error[data-field=request]")).to.contain("demo.echo.v1.EchoRequest");
      await page.screenshot({ path: path.join(shots, "02-json-mismatch.png"), fullPage: true });

      await page.selectOption("select[name=method]", "demo.echo.v1.Echo/Repeat");
      // The form prefills the chosen method's request after the change; typing before that lands would be overwritten.
      await waitFor("Repeat's request is prefilled", async () => (await page.inputValue("textarea[name=request]")).includes('"count": 0'));
      await page.fill("textarea[name=request]", JSON.stringify({ text: "r", count: 3 }));
      await page.click("form[aria-label='try a call'] button[type=submit]");
      await page.locator(".try-result", { hasText: "3 message(s)" }).waitFor(WAIT);
      await page.selectOption("select[name=method]", "demo.echo.v1.Echo/Fail");
      await waitFor("Fail's request is prefilled", async () => (await page.inputValue("textarea[name=request]")).includes('"code"'));
      await page.fill("textarea[name=request]", JSON.stringify({ code: "OUT_OF_STOCK", message: "none left" }));
      await page.click("form[aria-label='try a call'] button[type=submit]");
      await page.locator(".try-status[data-status=FAILED_PRECONDITION]").waitFor(WAIT);
      expect(await page.textContent(".try-status")).to.contain("OUT_OF_STOCK").and.to.contain("none left");
      await page.screenshot({ path: path.join(shots, "03-servant-error.png"), fullPage: true });
    } finally {
      await page.close();
    }
    const events = (await s.admin.get("/api/events?kind=call.try&limit=50")).body.events;
    expect(events.filter((e: any) => e.actor === "ops").length).to.be.at.least(4);
  });

  it("a viewer is told the page needs the operator role", async () => {
    const page = await open("viewer", "viewer-password-1");
    try {
      await page.locator("[data-readonly=try]").waitFor(WAIT);
      expect(await page.locator("form[aria-label='try a call']").count()).to.equal(0);
      await page.screenshot({ path: path.join(shots, "04-viewer.png"), fullPage: true });
    } finally {
      await page.close();
    }
  });
});
