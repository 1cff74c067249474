// Copies non-TypeScript assets the compiled output needs and marks the CLI executable.
const fs = require("node:fs");
const path = require("node:path");
const root = path.resolve(__dirname, "..");
const cli = path.join(root, "dist/cli/main.js");
if (fs.existsSync(cli)) fs.chmodSync(cli, 0o755);
// The admin web UI: browser code, its own tsc project (admin/ui/tsconfig.json) plus vendored ES modules.
require("./build-admin-ui").buildAdminUi();
