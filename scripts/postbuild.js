// After tsc -b: drops stale outputs, builds the admin UI, marks the CLIs executable.
const fs = require("node:fs");
const path = require("node:path");
const root = path.resolve(__dirname, "..");
const removed = require("./prune-dist").pruneAll();
if (removed > 0) process.stdout.write(`postbuild: removed ${removed} stale output(s) from dist\n`);
for (const bin of ["dist/cli/main.js", "tools/dist/cli.js"]) {
  const file = path.join(root, bin);
  if (fs.existsSync(file)) fs.chmodSync(file, 0o755);
}
// `sgrid node` in one file (cli/agent-bundle.ts), when its inputs changed.
require("./bundle-agent").bundleAgent().then((made) => { if (made) process.stdout.write("postbuild: bundled the agent (dist/cli/agent.bundle.js)\n"); }, (err) => { process.stderr.write(`postbuild: ${err.stack ?? err}\n`); process.exitCode = 1; });
// The admin web UI: browser code, its own tsc project (admin/ui/tsconfig.json) plus vendored ES modules.
require("./build-admin-ui").buildAdminUi();
