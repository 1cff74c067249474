/**
 * The whole first journey of a new user, for real: `sgrid create` (the CLI)
 * a node project, which packs this checkout's runtime and tools into the
 * project's vendor/ (sgridnext is not on the npm registry), then in it
 * `npm install` (the npm registry for everything else), `npm run build`,
 * `npm test`, `npm run package` (sgrid-tools, the project's own dev
 * dependency); then unpack that package with the node agent's unpacker,
 * start its entry as the agent would (env contract, manifest options) and
 * call it through the generated proxy.
 *
 * Slow (npm install): it runs once, in one `it` chain. Needs the npm
 * registry (or a warm npm cache); SGRID_TEST_SKIP_NPM=1 skips it.
 */
import { expect } from "chai";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { readManifest, unpackPackage } from "../../nodeagent/install";
import { CLI, outputDir } from "../helpers/paths";
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

describe("sgrid create: a node project builds, tests and packages @slow", function () {
  this.timeout(20 * 60_000);
  let out: string;
  let dir: string;

  before(async function () {
    if (process.env.SGRID_TEST_SKIP_NPM === "1") this.skip();
    out = outputDir("create-node");
    dir = path.join(out, "HelloServer");
  });

  it("sgrid create packs the runtime and tools it belongs to into vendor/, and says so", async () => {
    const res = await run(process.execPath, [CLI, "create", "Demo.HelloServer", "--dir", dir], out);
    expect(res.code, res.out).to.equal(0);
    const own = (name: string) => (require(`${name}/package.json`) as { version: string }).version;
    expect(res.out).to.include(`sgridnext ${own("sgridnext")} and sgridnext-tools ${own("sgridnext-tools")}: packed from this sgrid's own copy into vendor/`);
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    expect(pkg.dependencies.sgridnext).to.equal(`file:vendor/sgridnext-${own("sgridnext")}.tgz`);
    expect(pkg.devDependencies["sgridnext-tools"]).to.equal(`file:vendor/sgridnext-tools-${own("sgridnext-tools")}.tgz`);
    for (const spec of [pkg.dependencies.sgridnext, pkg.devDependencies["sgridnext-tools"]]) {
      expect(fs.existsSync(path.join(dir, spec!.slice("file:".length))), spec).to.equal(true);
    }
  });

  it("npm install works without sgridnext on the npm registry, and the production tree holds only the runtime", async () => {
    const res = await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund"], dir);
    expect(res.code, res.out).to.equal(0);
    expect(fs.existsSync(path.join(dir, "node_modules/sgridnext/dist/index.js"))).to.equal(true);
    const lock = JSON.parse(fs.readFileSync(path.join(dir, "package-lock.json"), "utf8")) as { packages: Record<string, { resolved?: string }> };
    expect(lock.packages["node_modules/sgridnext"]?.resolved, "installed from the vendored tarball").to.match(/^file:vendor\/sgridnext-/);
    const prod = await run("npm", ["ls", "--omit=dev", "--all", "--parseable"], dir);
    expect(prod.code, prod.out).to.equal(0);
    const names = prod.out.split("\n").filter(Boolean).map((p) => path.relative(dir, p));
    for (const heavy of ["knex", "koa", "better-sqlite3", "mysql2", "ts-proto", "@bufbuild/buf", "esbuild", "sgridnext-tools"]) {
      expect(names.filter((n) => n.split("node_modules/").pop()!.startsWith(heavy)), `${heavy} in the production tree`).to.deep.equal([]);
    }
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

  it("npm run package makes a small package (one bundle, no native module) the agent installs and runs", async () => {
    const res = await run("npm", ["run", "package", "--", "--out", path.join(out, "pkg"), "--json"], dir);
    expect(res.code, res.out).to.equal(0);
    const info = JSON.parse(res.out.trim().split("\n").pop()!) as { file: string; size: number; entries: number; manifest: Record<string, unknown> };
    expect(path.basename(info.file)).to.equal("Demo.HelloServer-0.1.0.tgz");
    const own = require("sgridnext/package.json") as { version: string };
    expect(info.manifest).to.deep.equal({
      app: "Demo", server: "HelloServer", type: "node", entry: "dist/src/main.js", version: "0.1.0", framework: own.version, sourceMaps: true,
    });
    expect(info.size, "package bytes").to.be.at.most(2 * 1024 * 1024);
    expect(info.entries, "package entries").to.be.at.most(300);

    const release = path.join(out, "release");
    fs.mkdirSync(release);
    await unpackPackage(info.file, release);
    const { manifest } = await readManifest(release, { app: "Demo", server: "HelloServer", type: "node" });
    expect(fs.existsSync(path.join(release, "node_modules")), "everything is in the bundle").to.equal(false);
    expect(fs.existsSync(path.join(release, "dist/src/main.js.map"))).to.equal(true);
    expect(fs.readFileSync(path.join(release, "dist/src/THIRD-PARTY-LICENSES.txt"), "utf8")).to.match(/^@grpc\/grpc-js@/m);

    // Start it as the agent does: `node --enable-source-maps <entry>` in the release, adapters from the env, no registry.
    const port = await freePort();
    const child = spawn(process.execPath, ["--enable-source-maps", path.join(release, manifest.entry)], {
      cwd: release,
      env: { ...process.env, SGRID_APP: "Demo", SGRID_SERVER: "HelloServer", SGRID_TARGET_HOST: "127.0.0.1", SGRID_TARGET_PORT: String(port), SGRID_LOG_LEVEL: "warn" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => { stderr += d; });
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    // The project's own copy of the framework and of the generated proxy, as a peer service would use them.
    const sgridnext = require(path.join(dir, "node_modules/sgridnext")) as typeof import("sgridnext");
    const { GreeterProxy } = require(path.join(dir, "dist/src/gen/Greeter.sgrid.js")) as { GreeterProxy: import("sgridnext").ProxyClass<any> };
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
