// Builds the admin web UI into dist/admin/ui (served by `sgrid admin`):
//   app/     the page code, compiled from admin/ui/src (TypeScript -> ES modules, no bundler)
//   vendor/  preact, preact/hooks and htm as shipped by their npm packages (ES modules)
//   style.css, favicon.svg
// The page loads them through an import map; nothing comes from a CDN.
//
// The build goes to a staging directory that replaces dist/admin/ui in one
// rename, so a running admin app never sees a half-built UI; and it is
// skipped when no source changed since the last build (.stamp).
const { spawnSync } = require("node:child_process");
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const src = path.join(root, "admin/ui");
const out = path.join(root, "dist/admin/ui");

const VENDOR = {
  "preact.mjs": "preact/dist/preact.mjs",
  "hooks.mjs": "preact/hooks/dist/hooks.mjs",
  "htm.mjs": "htm/dist/htm.mjs",
};
const STATIC_FILES = ["style.css", "favicon.svg"];

/** A file inside an installed package (their "exports" maps hide dist files from require.resolve). */
function packageFile(rel) {
  for (let dir = root; ; dir = path.dirname(dir)) {
    const file = path.join(dir, "node_modules", rel);
    if (fs.existsSync(file)) return file;
    if (path.dirname(dir) === dir) throw new Error(`admin UI: ${rel} not found in node_modules (npm ci?)`);
  }
}

function listFiles(dir, acc = []) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) listFiles(full, acc);
    else acc.push(full);
  }
  return acc;
}

/** Changes when any source, vendored file or this script changes. */
function sourceStamp() {
  const h = crypto.createHash("sha256");
  const files = [...listFiles(src), ...Object.values(VENDOR).map(packageFile), __filename].sort();
  for (const f of files) {
    const st = fs.statSync(f);
    h.update(`${path.relative(root, f)}\0${st.size}\0${st.mtimeMs}\n`);
  }
  return h.digest("hex");
}

function buildAdminUi({ force = false } = {}) {
  const stamp = sourceStamp();
  const stampFile = path.join(out, ".stamp");
  if (!force && fs.existsSync(stampFile) && fs.readFileSync(stampFile, "utf8") === stamp) return;
  const staging = `${out}.build-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(path.join(staging, "vendor"), { recursive: true });
  try {
    const tsc = require.resolve("typescript/bin/tsc", { paths: [root] });
    const r = spawnSync(process.execPath, [tsc, "-p", path.join(src, "tsconfig.json"), "--outDir", path.join(staging, "app")], { stdio: "inherit" });
    if (r.status !== 0) throw new Error(`admin UI: tsc exited with ${r.status}`);
    for (const [name, rel] of Object.entries(VENDOR)) fs.copyFileSync(packageFile(rel), path.join(staging, "vendor", name));
    for (const name of STATIC_FILES) fs.copyFileSync(path.join(src, name), path.join(staging, name));
    fs.writeFileSync(path.join(staging, ".stamp"), stamp);
    const old = `${out}.old-${process.pid}`;
    if (fs.existsSync(out)) fs.renameSync(out, old);
    fs.renameSync(staging, out);
    fs.rmSync(old, { recursive: true, force: true });
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

module.exports = { buildAdminUi };
if (require.main === module) buildAdminUi({ force: process.argv.includes("--force") });
