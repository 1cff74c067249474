/** A Chromium page of the admin app, logged in through the login form (the browser tests' first step). */
import type { Browser, Page } from "playwright-core";

const WAIT = { timeout: 30_000 };

/**
 * Opens `base + pathname`, which redirects to /login, logs in as `user` and
 * waits for the page to show who is logged in. Page errors go to stderr;
 * confirm() dialogs are accepted (the person clicks OK).
 */
export async function openLoggedIn(browser: Browser, base: string, pathname: string, user: string, password: string, height = 900): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height } });
  page.on("pageerror", (err) => console.error("page error:", err.message));
  page.on("dialog", (d) => void d.accept());
  await page.goto(base + pathname);
  await page.waitForURL(/\/login/, WAIT);
  await page.fill("input[name=user]", user);
  await page.fill("input[name=password]", password);
  await page.click("button[type=submit]");
  await page.locator(".who", { hasText: user }).waitFor(WAIT);
  return page;
}
