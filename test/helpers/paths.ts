import * as fs from "node:fs";
import * as path from "node:path";
import { trackOutput } from "./output";

/** Repository root, from compiled tests in dist/test/... */
export const REPO_ROOT = path.resolve(__dirname, "../../..");
export const FIXTURES = path.join(REPO_ROOT, "test/fixtures");
export const CLI = path.join(REPO_ROOT, "dist/cli/main.js");
/** The built runtime package (sgridnext): its folder, whose dist/ a servant script can require by path. */
export const RUNTIME_DIR = path.join(REPO_ROOT, "framework");
/** Where each part's compiled JavaScript is: the workspace packages build into their own dist/, the platform into the root's. */
export function partDist(part: "framework" | "tools" | "registry" | "nodeagent" | "admin" | "cli"): string {
  return part === "framework" || part === "tools" ? path.join(REPO_ROOT, part, "dist") : path.join(REPO_ROOT, "dist", part);
}

/**
 * A fresh directory under test-output/ (inside the repo, so node_modules
 * resolves from it), removed once the test or suite that made it passed and
 * kept, named in the failure's message, when it failed (helpers/output.ts).
 * `shared`: for what later test files of the process reuse (a cache), the
 * process's rather than the current test's or suite's: removed when the run
 * ends without a failure.
 */
export function outputDir(name: string, opts: { shared?: boolean } = {}): string {
  const dir = path.join(REPO_ROOT, "test-output", `${name}-${process.pid}-${Date.now().toString(36)}`);
  fs.mkdirSync(dir, { recursive: true });
  trackOutput(dir, opts.shared ? "process" : "current");
  return dir;
}
