/**
 * LocalDiskStorage: content-addressed packages on disk. Checks what an
 * operator would look for: the bytes come back exactly (also from an
 * offset), bad input is refused with the right code and leaves nothing
 * behind, reading stops as soon as too many bytes arrive, and no key can
 * reach outside the storage directory.
 */
import { expect } from "chai";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { InvalidArgumentError, NotFoundError, Status } from "sgridnext";
import {
  LocalDiskStorage, PatchChecksumMismatchError, PatchOffsetOutOfRangeError, PatchSizeMismatchError, PatchTooLargeError,
} from "../../registry/services";
import { rejects } from "./helpers/db";

const sha = (b: Buffer) => crypto.createHash("sha256").update(b).digest("hex");

async function readAll(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** A source of `chunks` chunks of `size` bytes, counting how many were pulled. */
function counted(chunkSize: number, chunks = Infinity): { source: Readable; pulled: () => number } {
  let n = 0;
  const source = Readable.from((function* () {
    while (n < chunks) {
      n++;
      yield crypto.randomBytes(chunkSize);
    }
  })());
  return { source, pulled: () => n };
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else out.push(path.relative(dir, path.join(d, e.name)));
    }
  };
  walk(dir);
  return out.sort();
}

describe("registry storage: LocalDiskStorage", () => {
  let dir: string;
  let storage: LocalDiskStorage;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "sgrid-storage-"));
    storage = new LocalDiskStorage(dir);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("stores a stream under its sha256 with a two-level fan-out and gives the same bytes back", async () => {
    const data = crypto.randomBytes(300_000);
    const key = sha(data);
    const res = await storage.put(Readable.from([data.subarray(0, 1000), data.subarray(1000)]), { sha256: key.toUpperCase(), size: data.length, maxBytes: 1 << 20 });
    expect(res).to.deep.equal({ key, size: data.length });
    expect(filesUnder(dir)).to.deep.equal([path.join(key.slice(0, 2), key.slice(2, 4), key)]);
    expect(await storage.has(key)).to.equal(true);
    expect(sha(await readAll(await storage.get(key)))).to.equal(key);
  });

  it("reads from an offset (resume), and an offset equal to the size gives no bytes", async () => {
    const data = crypto.randomBytes(100_000);
    const { key } = await storage.put(Readable.from([data]), { sha256: sha(data), size: data.length, maxBytes: data.length });
    expect((await readAll(await storage.get(key, 12_345))).equals(data.subarray(12_345))).to.equal(true);
    expect((await readAll(await storage.get(key, data.length))).length).to.equal(0);
    const err = await rejects(storage.get(key, data.length + 1));
    expect(err).to.be.instanceOf(PatchOffsetOutOfRangeError);
    expect(err.status).to.equal(Status.OUT_OF_RANGE);
    expect(err.message).to.include(key).and.include(String(data.length + 1));
  });

  it("refuses a sha256 mismatch with both hashes and keeps nothing", async () => {
    const data = crypto.randomBytes(5000);
    const wrong = sha(Buffer.from("something else"));
    const err = await rejects(storage.put(Readable.from([data]), { sha256: wrong, size: data.length, maxBytes: 1 << 20 }));
    expect(err).to.be.instanceOf(PatchChecksumMismatchError);
    expect(err.status).to.equal(Status.INVALID_ARGUMENT);
    expect(err.message).to.include(wrong).and.include(sha(data));
    expect(filesUnder(dir)).to.deep.equal([]);
    expect(await storage.has(sha(data))).to.equal(false);
  });

  it("stops reading as soon as more bytes than declared arrive, and keeps nothing", async () => {
    const { source, pulled } = counted(1024);
    const err = await rejects(storage.put(source, { sha256: "a".repeat(64), size: 10 * 1024, maxBytes: 1 << 30 }));
    expect(err).to.be.instanceOf(PatchSizeMismatchError);
    expect(err.message).to.include("declared size 10240");
    // 11 chunks pass the declared size; a few more may sit in stream buffers, never thousands.
    expect(pulled()).to.be.lessThan(64);
    expect(source.destroyed).to.equal(true);
    expect(filesUnder(dir)).to.deep.equal([]);
  });

  it("refuses fewer bytes than declared, and keeps nothing", async () => {
    const data = crypto.randomBytes(1000);
    const err = await rejects(storage.put(Readable.from([data]), { sha256: sha(data), size: 1001, maxBytes: 5000 }));
    expect(err).to.be.instanceOf(PatchSizeMismatchError);
    expect(err.message).to.include("1000").and.include("1001");
    expect(filesUnder(dir)).to.deep.equal([]);
  });

  it("refuses a declared size over maxBytes before reading anything", async () => {
    const { source, pulled } = counted(1024, 100);
    const err = await rejects(storage.put(source, { sha256: "b".repeat(64), size: 2048, maxBytes: 2047 }));
    expect(err).to.be.instanceOf(PatchTooLargeError);
    expect(err.status).to.equal(Status.RESOURCE_EXHAUSTED);
    expect(err.message).to.include("2048").and.include("2047");
    expect(pulled()).to.equal(0);
    expect(filesUnder(dir)).to.deep.equal([]);
  });

  it("refuses a malformed declared sha256 or size", async () => {
    for (const bad of ["", "xyz", "g".repeat(64), "a".repeat(63)]) {
      const err = await rejects(storage.put(Readable.from([Buffer.from("x")]), { sha256: bad, size: 1, maxBytes: 10 }));
      expect(err, bad).to.be.instanceOf(InvalidArgumentError);
    }
    for (const size of [-1, 1.5, Number.NaN]) {
      const err = await rejects(storage.put(Readable.from([Buffer.from("x")]), { sha256: "a".repeat(64), size, maxBytes: 10 }));
      expect(err, String(size)).to.be.instanceOf(InvalidArgumentError);
    }
    expect(filesUnder(dir)).to.deep.equal([]);
  });

  it("keeps nothing when the source fails midway, and passes the source's error on", async () => {
    const source = Readable.from((async function* () {
      yield Buffer.alloc(4096, 1);
      throw new Error("peer went away");
    })());
    const err = await rejects(storage.put(source, { sha256: "c".repeat(64), size: 8192, maxBytes: 8192 }));
    expect(err.message).to.equal("peer went away");
    expect(filesUnder(dir)).to.deep.equal([]);
  });

  it("stores identical content once, and removal is idempotent", async () => {
    const data = Buffer.from("same bytes");
    const a = await storage.put(Readable.from([data]), { sha256: sha(data), size: data.length, maxBytes: 100 });
    const b = await storage.put(Readable.from([data]), { sha256: sha(data), size: data.length, maxBytes: 100 });
    expect(a.key).to.equal(b.key);
    expect(filesUnder(dir)).to.have.length(1);
    await storage.remove(a.key);
    await storage.remove(a.key);
    expect(await storage.has(a.key)).to.equal(false);
    const err = await rejects(storage.get(a.key));
    expect(err).to.be.instanceOf(NotFoundError);
    expect(err.message).to.include(a.key);
  });

  it("removeUnused leaves a key an upload holds or a patch uses, and removes it once neither is true", async () => {
    const data = Buffer.from("shared bytes");
    const { key } = await storage.put(Readable.from([data]), { sha256: sha(data), size: data.length, maxBytes: 100 });
    const release = storage.hold(key);
    expect(await storage.removeUnused(key, async () => false)).to.equal(false);
    expect(await storage.has(key)).to.equal(true);
    release();
    release(); // idempotent: a second call must not release another holder
    const other = storage.hold(key);
    release();
    expect(await storage.removeUnused(key, async () => false), "still held by the second upload").to.equal(false);
    other();
    expect(await storage.removeUnused(key, async () => true), "a patch uses it").to.equal(false);
    expect(await storage.has(key)).to.equal(true);
    expect(await storage.removeUnused(key, async () => false)).to.equal(true);
    expect(await storage.has(key)).to.equal(false);
    expect(() => storage.hold("../x")).to.throw(InvalidArgumentError);
  });

  it("a removal and an upload of the same bytes run one after the other: the upload's file survives", async () => {
    const data = crypto.randomBytes(4096);
    const key = sha(data);
    await storage.put(Readable.from([data]), { sha256: key, size: data.length, maxBytes: 1 << 20 });
    // The removal has found no patch row and is about to delete when the upload places its file:
    // the upload's rename waits for the removal, so the file is there afterwards.
    let decided!: () => void;
    const deciding = new Promise<void>((r) => (decided = r));
    const removal = storage.removeUnused(key, async () => {
      await deciding;
      return false;
    });
    const upload = storage.put(Readable.from([data]), { sha256: key, size: data.length, maxBytes: 1 << 20 });
    await new Promise((r) => setTimeout(r, 50));
    decided();
    expect(await removal).to.equal(true);
    await upload;
    expect((await readAll(await storage.get(key))).equals(data)).to.equal(true);
  });

  it("removes temp files a dead upload left behind (older than a day) at the first upload, and leaves recent ones", async () => {
    const tmp = path.join(dir, "tmp");
    fs.mkdirSync(tmp, { recursive: true });
    const stale = path.join(tmp, "dead.part");
    const recent = path.join(tmp, "running.part");
    fs.writeFileSync(stale, "half");
    fs.writeFileSync(recent, "half");
    const twoDaysAgo = new Date(Date.now() - 2 * 24 * 3600 * 1000);
    fs.utimesSync(stale, twoDaysAgo, twoDaysAgo);
    const data = Buffer.from("package");
    await storage.put(Readable.from([data]), { sha256: sha(data), size: data.length, maxBytes: 100 });
    const deadline = Date.now() + 5000;
    while (fs.existsSync(stale) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(fs.existsSync(stale)).to.equal(false);
    expect(fs.existsSync(recent)).to.equal(true);
  });

  it("refuses keys that are not a sha256, so nothing outside the directory can be named", async () => {
    const name = `${path.basename(dir)}-outside`;
    const outside = path.join(dir, "..", name);
    fs.writeFileSync(outside, "secret");
    try {
      for (const key of [`../${name}`, "../../etc/passwd", "A".repeat(64), "a".repeat(63), `${"a".repeat(64)}/x`, "", "a".repeat(63) + "\0"]) {
        expect(await rejects(storage.get(key)), key).to.be.instanceOf(InvalidArgumentError);
        expect(await rejects(storage.has(key)), key).to.be.instanceOf(InvalidArgumentError);
        expect(await rejects(storage.remove(key)), key).to.be.instanceOf(InvalidArgumentError);
      }
      expect(fs.readFileSync(outside, "utf8")).to.equal("secret");
    } finally {
      fs.rmSync(outside, { force: true });
    }
  });
});
