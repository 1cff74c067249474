// Removes compiled output whose source is gone (a renamed or deleted .ts
// file, a folder moved to another package), so dist/ never runs or tests
// code that no longer exists, while builds stay incremental (tsc -b keeps
// what is current). Each output tree maps back to its project's sources:
//   framework/dist/<x>.js  <- framework/<x>.ts
//   tools/dist/<x>.js      <- tools/<x>.ts
//   dist/<part>/<x>.js     <- <part>/<x>.ts for the root project's parts;
//                             anything else under dist/ (an old layout) goes.
// dist/admin/ui is the admin UI build (scripts/build-admin-ui.js) and
// dist/cli/agent.bundle.js the agent's bundle (scripts/bundle-agent.js), left alone.
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const OUTPUT = /\.(js|js\.map|d\.ts|d\.ts\.map)$/;

function sourceOf(rel) {
  return rel.replace(/\.(js|js\.map|d\.ts|d\.ts\.map)$/, ".ts");
}

/** Deletes outputs under `outDir` whose source under `srcDir` is missing; empty folders go too. Returns how many files went. */
function prune(outDir, srcDir, keep = () => false) {
  let removed = 0;
  const walk = (rel) => {
    const abs = path.join(outDir, rel);
    let entries;
    try {
      entries = fs.readdirSync(abs, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (keep(r)) continue;
      if (e.isDirectory()) {
        walk(r);
        if (fs.readdirSync(path.join(outDir, r)).length === 0) fs.rmdirSync(path.join(outDir, r));
      } else if (OUTPUT.test(e.name) && !fs.existsSync(path.join(srcDir, sourceOf(r)))) {
        fs.rmSync(path.join(outDir, r));
        removed++;
      }
    }
  };
  walk("");
  return removed;
}

function pruneAll() {
  let removed = prune(path.join(root, "framework/dist"), path.join(root, "framework"));
  removed += prune(path.join(root, "tools/dist"), path.join(root, "tools"));
  const tsconfig = JSON.parse(fs.readFileSync(path.join(root, "tsconfig.json"), "utf8"));
  const parts = new Set(tsconfig.include);
  const dist = path.join(root, "dist");
  for (const e of fs.existsSync(dist) ? fs.readdirSync(dist, { withFileTypes: true }) : []) {
    if (e.isDirectory() && !parts.has(e.name)) {
      fs.rmSync(path.join(dist, e.name), { recursive: true, force: true });
      removed++;
    }
  }
  removed += prune(dist, root, (rel) => rel === "admin/ui" || rel === ".tsbuildinfo" || rel === "cli/agent.bundle.js");
  return removed;
}

module.exports = { pruneAll };
if (require.main === module) {
  const n = pruneAll();
  if (n > 0) process.stdout.write(`prune-dist: removed ${n} stale output(s)\n`);
}
