import { expect } from "chai";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  ReleaseManager, PackageUnsafeError, PackageTooLargeError, PackageCorruptError, PackageManifestError,
  ReleaseNotFoundError, resolveLinkTarget, unpackPackage, removeTree, PackageCache, streamPackage, type PackageFetcher,
} from "../../nodeagent/install";
import { InvalidArgumentError, SgridError } from "sgridnext";
import { writePackage, writeRawPackage, writeGzipBomb, buildTar, type RawEntry } from "../fixtures/packages/tar-builder";

const MANIFEST = JSON.stringify({ app: "Demo", server: "HelloServer", type: "node", entry: "main.js", version: "1.0.0" });

function manifest(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ app: "Demo", server: "HelloServer", type: "node", entry: "main.js", ...extra });
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected the promise to reject");
}

describe("nodeagent/install: ReleaseManager", () => {
  let tmp: string;
  let pkgs: string;
  let rm: ReleaseManager;

  /** The package at `file` as the agent gets it: downloaded in 4 KiB chunks into a package cache and unpacked as it arrives. */
  function downloading(file: string) {
    const bytes = fs.readFileSync(file);
    const cache = new PackageCache({ dataDir: path.join(tmp, "data") });
    const fetch: PackageFetcher = async function* (_sha, offset) {
      for (let i = offset; i < bytes.length; i += 4096) yield bytes.subarray(i, i + 4096);
    };
    return streamPackage(cache, { sha256: crypto.createHash("sha256").update(bytes).digest("hex"), size: bytes.length }, fetch);
  }

  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sgrid-install-"));
    pkgs = path.join(tmp, "pkgs");
    fs.mkdirSync(pkgs);
    rm = new ReleaseManager({ dataDir: path.join(tmp, "data"), app: "Demo", server: "HelloServer", limits: { maxBytes: 1024 * 1024, maxEntries: 50 } });
  });

  afterEach(async () => {
    await removeTree(tmp);
  });

  it("installs a package into releases/<version>, activates it read-only, and keeps data/ across versions", async () => {
    const p1 = await writePackage(pkgs, "v1.tgz", {
      "sgrid.json": MANIFEST,
      "main.js": "console.log('v1')",
      "lib/util.js": "module.exports = 1",
      "lib/alias.js": { symlink: "util.js" },
      "bin/tool": { content: "#!/bin/sh\necho hi\n", mode: 0o755 },
    });
    const r1 = await rm.install("1.0.0", p1);
    expect(r1.alreadyInstalled).to.equal(false);
    expect(r1.manifest).to.deep.equal({ app: "Demo", server: "HelloServer", type: "node", entry: "main.js", version: "1.0.0" });
    expect(r1.dir).to.equal(path.join(tmp, "data", "servers", "Demo.HelloServer", "releases", "1.0.0"));
    expect(fs.readFileSync(path.join(r1.dir, "lib/alias.js"), "utf8")).to.equal("module.exports = 1");
    expect(fs.statSync(path.join(r1.dir, "bin/tool")).mode & 0o111).to.not.equal(0);
    for (const d of [rm.dataDir, rm.confDir, rm.logDir]) expect(fs.statSync(d).isDirectory()).to.equal(true);
    expect(await rm.current()).to.equal(null);

    await rm.activate("1.0.0");
    expect(await rm.current()).to.equal("1.0.0");
    expect(fs.readlinkSync(rm.currentLink)).to.equal(path.join("releases", "1.0.0"));
    expect(fs.readFileSync(path.join(rm.currentLink, "main.js"), "utf8")).to.equal("console.log('v1')");
    expect(fs.statSync(path.join(r1.dir, "main.js")).mode & 0o222, "files read-only").to.equal(0);
    expect(fs.statSync(r1.dir).mode & 0o222, "dirs read-only").to.equal(0);

    fs.writeFileSync(path.join(rm.dataDir, "state.db"), "kept");
    const p2 = await writePackage(pkgs, "v2.tgz", { "sgrid.json": manifest({ version: "2.0.0" }), "main.js": "console.log('v2')" });
    await rm.install("2.0.0", p2);
    await rm.activate("2.0.0");
    expect(await rm.current()).to.equal("2.0.0");
    expect(fs.readFileSync(path.join(rm.currentLink, "main.js"), "utf8")).to.equal("console.log('v2')");
    expect(fs.readFileSync(path.join(rm.dataDir, "state.db"), "utf8")).to.equal("kept");
    expect(fs.readdirSync(rm.releasesDir).sort()).to.deep.equal(["1.0.0", "2.0.0"]);

    const again = await rm.install("1.0.0", p2);
    expect(again.alreadyInstalled, "a version names one package: reinstalling is a no-op").to.equal(true);
    expect(again.manifest.version).to.equal("1.0.0");
  });

  it("accepts directories, the root entry, hard links and links inside the release, and long (pax) names", async () => {
    const long = `${"d".repeat(90)}/${"e".repeat(90)}/file.js`;
    const file = writeRawPackage(pkgs, "rich.tgz", [
      { name: "./", type: "5" },
      { name: "sgrid.json", body: manifest({ type: "binary", entry: "bin/run" }) },
      { name: "main.js", body: "1" },
      { name: "src/", type: "5", mode: 0o4777 },
      { name: "src/real", body: "#!/bin/sh\necho ok\n", mode: 0o6755 },
      { name: "bin/run", type: "1", linkname: "src/real" },
      { name: "src/", type: "5" },
      { name: "lib/cur", type: "2", linkname: "../src" },
    ]);
    const r = await rm.install("rich", file);
    expect(r.manifest.type).to.equal("binary");
    expect(fs.statSync(path.join(r.dir, "bin/run")).ino).to.equal(fs.statSync(path.join(r.dir, "src/real")).ino);
    expect(fs.readFileSync(path.join(r.dir, "lib/cur/real"), "utf8")).to.contain("echo ok");
    expect(fs.statSync(path.join(r.dir, "src/real")).mode & 0o7777, "no setuid/setgid").to.equal(0o755);
    expect(fs.statSync(path.join(r.dir, "src")).mode & 0o7777).to.equal(0o755);

    const p = await writePackage(pkgs, "long.tgz", { "sgrid.json": manifest({ entry: long }), "main.js": "1", [long]: "deep" });
    const r2 = await rm.install("long", p);
    expect(fs.readFileSync(path.join(r2.dir, long), "utf8")).to.equal("deep");
  });

  it("falls back to package.json main for a node package without sgrid.json", async () => {
    const p = await writePackage(pkgs, "npm.tgz", { "package.json": JSON.stringify({ name: "x", version: "3.1.0", main: "dist/index.js" }), "dist/index.js": "1" });
    const r = await rm.install("3.1.0", p);
    expect(r.source).to.equal("package.json");
    expect(r.manifest).to.deep.equal({ app: "Demo", server: "HelloServer", type: "node", entry: "dist/index.js", version: "3.1.0" });
  });

  it("refuses manifests that name another server, a missing entry, a non-executable binary or the wrong type", async () => {
    const cases: [Record<string, unknown>, Record<string, string | { content: string; mode: number }>, RegExp, { type?: "java" }?][] = [
      [{ server: "OtherServer" }, { "main.js": "1" }, /for Demo\.OtherServer, not Demo\.HelloServer/],
      [{ entry: "missing.js" }, { "main.js": "1" }, /entry "missing\.js" does not exist/],
      [{ type: "binary", entry: "run" }, { run: { content: "#!/bin/sh\n", mode: 0o644 } }, /not executable/],
      [{ type: "potato" }, { "main.js": "1" }, /sgrid\.json is invalid/],
      [{ entry: "../main.js" }, { "main.js": "1" }, /sgrid\.json is invalid/],
      [{}, { "main.js": "1" }, /type node, but the server is of type java/, { type: "java" }],
    ];
    let i = 0;
    for (const [m, files, re, opts] of cases) {
      const p = await writePackage(pkgs, `m${i}.tgz`, { "sgrid.json": manifest(m), ...files });
      const err = await rejection(rm.install(`m${i++}`, p, opts));
      expect(err, re.source).to.be.instanceOf(PackageManifestError);
      expect(err.message).to.match(re);
    }
    const none = await writePackage(pkgs, "none.tgz", { "main.js": "1" });
    expect((await rejection(rm.install("none", none))).message).to.match(/neither sgrid\.json nor package\.json/);
    expect(fs.readdirSync(rm.releasesDir)).to.deep.equal([]);
  });

  describe("hostile packages are refused with the running release untouched", () => {
    const evilName = `sgrid-evil-${process.pid}`;
    const hostile: [string, RawEntry[] | (() => Promise<string> | string), new (...a: any[]) => SgridError, RegExp][] = [
      ["an absolute path", [{ name: path.join(os.tmpdir(), evilName), body: "x" }], PackageUnsafeError, /is an absolute path/],
      ["a ../ entry", [{ name: `../${evilName}`, body: "x" }], PackageUnsafeError, /has a "\.\." segment/],
      ["a nested ../ entry", [{ name: "a/b/../../../x", body: "x" }], PackageUnsafeError, /"\.\." segment/],
      ["a symlink to /etc", [{ name: "etc", type: "2", linkname: "/etc" }], PackageUnsafeError, /"etc" -> "\/etc" is absolute/],
      ["a relative symlink out", [{ name: "d/up", type: "2", linkname: "../../.." }], PackageUnsafeError, /points outside the release/],
      ["a chain of links that escapes", [
        { name: "a", type: "2", linkname: "." },
        { name: "b", type: "2", linkname: "a/.." },
      ], PackageUnsafeError, /"b" -> "a\/\.\." points outside/],
      ["a link made harmful by a later link", [
        { name: "b", type: "2", linkname: "y/.." },
        { name: "y", type: "2", linkname: "." },
      ], PackageUnsafeError, /"b" -> "y\/\.\." points outside/],
      ["a link loop", [{ name: "l1", type: "2", linkname: "l2/x" }, { name: "l2", type: "2", linkname: "l1/x" }], PackageUnsafeError, /loops/],
      ["a hard link to /etc/passwd", [{ name: "pw", type: "1", linkname: "/etc/passwd" }], PackageUnsafeError, /absolute path/],
      ["a hard link out by ..", [{ name: "pw", type: "1", linkname: "../../../../etc/passwd" }], PackageUnsafeError, /"\.\." segment/],
      ["a hard link to nothing unpacked", [{ name: "pw", type: "1", linkname: "etc/passwd" }], PackageUnsafeError, /does not name a file unpacked earlier/],
      ["an entry written through a symlink", [
        { name: "sub/", type: "5" },
        { name: "lnk", type: "2", linkname: "sub" },
        { name: "lnk/evil", body: "x" },
      ], PackageUnsafeError, /passes through the symbolic link "lnk"/],
      ["a char device", [{ name: "null", type: "3", devmajor: 1, devminor: 3 }], PackageUnsafeError, /device file/],
      ["a block device", [{ name: "vda", type: "4", devmajor: 253, devminor: 0 }], PackageUnsafeError, /device file/],
      ["a fifo", [{ name: "pipe", type: "6" }], PackageUnsafeError, /is a fifo/],
      ["a duplicate entry", [{ name: "main.js", body: "1" }], PackageUnsafeError, /appears twice/],
      ["an unknown entry type", [{ name: "acl", type: "A", body: "x" }], PackageUnsafeError, /unsupported type/],
      ["too many entries", Array.from({ length: 60 }, (_, i) => ({ name: `f${i}`, body: "x" })), PackageTooLargeError, /more than 50 entries/],
      ["a file declared larger than the limit", [{ name: "big", body: Buffer.alloc(4096), size: 64 * 1024 * 1024 }], PackageTooLargeError, /more than 1048576 bytes/],
      ["files adding up over the limit", Array.from({ length: 5 }, (_, i) => ({ name: `f${i}`, body: Buffer.alloc(300 * 1024) })), PackageTooLargeError, /at entry "f3"/],
      ["a gzip bomb", () => writeGzipBomb(pkgs, "bomb.tgz", 64, [{ name: "sgrid.json", body: MANIFEST }]), PackageTooLargeError, /tar stream is larger than/],
      ["a corrupt gzip stream", async () => {
        const good = await writePackage(pkgs, "c.tgz", { "sgrid.json": MANIFEST, "main.js": "x".repeat(20000) });
        const buf = fs.readFileSync(good);
        for (let i = 20; i < buf.length - 10; i += 7) buf[i] ^= 0x5a;
        fs.writeFileSync(good, buf);
        return good;
      }, PackageCorruptError, /not a valid (gzip stream|tar archive)/],
      ["a truncated gzip stream", async () => {
        const good = await writePackage(pkgs, "t.tgz", { "sgrid.json": MANIFEST, "main.js": "x".repeat(20000) });
        const buf = fs.readFileSync(good);
        fs.writeFileSync(good, buf.subarray(0, buf.length >> 1));
        return good;
      }, PackageCorruptError, /not a valid gzip stream/],
      ["a tar with a bad header checksum", () => {
        const t = buildTar([{ name: "sgrid.json", body: MANIFEST }, { name: "main.js", body: "1" }]);
        t[0] = "z".charCodeAt(0);
        const f = path.join(pkgs, "cks.tar");
        fs.writeFileSync(f, t);
        return f;
      }, PackageCorruptError, /checksum/],
      ["something that is not a package", () => {
        const f = path.join(pkgs, "junk.tgz");
        fs.writeFileSync(f, "this is not a tarball at all, just text");
        return f;
      }, PackageCorruptError, /not a valid tar archive/],
    ];

    for (const [what, spec, cls, re] of hostile) for (const via of ["file", "download"] as const) {
      it(`refuses ${what}${via === "download" ? " (unpacked while it downloads)" : ""}`, async () => {
        const good = await writePackage(pkgs, "good.tgz", { "sgrid.json": MANIFEST, "main.js": "console.log('good')" });
        await rm.install("1.0.0", good);
        await rm.activate("1.0.0");
        const before = fs.readdirSync(rm.releasesDir).sort();
        const serverBefore = fs.readdirSync(rm.serverDir).sort();

        const file = typeof spec === "function"
          ? await spec()
          : writeRawPackage(pkgs, "hostile.tgz", [{ name: "sgrid.json", body: MANIFEST }, { name: "main.js", body: "1" }, ...spec]);
        const err = await rejection(rm.install("2.0.0", via === "file" ? file : downloading(file)));
        expect(err, `${what}: ${err.message}`).to.be.instanceOf(cls);
        expect(err.message).to.match(re);

        expect(fs.readdirSync(rm.releasesDir).sort(), "nothing new in releases/").to.deep.equal(before);
        expect(fs.readdirSync(rm.serverDir).sort(), "nothing new next to releases/").to.deep.equal(serverBefore);
        expect(await rm.current(), "current untouched").to.equal("1.0.0");
        expect(fs.readFileSync(path.join(rm.currentLink, "main.js"), "utf8")).to.equal("console.log('good')");
        expect(fs.existsSync(path.join(os.tmpdir(), evilName))).to.equal(false);
        expect(fs.existsSync(path.join(rm.serverDir, "..", evilName))).to.equal(false);
      });
    }
  });

  it("stops a gzip bomb while streaming, long before its end", async () => {
    const bomb = await writeGzipBomb(pkgs, "bomb.tgz", 64, [{ name: "sgrid.json", body: MANIFEST }]);
    expect(fs.statSync(bomb).size).to.be.lessThan(1024 * 1024);
    const dest = fs.mkdtempSync(path.join(tmp, "dest-"));
    const err = await rejection(unpackPackage(bomb, dest, { maxBytes: 1024 * 1024, maxEntries: 10 }));
    expect(err).to.be.instanceOf(PackageTooLargeError);
    const data = (err as SgridError).data as { readBytes: number; limitBytes: number };
    expect(data.readBytes).to.be.greaterThan(data.limitBytes);
    expect(data.readBytes, "stopped within about one chunk of the cap").to.be.lessThan(data.limitBytes + 1024 * 1024);
  });

  it("refuses a file whose declared size is over the limit before writing any of it", async () => {
    const file = writeRawPackage(pkgs, "big.tgz", [{ name: "big", body: Buffer.alloc(512), size: 10 * 1024 * 1024 }]);
    const dest = fs.mkdtempSync(path.join(tmp, "dest-"));
    const err = await rejection(unpackPackage(file, dest, { maxBytes: 1024 * 1024, maxEntries: 10 }));
    expect(err).to.be.instanceOf(PackageTooLargeError);
    expect(fs.readdirSync(dest)).to.deep.equal([]);
  });

  it("activate refuses a version that is not installed, and bad versions never become paths", async () => {
    expect(await rejection(rm.activate("9.9.9"))).to.be.instanceOf(ReleaseNotFoundError);
    for (const bad of ["..", "../x", "a/b", "", ".hidden"]) {
      expect(await rejection(rm.install(bad, "/nonexistent")), bad).to.be.instanceOf(InvalidArgumentError);
    }
    expect(() => new ReleaseManager({ dataDir: tmp, app: "../x", server: "S" })).to.throw(InvalidArgumentError);
  });

  it("prune keeps the last N releases plus current and what the caller protects", async () => {
    const p = await writePackage(pkgs, "p.tgz", { "sgrid.json": MANIFEST, "main.js": "1" });
    const t0 = Date.now() / 1000 - 1000;
    for (let i = 1; i <= 7; i++) {
      await rm.install(`v${i}`, p);
      fs.utimesSync(rm.releaseDir(`v${i}`), t0 + i, t0 + i);
    }
    await rm.activate("v3"); // read-only from now on: prune must still be able to remove it
    await rm.activate("v2");
    fs.utimesSync(rm.releaseDir("v2"), t0 + 2, t0 + 2);
    fs.utimesSync(rm.releaseDir("v3"), t0 + 3, t0 + 3);
    fs.mkdirSync(path.join(rm.releasesDir, ".tmp-v8-stale"));
    const removed = await rm.prune(3, ["v1"]);
    expect(removed.sort()).to.deep.equal(["v3", "v4"]);
    expect(fs.readdirSync(rm.releasesDir).sort()).to.deep.equal(["v1", "v2", "v5", "v6", "v7"]);
    expect(await rm.current()).to.equal("v2");
    expect(await rm.prune(0)).to.deep.equal(["v7", "v6", "v5", "v1"]);
    expect(fs.readdirSync(rm.releasesDir)).to.deep.equal(["v2"]);
    expect(() => rm.prune(-1)).to.throw(TypeError);
  });
});

describe("nodeagent/install: resolveLinkTarget", () => {
  it("follows links of the package the way the kernel would", () => {
    const links = new Map([["a", "."], ["lib/cur", "../src"], ["deep/x", "../../.."]]);
    expect(resolveLinkTarget(["lib"], "cur/main.js", links)).to.deep.equal({ ok: true, parts: ["src", "main.js"] });
    expect(resolveLinkTarget([], "a/a/a/x", links)).to.deep.equal({ ok: true, parts: ["x"] });
    expect(resolveLinkTarget([], "a/..", links)).to.deep.equal({ ok: false, reason: "outside" });
    expect(resolveLinkTarget([], "deep/x", links)).to.deep.equal({ ok: false, reason: "outside" });
    expect(resolveLinkTarget([], "/etc", links)).to.deep.equal({ ok: false, reason: "absolute" });
    expect(resolveLinkTarget([], "l", new Map([["l", "l"]]))).to.deep.equal({ ok: false, reason: "loop" });
  });
});
