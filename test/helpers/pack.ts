/**
 * This checkout as an npm tarball, the way a user's project gets sgridnext
 * (tests install scaffolded projects from it: no registry copy of sgridnext
 * is needed, and what is tested is what `npm pack` ships).
 *
 * `npm pack` runs once per test process; later calls return the same path.
 * It packs the compiled dist/ as it is, so run it after the build.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { REPO_ROOT } from "./paths";

const run = promisify(execFile);
let packed: Promise<string> | undefined;

/** Absolute path of `sgridnext-<version>.tgz` under test-output/pack-<pid>/. */
export function packSgridnext(): Promise<string> {
  packed ??= (async () => {
    const dest = path.join(REPO_ROOT, "test-output", `pack-${process.pid}`);
    fs.mkdirSync(dest, { recursive: true });
    const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", dest], {
      cwd: REPO_ROOT, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: "false" },
    });
    const info = JSON.parse(stdout) as Array<{ filename: string }>;
    const file = path.join(dest, info[0]!.filename);
    if (!fs.existsSync(file)) throw new Error(`npm pack did not write ${file}`);
    return file;
  })();
  packed.catch(() => { packed = undefined; });
  return packed;
}
