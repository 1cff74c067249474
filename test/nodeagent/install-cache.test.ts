import { expect } from "chai";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  PackageCache, PackageChecksumError, PackageDownloadError, PackageSizeError, ReleaseManager, removeTree, streamPackage, type PackageFetcher,
} from "../../nodeagent/install";
import { waitFor } from "../helpers/wait";
import { InvalidArgumentError } from "sgridnext";
import { writePackage } from "../fixtures/packages/tar-builder";

function sha256(buf: Buffer): string {
  return crypto.createHash("sha256").update(buf).digest("hex");
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected the promise to reject");
}

/** Serves a real file from disk from `offset`, in small chunks; records the offsets asked for. */
function fileFetcher(file: string, calls: number[], opts: { failAfter?: number } = {}): PackageFetcher {
  return async function* (_sha, offset) {
    calls.push(offset);
    let sent = 0;
    for await (const chunk of fs.createReadStream(file, { start: offset, highWaterMark: 4096 })) {
      const buf = chunk as Buffer;
      if (opts.failAfter !== undefined && sent + buf.length > opts.failAfter) {
        yield buf.subarray(0, opts.failAfter - sent);
        throw new Error("connection reset by peer");
      }
      sent += buf.length;
      yield buf;
    }
  };
}

describe("nodeagent/install: PackageCache", () => {
  let tmp: string;
  let pkg: string;
  let bytes: Buffer;
  let cache: PackageCache;

  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sgrid-cache-"));
    pkg = path.join(tmp, "upload.tgz");
    bytes = crypto.randomBytes(100_000);
    fs.writeFileSync(pkg, bytes);
    cache = new PackageCache({ dataDir: path.join(tmp, "data") });
  });

  afterEach(async () => {
    await removeTree(tmp);
  });

  it("downloads, verifies, stores by sha256 and serves the next call from disk", async () => {
    const calls: number[] = [];
    const ref = { sha256: sha256(bytes), size: bytes.length };
    const p = await cache.ensure(ref, fileFetcher(pkg, calls));
    expect(p).to.equal(path.join(tmp, "data", "cache", `${ref.sha256}.tgz`));
    expect(fs.readFileSync(p).equals(bytes)).to.equal(true);
    expect(await cache.has(ref.sha256)).to.equal(true);
    expect(await cache.ensure(ref, fileFetcher(pkg, calls))).to.equal(p);
    expect(calls).to.deep.equal([0]);
    expect(await cache.list()).to.deep.equal([ref]);
  });

  it("resumes an interrupted download from the bytes already on disk", async () => {
    const calls: number[] = [];
    const ref = { sha256: sha256(bytes), size: bytes.length };
    const err = await rejection(cache.ensure(ref, fileFetcher(pkg, calls, { failAfter: 30_000 })));
    expect(err).to.be.instanceOf(PackageDownloadError);
    expect((err as PackageDownloadError).retryable).to.equal(true);
    expect(err.message).to.match(/after 30000 of 100000 bytes: connection reset by peer/);
    expect(fs.statSync(path.join(cache.dir, `${ref.sha256}.partial`)).size).to.equal(30_000);
    expect(await cache.has(ref.sha256)).to.equal(false);

    const p = await cache.ensure(ref, fileFetcher(pkg, calls));
    expect(calls).to.deep.equal([0, 30_000]);
    expect(fs.readFileSync(p).equals(bytes)).to.equal(true);
    expect(fs.readdirSync(cache.dir)).to.deep.equal([`${ref.sha256}.tgz`]);
  });

  it("refuses a wrong sha256 with a clear error and keeps nothing", async () => {
    const wrong = sha256(Buffer.from("something else"));
    const err = await rejection(cache.ensure({ sha256: wrong, size: bytes.length }, fileFetcher(pkg, [])));
    expect(err).to.be.instanceOf(PackageChecksumError);
    expect(err.message).to.contain(`expected sha256 ${wrong}, got ${sha256(bytes)}`);
    expect(fs.readdirSync(cache.dir)).to.deep.equal([]);
  });

  it("starts again from zero when resumed bytes turn out corrupt", async () => {
    const ref = { sha256: sha256(bytes), size: bytes.length };
    fs.mkdirSync(cache.dir, { recursive: true });
    fs.writeFileSync(path.join(cache.dir, `${ref.sha256}.partial`), Buffer.alloc(5000, 7));
    const calls: number[] = [];
    expect(await rejection(cache.ensure(ref, fileFetcher(pkg, calls)))).to.be.instanceOf(PackageChecksumError);
    expect(fs.readdirSync(cache.dir)).to.deep.equal([]);
    await cache.ensure(ref, fileFetcher(pkg, calls));
    expect(calls).to.deep.equal([5000, 0]);
  });

  it("discards a download larger than announced, and keeps one that ended early for resuming", async () => {
    const small = { sha256: sha256(bytes.subarray(0, 1000)), size: 1000 };
    expect(await rejection(cache.ensure(small, fileFetcher(pkg, [])))).to.be.instanceOf(PackageSizeError);
    expect(fs.readdirSync(cache.dir)).to.deep.equal([]);

    const big = { sha256: sha256(Buffer.concat([bytes, bytes])), size: bytes.length * 2 };
    const err = await rejection(cache.ensure(big, fileFetcher(pkg, [])));
    expect(err).to.be.instanceOf(PackageDownloadError);
    expect(err.message).to.match(/ended early: 100000 of 200000 bytes/);
    expect(fs.readdirSync(cache.dir)).to.deep.equal([`${big.sha256}.partial`]);
  });

  it("shares one download between concurrent callers, and refuses a malformed sha256", async () => {
    const calls: number[] = [];
    const ref = { sha256: sha256(bytes).toUpperCase(), size: bytes.length };
    const [a, b] = await Promise.all([cache.ensure(ref, fileFetcher(pkg, calls)), cache.ensure(ref, fileFetcher(pkg, calls))]);
    expect(a).to.equal(b);
    expect(calls).to.deep.equal([0]);
    expect(await rejection(cache.ensure({ sha256: "../../etc/passwd", size: 1 }, fileFetcher(pkg, [])))).to.be.instanceOf(InvalidArgumentError);
    expect(await cache.prune([])).to.deep.equal([sha256(bytes)]);
    expect(await cache.list()).to.deep.equal([]);
  });

  it("feeds a verified package to the release manager", async () => {
    const tgz = await writePackage(tmp, "real.tgz", {
      "sgrid.json": JSON.stringify({ app: "Demo", server: "HelloServer", type: "node", entry: "main.js" }),
      "main.js": "console.log(1)",
    });
    const buf = fs.readFileSync(tgz);
    const cached = await cache.ensure({ sha256: sha256(buf), size: buf.length }, fileFetcher(tgz, []));
    const rm = new ReleaseManager({ dataDir: path.join(tmp, "data"), app: "Demo", server: "HelloServer" });
    const r = await rm.install("1", cached);
    expect(fs.readFileSync(path.join(r.dir, "main.js"), "utf8")).to.equal("console.log(1)");
  });

  describe("unpacked while it downloads (streamPackage)", () => {
    let tgz: string;
    let buf: Buffer;
    let ref: { sha256: string; size: number };
    let rm: ReleaseManager;
    const payload = crypto.randomBytes(512 * 1024);

    beforeEach(async () => {
      tgz = await writePackage(tmp, "real.tgz", {
        "sgrid.json": JSON.stringify({ app: "Demo", server: "HelloServer", type: "node", entry: "main.js" }),
        "main.js": "console.log(1)",
        "payload.bin": payload,
      });
      buf = fs.readFileSync(tgz);
      ref = { sha256: sha256(buf), size: buf.length };
      rm = new ReleaseManager({ dataDir: path.join(tmp, "data"), app: "Demo", server: "HelloServer" });
    });

    /** The unpack in progress next to releases/ (none once accepted or refused). */
    const unpacking = () => fs.readdirSync(rm.releasesDir).filter((n) => n.startsWith(".tmp-"));

    it("unpacks as the bytes arrive, accepts the release only once the last one is verified, and keeps the package in the cache", async () => {
      let seenEarly: string[] = [];
      const fetch: PackageFetcher = async function* (_sha, offset) {
        const last = buf.length - 1024;
        for (let i = offset; i < last; i += 16 * 1024) yield buf.subarray(i, Math.min(i + 16 * 1024, last));
        // Before the last bytes: the files before payload.bin are unpacked already, and nothing is accepted.
        await waitFor("main.js unpacked before the download ends", () => unpacking().some((d) => fs.existsSync(path.join(rm.releasesDir, d, "main.js"))), 10_000, 5);
        seenEarly = fs.readdirSync(rm.releasesDir);
        yield buf.subarray(last);
      };
      const r = await rm.install("1", streamPackage(cache, ref, fetch));
      expect(seenEarly.filter((n) => !n.startsWith(".tmp-")), "no release accepted before the last byte").to.deep.equal([]);
      expect(fs.readFileSync(path.join(r.dir, "main.js"), "utf8")).to.equal("console.log(1)");
      expect(fs.readFileSync(path.join(r.dir, "payload.bin")).equals(payload)).to.equal(true);
      expect(fs.readFileSync(cache.pathFor(ref.sha256)).equals(buf)).to.equal(true);
      expect(unpacking()).to.deep.equal([]);
    });

    it("refuses bytes damaged on the way as a checksum mismatch, not as a bad package, and keeps nothing", async () => {
      const damaged = Buffer.from(buf);
      for (let i = 2048; i < 4096; i++) damaged[i] ^= 0xff;
      const fetch: PackageFetcher = async function* (_sha, offset) {
        for (let i = offset; i < damaged.length; i += 16 * 1024) yield damaged.subarray(i, i + 16 * 1024);
      };
      const err = await rejection(rm.install("1", streamPackage(cache, ref, fetch)));
      expect(err, err.message).to.be.instanceOf(PackageChecksumError);
      expect(err.message).to.match(/checksum mismatch: expected sha256/);
      expect(fs.readdirSync(rm.releasesDir)).to.deep.equal([]);
      expect(fs.readdirSync(cache.dir)).to.deep.equal([]);
    });

    it("keeps a download cut off for resuming, with no release; the next install resumes it and unpacks every byte", async () => {
      const calls: number[] = [];
      const err = await rejection(rm.install("1", streamPackage(cache, ref, fileFetcher(tgz, calls, { failAfter: 200_000 }))));
      expect(err).to.be.instanceOf(PackageDownloadError);
      expect((err as PackageDownloadError).retryable).to.equal(true);
      expect(fs.readdirSync(rm.releasesDir)).to.deep.equal([]);
      expect(fs.statSync(path.join(cache.dir, `${ref.sha256}.partial`)).size).to.equal(200_000);
      const r = await rm.install("1", streamPackage(cache, ref, fileFetcher(tgz, calls)));
      expect(calls).to.deep.equal([0, 200_000]);
      expect(fs.readFileSync(path.join(r.dir, "payload.bin")).equals(payload)).to.equal(true);
    });

    it("reads a package the cache holds already from its file, without fetching", async () => {
      await cache.ensure(ref, fileFetcher(tgz, []));
      const never: PackageFetcher = () => {
        throw new Error("fetched a cached package");
      };
      const r = await rm.install("1", streamPackage(cache, ref, never));
      expect(fs.readFileSync(path.join(r.dir, "payload.bin")).equals(payload)).to.equal(true);
    });

    it("a release already installed: the download still ends verified in the cache, and nothing waits for a reader", async () => {
      await rm.install("1", streamPackage(cache, ref, fileFetcher(tgz, [])));
      const other = new PackageCache({ dataDir: path.join(tmp, "data2") });
      const pkg = streamPackage(other, ref, fileFetcher(tgz, []));
      const again = await rm.install("1", pkg);
      expect(again.alreadyInstalled).to.equal(true);
      expect(await pkg.verified).to.equal(other.pathFor(ref.sha256));
    });
  });
});
