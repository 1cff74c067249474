import * as fs from "node:fs";
import * as path from "node:path";

/** Repository root, from compiled tests in dist/test/... */
export const REPO_ROOT = path.resolve(__dirname, "../../..");
export const FIXTURES = path.join(REPO_ROOT, "test/fixtures");
export const CLI = path.join(REPO_ROOT, "dist/cli/main.js");

/** A fresh directory under test-output/ (inside the repo, so node_modules resolves from it). */
export function outputDir(name: string): string {
  const dir = path.join(REPO_ROOT, "test-output", `${name}-${process.pid}-${Date.now().toString(36)}`);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}
