/**
 * Packages for the agent's tests: a `binary` server (a shell script that
 * execs a small HTTP server), a `node` server that speaks the local channel
 * (./agent-channel-servant.ts), and hostile ones, as .tgz bytes ready for
 * the registry stand-in or a real registry's upload.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { writePackage, writeRawPackage } from "../../fixtures/packages/tar-builder";

/** The HTTP server a binary package's script execs: answers its identity on SGRID_TARGET_PORT. */
export const HTTP_SERVER_JS = `
const http = require("http");
const env = process.env;
const label = env.SGRID_APP + "." + env.SGRID_SERVER + " v" + env.SGRID_VERSION + " instance " + env.SGRID_INSTANCE_ID + " pid " + process.pid;
http.createServer((req, res) => res.end(label)).listen(Number(env.SGRID_TARGET_PORT), env.SGRID_TARGET_HOST || "127.0.0.1", () => {
  console.log("listening " + label);
});
process.on("SIGTERM", () => process.exit(0));
`;

/** The start script of a binary package: runs the HTTP server with $NODE_BIN (from the instance env), args passed on. */
export const START_SH = '#!/bin/sh\nexec "$NODE_BIN" "$(dirname "$0")/../server.js" "$@"\n';

export async function binaryPackage(dir: string, app: string, server: string, tag: string): Promise<Buffer> {
  const file = await writePackage(dir, `${app}.${server}-${tag}.tgz`, {
    "sgrid.json": JSON.stringify({ app, server, type: "binary", entry: "bin/start.sh", version: tag }),
    "bin/start.sh": { content: START_SH, mode: 0o755 },
    "server.js": HTTP_SERVER_JS,
  });
  return fs.readFileSync(file);
}

/** A node package whose main.js loads the channel-speaking test servant. */
export async function channelNodePackage(dir: string, app: string, server: string, tag: string): Promise<Buffer> {
  const helper = path.join(__dirname, "agent-channel-servant.js");
  const file = await writePackage(dir, `${app}.${server}-${tag}.tgz`, {
    "sgrid.json": JSON.stringify({ app, server, type: "node", entry: "main.js", version: tag }),
    "main.js": `require(${JSON.stringify(helper)});\n`,
  });
  return fs.readFileSync(file);
}

/** A binary package with an entry escaping the release ("../escape.sh"). */
export function escapingPackage(dir: string, app: string, server: string): Buffer {
  const file = writeRawPackage(dir, `${app}.${server}-escape.tgz`, [
    { name: "sgrid.json", body: JSON.stringify({ app, server, type: "binary", entry: "bin/start.sh" }) },
    { name: "bin/start.sh", body: START_SH, mode: 0o755 },
    { name: "../escape.sh", body: "#!/bin/sh\necho pwned\n", mode: 0o755 },
  ]);
  return fs.readFileSync(file);
}

/** A package with a symlink pointing out of the release. */
export function linkOutPackage(dir: string, app: string, server: string): Buffer {
  const file = writeRawPackage(dir, `${app}.${server}-linkout.tgz`, [
    { name: "sgrid.json", body: JSON.stringify({ app, server, type: "binary", entry: "bin/start.sh" }) },
    { name: "bin/start.sh", body: START_SH, mode: 0o755 },
    { name: "etc-passwd", type: "2", linkname: "../../../../../../../../etc/passwd" },
  ]);
  return fs.readFileSync(file);
}

/** GETs http://127.0.0.1:<port>/ and resolves with the body, or undefined when nothing answers. */
export async function httpGet(port: number, timeoutMs = 2000): Promise<string | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(timeoutMs) });
    return await res.text();
  } catch {
    return undefined;
  }
}
