/**
 * `sgrid create`: names are checked with clear errors, a non-empty target is
 * refused, every placeholder is rendered, and the binary template's program
 * serves on SGRID_TARGET_PORT. (The slow check — npm install, build and test
 * of a scaffolded node project — is in create-node-project.test.ts.)
 */
import { expect } from "chai";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { FailedPreconditionError, InvalidArgumentError } from "sgridnext";
import { createProject } from "../../cli/create";
import { CLI, outputDir } from "../helpers/paths";
import { freePort } from "../helpers/processes";

function walk(dir: string, rel = ""): string[] {
  return fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((e) => {
    const r = rel ? `${rel}/${e.name}` : e.name;
    return e.isDirectory() ? walk(dir, r) : [r];
  });
}

function sgrid(args: string[], cwd: string, env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: "utf8", env: { ...process.env, SGRID_LOG_LEVEL: "warn", ...env } });
}

describe("sgrid create", function () {
  this.timeout(30_000);
  let out: string;
  before(() => {
    out = outputDir("create");
  });

  it("scaffolds the node template with every placeholder rendered", () => {
    const dir = path.join(out, "hello");
    const res = sgrid(["create", "Demo.HelloServer", "--dir", dir], out, { SGRID_CREATE_SGRIDNEXT: "file:../sgridnext.tgz", SGRID_CREATE_SGRIDNEXT_TOOLS: "file:../tools.tgz" });
    expect(res.status, res.stderr).to.equal(0);
    expect(res.stdout).to.include(`created Demo.HelloServer (node) in ${dir}`);
    const files = walk(dir).sort();
    expect(files).to.deep.equal([
      ".gitignore", ".mocharc.json", "README.md", "package.json", "proto/Greeter.proto", "sgrid.json", "src/greeter.ts", "src/main.ts", "test/greeter.test.ts", "tsconfig.json",
    ]);
    for (const f of files) expect(fs.readFileSync(path.join(dir, f), "utf8"), f).to.not.match(/\{\{\w+\}\}/);
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
    expect(pkg.name).to.equal("demo-helloserver");
    expect(pkg.dependencies.sgridnext).to.equal("file:../sgridnext.tgz");
    expect(pkg.devDependencies["sgridnext-tools"]).to.equal("file:../tools.tgz");
    expect(pkg.scripts.gen).to.equal("sgrid-tools gen proto --out src/gen");
    expect(Object.keys(pkg.devDependencies)).to.include.members(["typescript", "mocha", "chai"]);
    expect(JSON.parse(fs.readFileSync(path.join(dir, "sgrid.json"), "utf8"))).to.deep.equal({
      app: "Demo", server: "HelloServer", type: "node", entry: "dist/src/main.js", objs: ["GreeterObj"],
    });
    const proto = fs.readFileSync(path.join(dir, "proto/Greeter.proto"), "utf8");
    expect(proto).to.match(/^package demo\.helloserver;$/m);
    expect(proto).to.match(/^service Greeter \{$/m);
    expect(fs.readFileSync(path.join(dir, "src/main.ts"), "utf8")).to.include('app.addServant("GreeterObj", new Greeter(');
  });

  it("names the service after --obj; --from-registry depends on ^<own version> of the runtime and tools", () => {
    const dir = path.join(out, "caller");
    const res = createProject({ name: "Demo.CallerServer", obj: "CallerObj", dir, fromRegistry: true });
    expect(res.files).to.include.members(["proto/Caller.proto", "src/caller.ts", "test/caller.test.ts"]);
    expect(res.vendor).to.deep.equal([]);
    expect(fs.readFileSync(path.join(dir, "proto/Caller.proto"), "utf8")).to.match(/^service Caller \{$/m);
    const version = (name: string) => (require(`${name}/package.json`) as { version: string }).version;
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
    expect(pkg.dependencies.sgridnext).to.equal(`^${version("sgridnext")}`);
    expect(pkg.devDependencies["sgridnext-tools"]).to.equal(`^${version("sgridnext-tools")}`);
  });

  it("refuses bad names with a message naming the bad part, writing nothing", () => {
    const dir = path.join(out, "bad");
    const cases: Array<[string, string | undefined, RegExp]> = [
      ["HelloServer", undefined, /must be <App>\.<Server>/],
      ["Demo.Hello.Server", undefined, /must be <App>\.<Server>/],
      ["1Demo.HelloServer", undefined, /invalid application name "1Demo": must start with a letter/],
      ["Demo.Hello Server", undefined, /invalid server name "Hello Server": may contain only/],
      ["Demo.HelloServer", "2Obj", /invalid Obj name "2Obj": must start with a letter/],
      ["Demo.HelloServer", "Greeter.Obj", /invalid Obj name "Greeter\.Obj"/],
    ];
    for (const [name, obj, re] of cases) {
      expect(() => createProject({ name, obj, dir }), `${name} ${obj}`).to.throw(InvalidArgumentError, re);
    }
    expect(fs.existsSync(dir)).to.equal(false);
    expect(() => createProject({ name: "Demo.HelloServer", dir, template: "cobol" as never })).to.throw(InvalidArgumentError, /unknown template "cobol"/);
    expect(fs.existsSync(dir)).to.equal(false);
  });

  it("refuses a non-empty target directory and leaves it as it was", () => {
    const dir = path.join(out, "taken");
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, "keep.txt"), "mine");
    expect(() => createProject({ name: "Demo.HelloServer", dir })).to.throw(FailedPreconditionError, /is not empty/);
    expect(fs.readdirSync(dir)).to.deep.equal(["keep.txt"]);
    const res = sgrid(["create", "Demo.HelloServer", "--dir", dir], out);
    expect(res.status).to.equal(1);
    expect(res.stderr).to.match(/^sgrid: target directory .*taken is not empty; choose another --dir\n$/);
    // An empty existing directory is fine.
    const empty = path.join(out, "empty");
    fs.mkdirSync(empty);
    expect(createProject({ name: "Demo.HelloServer", dir: empty }).files).to.include("package.json");
  });

  it("exits non-zero with one clear line for a bad name on the command line", () => {
    const res = sgrid(["create", "Demo.Hello Server", "--dir", path.join(out, "x")], out);
    expect(res.status).to.equal(1);
    expect(res.stderr).to.equal(`sgrid: invalid server name "Hello Server": may contain only letters, digits, "_" and "-"\n`);
  });

  describe("binary template", () => {
    let dir: string;
    before(() => {
      dir = path.join(out, "echo");
      createProject({ name: "Demo.EchoServer", dir, template: "binary" });
    });

    it("has an executable entry and a sgrid.json of type binary", () => {
      expect(walk(dir).sort()).to.deep.equal([".gitignore", "README.md", "bin/server", "sgrid.json"]);
      expect(fs.statSync(path.join(dir, "bin/server")).mode & 0o111).to.not.equal(0);
      expect(JSON.parse(fs.readFileSync(path.join(dir, "sgrid.json"), "utf8"))).to.deep.include({ type: "binary", entry: "bin/server" });
    });

    it("serves HTTP on SGRID_TARGET_PORT and stops on SIGTERM with exit 0", async function () {
      if (spawnSync("python3", ["--version"]).status !== 0) this.skip();
      const port = await freePort();
      const child = spawn(path.join(dir, "bin/server"), [], {
        env: { ...process.env, SGRID_TARGET_HOST: "127.0.0.1", SGRID_TARGET_PORT: String(port), SGRID_NODE: "node-x", SGRID_VERSION: "7" },
        stdio: ["ignore", "pipe", "pipe"],
      });
      const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
      try {
        const get = (p: string) => new Promise<{ status: number; body: string }>((resolve, reject) => {
          http.get({ host: "127.0.0.1", port, path: p }, (res) => {
            let body = "";
            res.setEncoding("utf8").on("data", (d: string) => { body += d; }).on("end", () => resolve({ status: res.statusCode ?? 0, body }));
          }).on("error", reject);
        });
        let health: { status: number; body: string } | undefined;
        const deadline = Date.now() + 15_000;
        while (!health) {
          health = await get("/health").catch(() => undefined);
          if (!health && Date.now() > deadline) throw new Error("bin/server did not answer within 15 s");
          if (!health) await new Promise((r) => setTimeout(r, 100));
        }
        expect(health).to.deep.equal({ status: 200, body: "ok\n" });
        expect(await get("/")).to.deep.equal({ status: 200, body: "Hello from Demo.EchoServer on node-x (version 7)\n" });
      } finally {
        child.kill("SIGTERM");
      }
      expect(await exited).to.equal(0);
    });
  });
});
