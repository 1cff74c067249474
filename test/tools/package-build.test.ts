/**
 * `sgrid package`: what goes into the archive (a node project's dist and the
 * production part of node_modules; a binary's entry folder), that the node
 * agent's own unpacker and manifest reader accept it, that the same inputs
 * give the same bytes, and refusals with clear messages.
 */
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { list as tarList } from "tar";
import { FailedPreconditionError, InvalidArgumentError } from "sgridnext";
import { readManifest, unpackPackage } from "../../nodeagent/install";
import { buildPackage } from "sgridnext-tools";
import { CLI, outputDir } from "../helpers/paths";

function write(file: string, content: string, mode = 0o644): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content, { mode });
  fs.chmodSync(file, mode);
}

async function entriesOf(file: string): Promise<string[]> {
  const names: string[] = [];
  await tarList({ file, onReadEntry: (e) => { names.push(e.path); } });
  return names;
}

/**
 * A node project as `npm install` leaves it, made by hand: prod, dev,
 * nested, excluded and optional-missing packages. `bundle` is its
 * sgrid.json setting ("unset": not set, i.e. bundled).
 */
function fakeNodeProject(dir: string, bundle: boolean | "unset" = false): void {
  write(path.join(dir, "sgrid.json"), JSON.stringify({ app: "Demo", server: "HelloServer", type: "node", entry: "dist/src/main.js", objs: ["GreeterObj"], ...(bundle === "unset" ? {} : { bundle }) }));
  write(path.join(dir, "package.json"), JSON.stringify({ name: "demo-helloserver", version: "1.2.3", main: "dist/src/main.js", dependencies: { sgridnext: "^0.1.0", left: "1" } }));
  write(path.join(dir, "dist/src/main.js"), "require('left'); console.log('main');\n");
  write(path.join(dir, "dist/test/main.test.js"), "// tests are not shipped\n");
  write(path.join(dir, "src/main.ts"), "// sources are not shipped\n");
  const pkgs: Record<string, { dev?: boolean; optional?: boolean }> = {
    "node_modules/sgridnext": {},
    "node_modules/left": {},
    "node_modules/left/node_modules/inner": {},
    "node_modules/@scope/lib": {},
    "node_modules/typescript": { dev: true },
    "node_modules/typescript/node_modules/devinner": { dev: true },
    "node_modules/@bufbuild/buf-linux-x64": { optional: true },
    "node_modules/@bufbuild/buf-linux-aarch64": { optional: true }, // listed, not installed here
  };
  for (const [key, info] of Object.entries(pkgs)) {
    if (key.endsWith("aarch64")) continue;
    const name = key.slice(key.lastIndexOf("node_modules/") + 13);
    write(path.join(dir, key, "package.json"), JSON.stringify({ name, version: name === "sgridnext" ? "0.1.0" : "1.0.0" }));
    write(path.join(dir, key, "index.js"), `module.exports = ${JSON.stringify(name)};\n`);
    void info;
  }
  write(path.join(dir, "node_modules/typescript/bin/tsc"), "#!/usr/bin/env node\n", 0o755);
  write(path.join(dir, "node_modules/left/bin/left"), "#!/usr/bin/env node\n", 0o755);
  fs.mkdirSync(path.join(dir, "node_modules/.bin"));
  fs.symlinkSync("../typescript/bin/tsc", path.join(dir, "node_modules/.bin/tsc"));
  fs.symlinkSync("../left/bin/left", path.join(dir, "node_modules/.bin/left"));
  // A link inside a package that stays inside the project is kept.
  fs.symlinkSync("index.js", path.join(dir, "node_modules/@scope/lib/alias.js"));
  write(path.join(dir, "node_modules/.package-lock.json"), JSON.stringify({
    name: "demo-helloserver", lockfileVersion: 3,
    packages: Object.fromEntries(Object.entries(pkgs).map(([k, v]) => [k, { version: "1.0.0", ...v }])),
  }));
}

describe("sgrid package", function () {
  this.timeout(60_000);
  let out: string;
  before(() => {
    out = outputDir("package");
  });

  describe("a node project, unbundled (\"bundle\": false)", () => {
    let dir: string;
    before(() => {
      dir = path.join(out, "node");
      fakeNodeProject(dir);
    });

    it("holds the manifest, dist without tests, package.json and production node_modules only", async () => {
      const res = await buildPackage({ dir, out: path.join(out, "pk1") });
      expect(path.basename(res.file)).to.equal("Demo.HelloServer-1.2.3.tgz");
      expect(res.manifest).to.deep.equal({ app: "Demo", server: "HelloServer", type: "node", entry: "dist/src/main.js", version: "1.2.3", framework: "0.1.0" });
      const names = (await entriesOf(res.file)).map((n) => n.replace(/\/$/, ""));
      expect(names[0]).to.equal("sgrid.json");
      expect(names).to.include.members([
        "dist/src/main.js", "package.json", "node_modules/sgridnext/index.js", "node_modules/left/index.js", "node_modules/left/bin/left",
        "node_modules/left/node_modules/inner/index.js", "node_modules/@scope/lib/index.js", "node_modules/@scope/lib/alias.js",
      ]);
      for (const absent of ["dist/test", "src", "node_modules/typescript", "node_modules/.bin", "node_modules/@bufbuild/buf-linux-x64", "node_modules/.package-lock.json"]) {
        expect(names.filter((n) => n === absent || n.startsWith(`${absent}/`)), absent).to.deep.equal([]);
      }
      // Every parent directory comes before what it holds.
      names.forEach((n, i) => {
        const parent = path.posix.dirname(n);
        if (parent !== ".") expect(names.indexOf(parent), n).to.be.within(0, i - 1);
      });
      expect(res.size).to.equal(fs.statSync(res.file).size);
      expect(res.sha256).to.equal(createHash("sha256").update(fs.readFileSync(res.file)).digest("hex"));
    });

    it("is accepted by the node agent's unpacker and manifest reader, and its program runs", async () => {
      const res = await buildPackage({ dir, out: path.join(out, "pk2") });
      const release = path.join(out, "release");
      fs.mkdirSync(release);
      await unpackPackage(res.file, release);
      const { manifest, source } = await readManifest(release, { app: "Demo", server: "HelloServer", type: "node" });
      expect(source).to.equal("sgrid.json");
      expect(manifest).to.deep.equal(res.manifest);
      expect(fs.readlinkSync(path.join(release, "node_modules/@scope/lib/alias.js"))).to.equal("index.js");
      const run = spawnSync(process.execPath, [path.join(release, manifest.entry)], { encoding: "utf8" });
      expect(run.stdout).to.equal("main\n");
    });

    it("gives the same bytes for the same inputs, whatever the files' mtimes", async () => {
      const a = await buildPackage({ dir, out: path.join(out, "det-a") });
      const later = new Date(Date.now() + 3600_000);
      fs.utimesSync(path.join(dir, "dist/src/main.js"), later, later);
      const b = await buildPackage({ dir, out: path.join(out, "det-b") });
      expect(b.sha256).to.equal(a.sha256);
      expect(fs.readFileSync(b.file).equals(fs.readFileSync(a.file))).to.equal(true);
    });

    it("takes the version label and extra includes from flags", async () => {
      write(path.join(dir, "static/index.html"), "<p>hi</p>\n");
      const res = await buildPackage({ dir, out: path.join(out, "pk3"), version: "2024.1-rc1", include: ["static"] });
      expect(path.basename(res.file)).to.equal("Demo.HelloServer-2024.1-rc1.tgz");
      expect(await entriesOf(res.file)).to.include("static/index.html");
      await buildPackage({ dir, version: "../x" }).then(() => expect.fail("accepted"), (err) => {
        expect(err).to.be.instanceOf(InvalidArgumentError);
        expect((err as Error).message).to.include('invalid version label "../x"');
      });
    });

    it("refuses a dependency that is a link out of the project", async () => {
      const linked = path.join(out, "linked");
      fakeNodeProject(linked);
      const elsewhere = path.join(out, "elsewhere-lib");
      write(path.join(elsewhere, "index.js"), "module.exports = 1;\n");
      fs.rmSync(path.join(linked, "node_modules/left"), { recursive: true });
      fs.symlinkSync(elsewhere, path.join(linked, "node_modules/left"));
      const err = await buildPackage({ dir: linked, out: path.join(out, "pk4") }).then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect((err as Error).message).to.match(/^node_modules\/left is a link .*install it from a tarball or a registry before packaging$/);
      expect(fs.existsSync(path.join(out, "pk4"))).to.equal(false);
    });

    it("says to build first when dist is missing", async () => {
      const unbuilt = path.join(out, "unbuilt");
      fakeNodeProject(unbuilt);
      fs.rmSync(path.join(unbuilt, "dist"), { recursive: true });
      const err = await buildPackage({ dir: unbuilt }).then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect((err as Error).message).to.match(/^dist does not exist in .*: build first \(npm run build\)$/);
    });
  });

  describe("a node project, bundled (the default)", () => {
    let dir: string;
    before(() => {
      dir = path.join(out, "bundled");
      fakeNodeProject(dir, "unset");
      // A package with a native addon (binding.gyp) cannot be inlined: it stays in node_modules, with what it depends on.
      write(path.join(dir, "node_modules/addon/package.json"), JSON.stringify({ name: "addon", version: "2.0.0", dependencies: { helper: "1" } }));
      write(path.join(dir, "node_modules/addon/binding.gyp"), "{}\n");
      write(path.join(dir, "node_modules/addon/index.js"), "module.exports = 'addon+' + require('helper');\n");
      write(path.join(dir, "node_modules/helper/package.json"), JSON.stringify({ name: "helper", version: "1.0.0" }));
      write(path.join(dir, "node_modules/helper/index.js"), "module.exports = 'helper';\n");
      const lockFile = path.join(dir, "node_modules/.package-lock.json");
      const lock = JSON.parse(fs.readFileSync(lockFile, "utf8")) as { packages: Record<string, unknown> };
      lock.packages["node_modules/addon"] = { version: "2.0.0" };
      lock.packages["node_modules/helper"] = { version: "1.0.0" };
      fs.writeFileSync(lockFile, JSON.stringify(lock));
      write(path.join(dir, "dist/src/main.js"), "const lib = require('./lib'); console.log('main ' + lib + ' ' + require('left') + ' ' + require('addon'));\n");
      write(path.join(dir, "dist/src/lib.js"), "module.exports = 'lib';\n");
    });

    it("holds the manifest, one bundle at the entry with its map and licences, package.json, and only the unbundlable packages", async () => {
      const res = await buildPackage({ dir, out: path.join(out, "b1") });
      expect(res.manifest).to.deep.equal({
        app: "Demo", server: "HelloServer", type: "node", entry: "dist/src/main.js", version: "1.2.3", framework: "0.1.0", sourceMaps: true,
      });
      expect(res.bundled).to.deep.equal(["left@1.0.0"]);
      const names = (await entriesOf(res.file)).map((n) => n.replace(/\/$/, ""));
      expect(names).to.deep.equal([
        "sgrid.json", "dist", "dist/src", "dist/src/THIRD-PARTY-LICENSES.txt", "dist/src/main.js", "dist/src/main.js.map",
        "node_modules", "node_modules/addon", "node_modules/addon/binding.gyp", "node_modules/addon/index.js", "node_modules/addon/package.json",
        "node_modules/helper", "node_modules/helper/index.js", "node_modules/helper/package.json", "package.json",
      ]);
    });

    it("runs from the release as the agent starts it, and gives the same bytes twice", async () => {
      const res = await buildPackage({ dir, out: path.join(out, "b2") });
      const again = await buildPackage({ dir, out: path.join(out, "b3") });
      expect(again.sha256).to.equal(res.sha256);
      const release = path.join(out, "bundled-release");
      fs.mkdirSync(release);
      await unpackPackage(res.file, release);
      const { manifest } = await readManifest(release, { app: "Demo", server: "HelloServer", type: "node" });
      const run = spawnSync(process.execPath, ["--enable-source-maps", path.join(release, manifest.entry)], { encoding: "utf8" });
      expect(run.stdout, run.stderr).to.equal("main lib left addon+helper\n");
    });

    it("keeps a package listed in bundleExternal unbundled; --no-bundle ships node_modules as installed", async () => {
      const cfg = JSON.parse(fs.readFileSync(path.join(dir, "sgrid.json"), "utf8")) as Record<string, unknown>;
      fs.writeFileSync(path.join(dir, "sgrid.json"), JSON.stringify({ ...cfg, bundleExternal: ["left"] }));
      try {
        const res = await buildPackage({ dir, out: path.join(out, "b4") });
        expect(res.bundled).to.deep.equal([]);
        expect(await entriesOf(res.file)).to.include.members(["node_modules/left/index.js", "node_modules/left/node_modules/inner/index.js"]);
      } finally {
        fs.writeFileSync(path.join(dir, "sgrid.json"), JSON.stringify(cfg));
      }
      const plain = await buildPackage({ dir, out: path.join(out, "b5"), bundle: false });
      expect(plain.bundled).to.equal(undefined);
      expect(plain.manifest.sourceMaps).to.equal(undefined);
      expect(await entriesOf(plain.file)).to.include.members(["dist/src/lib.js", "node_modules/sgridnext/index.js", "node_modules/left/index.js"]);
    });

    it("names what it cannot resolve, and says to build first when the entry is missing", async () => {
      write(path.join(dir, "dist/src/broken.js"), "require('not-installed');\n");
      const err = await buildPackage({ dir, entry: "dist/src/broken.js", out: path.join(out, "b6") }).then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect((err as Error).message).to.match(/^cannot bundle dist\/src\/broken\.js: .*not-installed/);
      expect(fs.existsSync(path.join(out, "b6"))).to.equal(false);
      const missing = await buildPackage({ dir, entry: "dist/src/nope.js" }).then(() => undefined, (e: unknown) => e);
      expect((missing as Error).message).to.match(/^entry dist\/src\/nope\.js does not exist in .*: build first \(npm run build\)$/);
    });
  });

  describe("a binary program", () => {
    let dir: string;
    before(() => {
      dir = path.join(out, "bin");
      write(path.join(dir, "bin/server"), "#!/bin/sh\nexec sleep 1000\n", 0o755);
      write(path.join(dir, "bin/lib/data.txt"), "data\n");
      write(path.join(dir, "notes.txt"), "not shipped\n");
    });

    it("packages the entry's folder with --name/--entry/--version, through the CLI", async () => {
      const res = spawnSync(process.execPath, [CLI, "package", "--dir", dir, "--name", "Demo.EchoServer", "--type", "binary", "--entry", "bin/server", "--version", "1.0.0", "--out", path.join(out, "pkb"), "--json"], { encoding: "utf8" });
      expect(res.status, res.stderr).to.equal(0);
      const info = JSON.parse(res.stdout) as { file: string; size: number; sha256: string; manifest: unknown };
      expect(info.file).to.equal(path.join(out, "pkb", "Demo.EchoServer-1.0.0.tgz"));
      expect(info.manifest).to.deep.equal({ app: "Demo", server: "EchoServer", type: "binary", entry: "bin/server", version: "1.0.0" });
      expect(await entriesOf(info.file)).to.deep.equal(["sgrid.json", "bin/", "bin/lib/", "bin/lib/data.txt", "bin/server"]);
      const release = path.join(out, "release-bin");
      fs.mkdirSync(release);
      await unpackPackage(info.file, release);
      const { manifest } = await readManifest(release, { app: "Demo", server: "EchoServer", type: "binary" });
      expect(manifest.entry).to.equal("bin/server");
      expect(fs.statSync(path.join(release, "bin/server")).mode & 0o111).to.not.equal(0);
    });

    it("prints path, size and sha256 for people", () => {
      const res = spawnSync(process.execPath, [CLI, "package", "--dir", dir, "--name", "Demo.EchoServer", "--entry", "bin/server", "--version", "1.0.1", "--out", path.join(out, "pkc")], { encoding: "utf8" });
      expect(res.status, res.stderr).to.equal(0);
      expect(res.stdout).to.match(/^.*Demo\.EchoServer-1\.0\.1\.tgz\n {2}size {3}\d+ bytes \(.*\), 5 entries\n {2}sha256 [0-9a-f]{64}\n {2}Demo\.EchoServer binary entry=bin\/server version=1\.0\.1\n$/);
    });

    it("refuses a link out of the tree, a non-executable entry, an entry not included, and a missing name", async () => {
      const reject = (p: Promise<unknown>) => p.then(() => expect.fail("accepted"), (e: unknown) => e as Error);
      fs.symlinkSync("/etc/passwd", path.join(dir, "bin/passwd"));
      let err = await reject(buildPackage({ dir, name: "Demo.EchoServer", entry: "bin/server", version: "x1" }));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect(err.message).to.equal("bin/passwd is a link to /etc/passwd, outside the project; packages hold no links out of their tree");
      fs.rmSync(path.join(dir, "bin/passwd"));

      fs.chmodSync(path.join(dir, "bin/server"), 0o644);
      err = await reject(buildPackage({ dir, name: "Demo.EchoServer", entry: "bin/server", version: "x1" }));
      expect(err.message).to.equal("entry bin/server of a binary server is not executable (chmod +x bin/server)");
      fs.chmodSync(path.join(dir, "bin/server"), 0o755);

      const partial = path.join(out, "partial");
      write(path.join(partial, "bin/server"), "#!/bin/sh\n", 0o755);
      write(path.join(partial, "bin/lib/data.txt"), "data\n");
      write(path.join(partial, "sgrid.json"), JSON.stringify({ app: "Demo", server: "EchoServer", type: "binary", entry: "bin/server", include: ["bin/lib"] }));
      err = await reject(buildPackage({ dir: partial, version: "x1" }));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect(err.message).to.equal("entry bin/server is not among the packaged files (include it: --include bin)");

      err = await reject(buildPackage({ dir, name: "Demo.EchoServer", entry: "../outside", version: "x1" }));
      expect(err).to.be.instanceOf(InvalidArgumentError);
      expect(err.message).to.equal('entry "../outside" must be a path inside the project');

      err = await reject(buildPackage({ dir, entry: "bin/server", version: "x1" }));
      expect(err).to.be.instanceOf(InvalidArgumentError);
      expect(err.message).to.match(/has no sgrid\.json with "app" and "server"; pass --name <App>\.<Server>$/);
      expect(fs.readdirSync(dir).filter((f) => f.endsWith(".tgz") || f.endsWith(".tmp"))).to.deep.equal([]);
    });
  });
});
