/**
 * DatabaseStorage: content-addressed packages in the registry's database, in
 * chunks, on every dialect. Checks what an operator would look for: the
 * bytes come back exactly (also from an offset, across chunk boundaries),
 * bad input is refused with the right code and leaves no row behind, reading
 * stops as soon as too many bytes arrive, a damaged chunk is never served
 * (PATCH_CHUNK_CORRUPT naming it), and packages a registry kept on its disk
 * move into the database.
 */
import { expect } from "chai";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { getLogger, InvalidArgumentError, NotFoundError, Status } from "sgridnext";
import {
  DatabaseStorage, importDiskPackages, PatchChecksumMismatchError, PatchChunkCorruptError, PatchOffsetOutOfRangeError, PatchSizeMismatchError, PatchTooLargeError,
} from "../../registry/services";
import type { KnexStore } from "../../registry/store";
import { forEachDialect, freshStore, rejects } from "./helpers/db";

const sha = (b: Buffer) => crypto.createHash("sha256").update(b).digest("hex");
const CHUNK = 64 * 1024;

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

forEachDialect("registry storage: DatabaseStorage", (d) => {
  let store: KnexStore;
  let cleanup: () => Promise<void>;
  let storage: DatabaseStorage;
  /** What the database holds: package keys, and how many chunk rows. */
  const rows = async () => ({
    packages: (await store.packageBlobs.list()).map((b) => b.key),
    chunks: Number((await store.knex("package_chunks").count({ n: "*" }))[0]!.n),
  });
  const nothing = { packages: [], chunks: 0 };

  before(async () => ({ store, cleanup } = await freshStore(d)));
  after(() => cleanup());
  beforeEach(async () => {
    await store.knex("package_chunks").delete();
    await store.knex("package_blobs").delete();
    storage = new DatabaseStorage(store, { chunkBytes: CHUNK });
  });

  it("stores a stream under its sha256 in chunks with their own sha256 and gives the same bytes back", async () => {
    const data = crypto.randomBytes(300_000);
    const key = sha(data);
    const res = await storage.put(Readable.from([data.subarray(0, 1000), data.subarray(1000)]), { sha256: key.toUpperCase(), size: data.length, maxBytes: 1 << 20 });
    expect(res).to.deep.equal({ key, size: data.length });
    expect(await rows()).to.deep.equal({ packages: [key], chunks: Math.ceil(data.length / CHUNK) });
    const chunkRows = await store.knex("package_chunks").select("seq", "size", "sha256").orderBy("seq");
    expect(chunkRows.map((r) => Number(r.size))).to.deep.equal([CHUNK, CHUNK, CHUNK, CHUNK, data.length - 4 * CHUNK]);
    expect(chunkRows[1]!.sha256).to.equal(sha(data.subarray(CHUNK, 2 * CHUNK)));
    expect(await storage.has(key)).to.equal(true);
    expect((await readAll(await storage.get(key))).equals(data)).to.equal(true);
  });

  it("reads from an offset (resume) inside and at the edge of chunks, and an offset equal to the size gives no bytes", async () => {
    const data = crypto.randomBytes(200_000);
    const { key } = await storage.put(Readable.from([data]), { sha256: sha(data), size: data.length, maxBytes: data.length });
    for (const at of [12_345, CHUNK, CHUNK + 1, 3 * CHUNK - 1]) {
      expect((await readAll(await storage.get(key, at))).equals(data.subarray(at)), String(at)).to.equal(true);
    }
    expect((await readAll(await storage.get(key, data.length))).length).to.equal(0);
    const err = await rejects(storage.get(key, data.length + 1));
    expect(err).to.be.instanceOf(PatchOffsetOutOfRangeError);
    expect(err.status).to.equal(Status.OUT_OF_RANGE);
    expect(err.message).to.include(key).and.include(String(data.length + 1));
  });

  it("refuses a sha256 mismatch with both hashes and keeps no row", async () => {
    const data = crypto.randomBytes(150_000);
    const wrong = sha(Buffer.from("something else"));
    const err = await rejects(storage.put(Readable.from([data]), { sha256: wrong, size: data.length, maxBytes: 1 << 20 }));
    expect(err).to.be.instanceOf(PatchChecksumMismatchError);
    expect(err.status).to.equal(Status.INVALID_ARGUMENT);
    expect(err.message).to.include(wrong).and.include(sha(data));
    expect(await rows()).to.deep.equal(nothing);
    expect(await storage.has(sha(data))).to.equal(false);
  });

  it("stops reading as soon as more bytes than declared arrive, and keeps no row", async () => {
    const { source, pulled } = counted(1024);
    const err = await rejects(storage.put(source, { sha256: "a".repeat(64), size: 100 * 1024, maxBytes: 1 << 30 }));
    expect(err).to.be.instanceOf(PatchSizeMismatchError);
    expect(err.message).to.include("declared size 102400");
    // 101 chunks pass the declared size; a few more may sit in stream buffers, never thousands.
    expect(pulled()).to.be.lessThan(200);
    expect(source.destroyed).to.equal(true);
    expect(await rows()).to.deep.equal(nothing);
  });

  it("refuses fewer bytes than declared, and keeps no row", async () => {
    const data = crypto.randomBytes(100_000);
    const err = await rejects(storage.put(Readable.from([data]), { sha256: sha(data), size: 100_001, maxBytes: 1 << 20 }));
    expect(err).to.be.instanceOf(PatchSizeMismatchError);
    expect(err.message).to.include("100000").and.include("100001");
    expect(await rows()).to.deep.equal(nothing);
  });

  it("refuses a declared size over maxBytes before reading anything", async () => {
    const { source, pulled } = counted(1024, 100);
    const err = await rejects(storage.put(source, { sha256: "b".repeat(64), size: 2048, maxBytes: 2047 }));
    expect(err).to.be.instanceOf(PatchTooLargeError);
    expect(err.status).to.equal(Status.RESOURCE_EXHAUSTED);
    expect(err.message).to.include("2048").and.include("2047");
    expect(pulled()).to.equal(0);
    expect(await rows()).to.deep.equal(nothing);
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
    expect(await rows()).to.deep.equal(nothing);
  });

  it("keeps no row when the source fails midway (after chunks were written), and passes the source's error on", async () => {
    const source = Readable.from((async function* () {
      yield Buffer.alloc(3 * CHUNK, 1);
      throw new Error("peer went away");
    })());
    const err = await rejects(storage.put(source, { sha256: "c".repeat(64), size: 8 * CHUNK, maxBytes: 8 * CHUNK }));
    expect(err.message).to.equal("peer went away");
    expect(await rows()).to.deep.equal(nothing);
  });

  it("stores identical content once, and removal is idempotent", async () => {
    const data = crypto.randomBytes(100_000);
    const a = await storage.put(Readable.from([data]), { sha256: sha(data), size: data.length, maxBytes: 1 << 20 });
    const b = await storage.put(Readable.from([data]), { sha256: sha(data), size: data.length, maxBytes: 1 << 20 });
    expect(a.key).to.equal(b.key);
    expect(await rows()).to.deep.equal({ packages: [a.key], chunks: 2 });
    await storage.remove(a.key);
    await storage.remove(a.key);
    expect(await storage.has(a.key)).to.equal(false);
    expect(await rows()).to.deep.equal(nothing);
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

  it("a removal and an upload of the same bytes run one after the other: the upload's package survives", async () => {
    const data = crypto.randomBytes(100_000);
    const key = sha(data);
    await storage.put(Readable.from([data]), { sha256: key, size: data.length, maxBytes: 1 << 20 });
    // The removal has found no patch row and is about to delete when the upload commits:
    // the upload's commit waits for the removal, so the package is there afterwards.
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

  it("removes chunks a dead upload left behind (older than a day) at the first upload, and leaves recent ones", async () => {
    const old = Date.now() - 2 * 24 * 3600 * 1000;
    const chunk = (upload_id: string, created_at: number) => ({ upload_id, seq: 0, size: 4, sha256: sha(Buffer.from("half")), data: Buffer.from("half"), created_at });
    await store.knex("package_chunks").insert([chunk("dead".padEnd(32, "0"), old), chunk("running".padEnd(32, "0"), Date.now())]);
    const data = Buffer.from("package");
    await storage.put(Readable.from([data]), { sha256: sha(data), size: data.length, maxBytes: 100 });
    const left = async () => (await store.knex("package_chunks").select("upload_id")).map((r) => String(r.upload_id).replace(/0+$/, "")).sort();
    const deadline = Date.now() + 5000;
    while ((await left()).includes("dead") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(await left()).to.include("running").and.not.include("dead");
  });

  it("refuses keys that are not a sha256", async () => {
    for (const key of ["../x", "../../etc/passwd", "A".repeat(64), "a".repeat(63), `${"a".repeat(64)}/x`, "", "a".repeat(63) + "\0"]) {
      expect(await rejects(storage.get(key)), key).to.be.instanceOf(InvalidArgumentError);
      expect(await rejects(storage.has(key)), key).to.be.instanceOf(InvalidArgumentError);
      expect(await rejects(storage.remove(key)), key).to.be.instanceOf(InvalidArgumentError);
    }
  });

  it("never serves a damaged or missing chunk: the read fails at it with PATCH_CHUNK_CORRUPT naming the chunk", async () => {
    const data = crypto.randomBytes(4 * CHUNK);
    const { key } = await storage.put(Readable.from([data]), { sha256: sha(data), size: data.length, maxBytes: 1 << 20 });
    const [blob] = await store.packageBlobs.list();
    const damaged = Buffer.from(data.subarray(2 * CHUNK, 3 * CHUNK));
    damaged[100] ^= 0xff;
    await store.knex("package_chunks").where({ upload_id: blob!.uploadId, seq: 2 }).update({ data: damaged });
    const got: Buffer[] = [];
    const err = await rejects((async () => {
      for await (const c of await new DatabaseStorage(store).get(key)) got.push(c as Buffer);
    })());
    expect(err).to.be.instanceOf(PatchChunkCorruptError);
    expect(err.status).to.equal(Status.DATA_LOSS);
    expect(err.code).to.equal("PATCH_CHUNK_CORRUPT");
    expect(err.message).to.include(key).and.include("chunk 2").and.include(sha(damaged)).and.include(sha(data.subarray(2 * CHUNK, 3 * CHUNK)));
    // What came before the damaged chunk is intact; nothing of it or after it was served.
    expect(Buffer.concat(got).equals(data.subarray(0, Buffer.concat(got).length))).to.equal(true);
    expect(Buffer.concat(got).length).to.be.at.most(2 * CHUNK);
    await store.knex("package_chunks").where({ upload_id: blob!.uploadId, seq: 3 }).delete();
    const missing = await rejects(readAll(await new DatabaseStorage(store).get(key, 3 * CHUNK)));
    expect(missing).to.be.instanceOf(PatchChunkCorruptError);
    expect(missing.message).to.include("chunk 3").and.include("missing");
    // Uploading the same package again replaces the damaged copy.
    await storage.put(Readable.from([data]), { sha256: key, size: data.length, maxBytes: 1 << 20 });
    expect((await readAll(await new DatabaseStorage(store).get(key))).equals(data)).to.equal(true);
    expect((await rows()).chunks).to.equal(4);
  });

  it("lets concurrent readers of one package share each chunk's query (a publish to many nodes)", async () => {
    const data = crypto.randomBytes(5 * CHUNK);
    const { key } = await storage.put(Readable.from([data]), { sha256: sha(data), size: data.length, maxBytes: 1 << 20 });
    const reader = new DatabaseStorage(store);
    const real = store.packageBlobs.chunk.bind(store.packageBlobs);
    let queries = 0;
    const counting = Object.create(store.packageBlobs, { chunk: { value: (id: string, seq: number) => (queries++, real(id, seq)) } });
    const shared = new DatabaseStorage({ packageBlobs: counting });
    const all = await Promise.all(Array.from({ length: 10 }, async () => readAll(await shared.get(key))));
    for (const b of all) expect(b.equals(data)).to.equal(true);
    expect(queries).to.equal(5);
    expect((await readAll(await reader.get(key))).equals(data)).to.equal(true);
  });

  it("makes chunks small enough for the database's statement limit (MySQL's max_allowed_packet, a BLOB sent hex-escaped)", async () => {
    const limited = Object.create(store.packageBlobs, { maxStatementBytes: { value: async () => 100_000 } });
    const small = new DatabaseStorage({ packageBlobs: limited });
    const data = crypto.randomBytes(200_000);
    const { key } = await small.put(Readable.from([data]), { sha256: sha(data), size: data.length, maxBytes: 1 << 20 });
    const sizes = (await store.knex("package_chunks").select("size")).map((r) => Number(r.size));
    expect(Math.max(...sizes)).to.equal(Math.floor((100_000 - 16 * 1024) / 2));
    expect((await readAll(await small.get(key))).equals(data)).to.equal(true);
  });

  it("moves packages a registry kept on its disk into the database, leaving a file whose bytes do not match its name", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sgrid-disk-packages-"));
    try {
      const place = (key: string, bytes: Buffer) => {
        fs.mkdirSync(path.join(dir, key.slice(0, 2), key.slice(2, 4)), { recursive: true });
        fs.writeFileSync(path.join(dir, key.slice(0, 2), key.slice(2, 4), key), bytes);
      };
      const good = crypto.randomBytes(150_000);
      place(sha(good), good);
      const liar = sha(Buffer.from("what the name says"));
      place(liar, Buffer.from("something else"));
      fs.mkdirSync(path.join(dir, "tmp"));
      fs.writeFileSync(path.join(dir, "tmp", "x.part"), "half");
      expect(await importDiskPackages(storage, dir, getLogger("registry.test"))).to.deep.equal({ imported: 1, left: 1 });
      expect((await readAll(await storage.get(sha(good)))).equals(good)).to.equal(true);
      expect(await storage.has(liar)).to.equal(false);
      expect(fs.existsSync(path.join(dir, sha(good).slice(0, 2)))).to.equal(false);
      expect(fs.existsSync(path.join(dir, liar.slice(0, 2), liar.slice(2, 4), liar))).to.equal(true);
      expect(fs.existsSync(path.join(dir, "tmp"))).to.equal(false);
      // Again: nothing more to import, the bad file still left.
      expect(await importDiskPackages(storage, dir, getLogger("registry.test"))).to.deep.equal({ imported: 0, left: 1 });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
