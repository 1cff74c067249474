/**
 * The whole first journey of a new user, for real: `sgrid create` a node
 * project that depends on this checkout (packed with `npm pack`), then in it
 * `npm install` (npm registry only), `npm run build`, `npm test`; then
 * `sgrid package` with the project's own installed CLI, unpack that package
 * with the node agent's unpacker, start its entry as the agent would (env
 * contract) and call it through the generated proxy.
 *
 * Slow (npm install builds native modules): it runs once, in one `it` chain.
 * Needs the npm registry (or a warm npm cache); SGRID_TEST_SKIP_NPM=1 skips it.
 */
import { expect } from "chai";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { readManifest, unpackPackage } from "../../nodeagent/install";
import { createProject } from "../../cli/create";
import { packSgridnext } from "../helpers/pack";
import { outputDir } from "../helpers/paths";
import { freePort } from "../helpers/processes";

interface Ran {
  code: number | null;
  out: string;
}

/** Runs a command (args as an array) and collects stdout+stderr. */
function run(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}, timeoutMs = 600_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, SGRID_LOG_LEVEL: "warn", npm_config_update_notifier: "false", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => { out += d; });
    child.stderr!.setEncoding("utf8").on("data", (d: string) => { out += d; });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe("sgrid create: a node project builds, tests and packages", function () {
  this.timeout(20 * 60_000);
  let out: string;
  let dir: string;

  before(async function () {
    if (process.env.SGRID_TEST_SKIP_NPM === "1") this.skip();
    out = outputDir("create-node");
    dir = path.join(out, "HelloServer");
    const tarball = await packSgridnext();
    createProject({ name: "Demo.HelloServer", dir, sgridnext: `file:${tarball}` });
  });

  it("npm install works with only the npm registry", async () => {
    const res = await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund"], dir);
    expect(res.code, res.out).to.equal(0);
    expect(fs.existsSync(path.join(dir, "node_modules/sgridnext/dist/framework/index.js"))).to.equal(true);
  });

  it("npm run build generates src/gen and compiles", async () => {
    const res = await run("npm", ["run", "build"], dir);
    expect(res.code, res.out).to.equal(0);
    expect(fs.existsSync(path.join(dir, "src/gen/Greeter.sgrid.ts"))).to.equal(true);
    expect(fs.existsSync(path.join(dir, "dist/src/main.js"))).to.equal(true);
  });

  it("npm test passes: the servant answers through its generated proxy", async () => {
    const res = await run("npm", ["test"], dir);
    expect(res.code, res.out).to.equal(0);
    expect(res.out).to.match(/2 passing/);
  });

  it("sgrid package (the project's own CLI) makes a package the agent installs and runs", async () => {
    const res = await run(path.join(dir, "node_modules/.bin/sgrid"), ["package", "--out", path.join(out, "pkg"), "--json"], dir);
    expect(res.code, res.out).to.equal(0);
    const info = JSON.parse(res.out.trim().split("\n").pop()!) as { file: string; manifest: Record<string, string> };
    expect(path.basename(info.file)).to.equal("Demo.HelloServer-0.1.0.tgz");
    const own = require("../../../package.json") as { version: string };
    expect(info.manifest).to.deep.equal({ app: "Demo", server: "HelloServer", type: "node", entry: "dist/src/main.js", version: "0.1.0", framework: own.version });

    const release = path.join(out, "release");
    fs.mkdirSync(release);
    await unpackPackage(info.file, release);
    const { manifest } = await readManifest(release, { app: "Demo", server: "HelloServer", type: "node" });
    expect(fs.existsSync(path.join(release, "node_modules/typescript")), "dev dependencies are left out").to.equal(false);
    expect(fs.existsSync(path.join(release, "node_modules/@bufbuild/buf-linux-x64")), "the buf compiler is left out").to.equal(false);

    // Start it as the agent does: `node <entry>` in the release, adapters from the env, no registry.
    const port = await freePort();
    const child = spawn(process.execPath, [path.join(release, manifest.entry)], {
      cwd: release,
      env: { ...process.env, SGRID_APP: "Demo", SGRID_SERVER: "HelloServer", SGRID_TARGET_HOST: "127.0.0.1", SGRID_TARGET_PORT: String(port), SGRID_LOG_LEVEL: "warn" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => { stderr += d; });
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    // The release's own copy of the framework and of the generated proxy, as a peer service would use them.
    const sgridnext = require(path.join(release, "node_modules/sgridnext")) as typeof import("../../framework");
    const { GreeterProxy } = require(path.join(release, "dist/src/gen/Greeter.sgrid.js")) as { GreeterProxy: import("../../framework").ProxyClass<any> };
    const comm = new sgridnext.Communicator();
    try {
      const proxy = comm.stringToProxy(GreeterProxy, `Demo.HelloServer.GreeterObj@tcp -h 127.0.0.1 -p ${port}`) as unknown as { sayHello(r: { name: string }): Promise<{ message: string }> };
      const deadline = Date.now() + 20_000;
      let reply: { message: string } | undefined;
      while (!reply) {
        reply = await proxy.sayHello({ name: "Ann" }).catch((err: Error) => {
          if (Date.now() > deadline) throw new Error(`servant never answered: ${err.message}; stderr: ${stderr}`);
          return undefined;
        });
        if (!reply) await new Promise((r) => setTimeout(r, 200));
      }
      expect(reply.message).to.equal("Hello, Ann");
    } finally {
      comm.close();
      child.kill("SIGTERM");
    }
    expect(await exited, stderr).to.equal(0);
  });
});
