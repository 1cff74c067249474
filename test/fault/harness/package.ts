/**
 * The package the fault suite publishes: a `node` server whose main.js loads
 * the compiled servant-main.js of this checkout (so it needs no npm install),
 * for any application and server name.
 */
import * as path from "node:path";
import { writePackage, type PackageFile } from "../../fixtures/packages/tar-builder";

/**
 * Writes `<App>.<Server>-<version>.tgz` into `dir` and returns its path.
 * `failCalls`: a bad version, whose Echo.Say fails every call (INTERNAL).
 * `files`: more files in the package (a large payload for `npm run bench fanout`).
 */
export function echoPackage(dir: string, app: string, server: string, version: string, opts: { failCalls?: boolean; files?: Record<string, PackageFile> } = {}): Promise<string> {
  const main = path.join(__dirname, "servant-main.js");
  const setup = opts.failCalls ? "process.env.FAULT_FAIL_SAY = \"1\";\n" : "";
  return writePackage(dir, `${app}.${server}-${version}.tgz`, {
    "sgrid.json": JSON.stringify({ app, server, type: "node", entry: "main.js", version }),
    "main.js": `${setup}require(${JSON.stringify(main)});\n`,
    ...opts.files,
  });
}
