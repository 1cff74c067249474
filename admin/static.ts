/**
 * The web UI: static assets under /static/ (built by scripts/build-admin-ui.js
 * into dist/admin/ui: compiled page code, vendored preact + htm, CSS) and
 * the one HTML page every UI route answers with.
 *
 * The page loads ES modules through an import map (no bundler, nothing from
 * a CDN). The import map is inline, so the Content-Security-Policy allows
 * exactly that script by its sha256 and nothing else inline.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Next } from "koa";
import type { AdminContext } from "./context";

const TYPES: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".map": "application/json; charset=utf-8",
  ".html": "text/html; charset=utf-8",
};

export const STATIC_PREFIX = "/static/";

const IMPORT_MAP = JSON.stringify({
  imports: {
    "preact": "/static/vendor/preact.mjs",
    "preact/hooks": "/static/vendor/hooks.mjs",
    "htm": "/static/vendor/htm.mjs",
  },
});

/** The single page (every UI route), and the CSP that goes with it. */
export function indexPage(): { html: string; csp: string } {
  const mapHash = createHash("sha256").update(IMPORT_MAP).digest("base64");
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sgrid admin</title>
<link rel="icon" href="/static/favicon.svg">
<link rel="stylesheet" href="/static/style.css">
<script type="importmap">${IMPORT_MAP}</script>
<script type="module" src="/static/app/main.js"></script>
</head>
<body><div id="app"><p class="boot">Loading…</p></div></body>
</html>
`;
  const csp = [
    "default-src 'self'",
    `script-src 'self' 'sha256-${mapHash}'`,
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
  return { html, csp };
}

/** Serves files under /static/ from `uiDir` (no login needed: they hold no data). */
export function staticAssets(uiDir: string) {
  const root = path.resolve(uiDir);
  return async (ctx: AdminContext, next: Next): Promise<void> => {
    if (!ctx.path.startsWith(STATIC_PREFIX) || (ctx.method !== "GET" && ctx.method !== "HEAD")) {
      await next();
      return;
    }
    let rel: string;
    try {
      rel = decodeURIComponent(ctx.path.slice(STATIC_PREFIX.length));
    } catch {
      ctx.status = 400;
      return;
    }
    const file = path.resolve(root, rel);
    const type = TYPES[path.extname(file)];
    if (!type || rel.includes("\0") || !file.startsWith(root + path.sep)) {
      ctx.status = 404;
      return;
    }
    let stat: fs.Stats;
    try {
      stat = await fs.promises.stat(file);
    } catch {
      stat = undefined as never;
    }
    if (!stat?.isFile()) {
      ctx.status = 404;
      ctx.body = "not found";
      return;
    }
    const etag = `"${stat.size.toString(36)}-${stat.mtimeMs.toString(36)}"`;
    ctx.set("ETag", etag);
    // Revalidate every time (cheap 304s): a rebuilt UI is picked up at once.
    ctx.set("Cache-Control", "no-cache");
    if (ctx.get("if-none-match") === etag) {
      ctx.status = 304;
      return;
    }
    ctx.type = type;
    ctx.length = stat.size;
    ctx.body = fs.createReadStream(file);
  };
}
