/**
 * The Patch API over real gRPC, on SQLite (and MySQL when
 * SGRID_TEST_MYSQL_URL is set): upload and download byte for byte, resume
 * from an offset, refusals that leave nothing stored, roles, the default
 * patch, and deletes refused while an instance uses the patch.
 */
import { expect } from "chai";
import crypto from "node:crypto";
import { Readable } from "node:stream";
import {
  FailedPreconditionError, InvalidArgumentError, NotFoundError, PermissionDeniedError, Status, UnauthenticatedError, getLogger,
} from "sgridnext";
import type { DownloadChunk, UploadChunk } from "sgridnext/gen/sgrid/registry/v1/patch";
import {
  DOWNLOAD_CHUNK_BYTES, PatchChecksumMismatchError, PatchOffsetOutOfRangeError, PatchSizeMismatchError, PatchTooLargeError, sweepPackages,
} from "../../registry/services";
import { buildTar, gzip } from "../fixtures/packages/tar-builder";
import { type Harness, TOKENS, startHarness } from "./config-patch-harness";
import { type DialectCase, forEachDialect, rejects } from "./helpers/db";

const sha = (b: Buffer) => crypto.createHash("sha256").update(b).digest("hex");
/** A valid .tgz of App.Server whose one file holds `size` random bytes (so every package differs and does not compress). */
const pkgOf = (size: number, app = "Demo", server = "Hello"): Buffer => gzip(buildTar([
  { name: "sgrid.json", body: JSON.stringify({ app, server, type: "node", entry: "main.js" }) },
  { name: "main.js", body: crypto.randomBytes(size) },
]));
const MAX = 1024 * 1024;

interface UploadOpts {
  application?: string;
  server?: string;
  sha256?: string;
  size?: number;
  comment?: string;
  chunk?: number;
  /** Bytes actually sent (default: data). */
  send?: Buffer;
}

async function* chunks(data: Buffer, header: UploadChunk["kind"], chunk: number): AsyncGenerator<UploadChunk> {
  yield { kind: header };
  for (let i = 0; i < data.length; i += chunk) yield { kind: { $case: "data", value: data.subarray(i, i + chunk) } };
}

forEachDialect("registry Patch API", (d: DialectCase) => {
  let h: Harness;
  before(async () => {
    h = await startHarness(d, { maxPatchBytes: MAX });
    await h.store.servers.create({ application: "Demo", name: "Hello", type: "node" });
    await h.store.servers.create({ application: "Demo", name: "Empty", type: "node" });
    await h.store.servers.create({ application: "Other", name: "Svc", type: "node" });
    await h.store.nodes.upsert({ name: "node1", address: "127.0.0.1", agentVersion: "test" });
  });
  after(async () => h?.close());

  const upload = (data: Buffer, o: UploadOpts = {}, token: string = TOKENS.op) => {
    const header: UploadChunk["kind"] = {
      $case: "header",
      value: { application: o.application ?? "Demo", server: o.server ?? "Hello", sha256: o.sha256 ?? sha(data), size: o.size ?? data.length, comment: o.comment ?? "" },
    };
    return h.patch.upload(chunks(o.send ?? data, header, o.chunk ?? 50_000), { ...h.as(token), timeoutMs: 30_000 });
  };
  const download = async (version: number, offset = 0, server = "Hello"): Promise<DownloadChunk[]> => {
    const out: DownloadChunk[] = [];
    for await (const c of h.patch.download({ application: "Demo", server, version, offset }, { ...h.as(TOKENS.viewer), timeoutMs: 30_000 })) out.push(c);
    return out;
  };
  const list = async (server = "Hello") => (await h.patch.list({ application: "Demo", server }, h.as(TOKENS.viewer))).patches;

  /** Asserts the refused upload left no row, no package file and no temp file. */
  async function expectNothingStored(server: string, rowsBefore: number, filesBefore: string[]): Promise<void> {
    expect(await h.store.patches.list("Demo", server)).to.have.length(rowsBefore);
    expect(await h.storedPackages()).to.deep.equal(filesBefore);
    expect((await h.unfinishedUploads())).to.deep.equal([]);
  }

  let pkg: Buffer;

  it("uploads a package (numbered per server) and downloads it byte for byte in chunks of at most 64 KiB", async () => {
    pkg = pkgOf(300_000);
    const info = await upload(pkg, { comment: "first build" });
    expect(info).to.include({ application: "Demo", server: "Hello", version: 1, sha256: sha(pkg), size: pkg.length, comment: "first build", uploader: "ann", isDefault: false });
    expect(info.id).to.be.greaterThan(0);
    expect(info.createdAt).to.be.greaterThan(0);
    expect(await h.storedPackages()).to.have.length(1);

    const got = await download(1);
    expect(got[0]).to.include({ offset: 0, size: pkg.length, sha256: sha(pkg) });
    let at = 0;
    for (const c of got) {
      expect(c.offset).to.equal(at);
      expect(c.data.length).to.be.at.most(DOWNLOAD_CHUNK_BYTES).and.greaterThan(0);
      at += c.data.length;
    }
    expect(got.slice(1).every((c) => c.size === 0 && c.sha256 === "")).to.equal(true);
    const bytes = Buffer.concat(got.map((c) => c.data));
    expect(sha(bytes)).to.equal(sha(pkg));
    expect(bytes.equals(pkg)).to.equal(true);

    const second = await upload(pkgOf(1000), { comment: "second" });
    expect(second.version).to.equal(2);
    const other = await upload(pkgOf(10, "Other", "Svc"), { application: "Other", server: "Svc" }, TOKENS.other);
    expect(other.version).to.equal(1);
  });

  it("records a patch.upload event naming the user, never the token", async () => {
    const events = await h.store.events.list({ kind: "patch.upload", target: "Demo.Hello" });
    expect(events.map((e) => e.actor)).to.deep.equal(["ann", "ann"]);
    expect(events[1]!.message).to.include("version 1").and.include(sha(pkg));
    expect(JSON.stringify(events)).to.not.include(TOKENS.op);
  });

  it("resumes a download from an offset; at the size it sends one empty chunk with size and sha256; past it, OUT_OF_RANGE", async () => {
    const offset = 123_457;
    const got = await download(1, offset);
    expect(got[0]).to.include({ offset, size: pkg.length, sha256: sha(pkg) });
    expect(Buffer.concat(got.map((c) => c.data)).equals(pkg.subarray(offset))).to.equal(true);

    const atEnd = await download(1, pkg.length);
    expect(atEnd).to.have.length(1);
    expect(atEnd[0]).to.include({ offset: pkg.length, size: pkg.length, sha256: sha(pkg) });
    expect(atEnd[0]!.data.length).to.equal(0);

    const err = await rejects(download(1, pkg.length + 1));
    expect(err).to.be.instanceOf(PatchOffsetOutOfRangeError);
    expect(err.status).to.equal(Status.OUT_OF_RANGE);
    expect(err.message).to.include(String(pkg.length + 1)).and.include("Demo.Hello");
  });

  it("lists newest first with the default flag; SetDefault moves it", async () => {
    expect((await list()).map((p) => [p.version, p.isDefault])).to.deep.equal([[2, false], [1, false]]);
    const info = await h.patch.setDefault({ application: "Demo", server: "Hello", version: 1 }, h.as(TOKENS.op));
    expect(info).to.include({ version: 1, isDefault: true });
    expect((await list()).map((p) => [p.version, p.isDefault])).to.deep.equal([[2, false], [1, true]]);
    expect((await h.store.servers.get("Demo", "Hello")).defaultPatchId).to.equal(info.id);
    const events = await h.store.events.list({ kind: "patch.set_default", target: "Demo.Hello" });
    expect(events.map((e) => e.actor)).to.deep.equal(["ann"]);
  });

  it("refuses a wrong sha256 with both hashes, storing nothing", async () => {
    const rows = (await list()).length;
    const files = await h.storedPackages();
    const data = crypto.randomBytes(70_000);
    const wrong = sha(Buffer.from("not the package"));
    const err = await rejects(upload(data, { sha256: wrong }));
    expect(err).to.be.instanceOf(PatchChecksumMismatchError);
    expect(err.status).to.equal(Status.INVALID_ARGUMENT);
    expect(err.message).to.include(wrong).and.include(sha(data));
    await expectNothingStored("Hello", rows, files);
  });

  it("refuses what is not a package (plain tar, truncated gzip, gzip without tar, no manifest, another server's manifest, a missing entry): PATCH_INVALID, storing nothing", async () => {
    const rows = (await list()).length;
    const files = await h.storedPackages();
    const good = pkgOf(5000);
    const manifest = (m: object) => ({ name: "sgrid.json", body: JSON.stringify(m) });
    const cases: Array<[string, Buffer, RegExp]> = [
      ["plain tar", buildTar([manifest({ app: "Demo", server: "Hello", type: "node", entry: "main.js" }), { name: "main.js", body: "x" }]), /not gzip-compressed/],
      ["truncated gzip", good.subarray(0, good.length - 100), /bad gzip data/],
      ["gzip without tar", gzip(Buffer.alloc(4096, "a")), /tar archive/],
      ["no manifest", gzip(buildTar([{ name: "main.js", body: "x" }])), /no sgrid\.json/],
      ["another server's manifest", gzip(buildTar([manifest({ app: "Demo", server: "Empty", type: "node", entry: "main.js" }), { name: "main.js", body: "x" }])), /is for Demo\.Empty/],
      ["missing entry", gzip(buildTar([manifest({ app: "Demo", server: "Hello", type: "node", entry: "dist/main.js" }), { name: "main.js", body: "x" }])), /entry "dist\/main\.js"/],
      ["random bytes", crypto.randomBytes(3000), /not gzip-compressed/],
    ];
    for (const [what, data, message] of cases) {
      const err = await rejects(upload(data));
      expect(err.code, what).to.equal("PATCH_INVALID");
      expect(err.status, what).to.equal(Status.INVALID_ARGUMENT);
      expect(err.message, what).to.match(message);
      await expectNothingStored("Hello", rows, files);
    }
  });

  it("refuses a declared size over the limit before reading, and more bytes than declared, storing nothing", async () => {
    const rows = (await list()).length;
    const files = await h.storedPackages();
    const big = await rejects(upload(Buffer.alloc(10), { size: MAX + 1 }));
    expect(big).to.be.instanceOf(PatchTooLargeError);
    expect(big.status).to.equal(Status.RESOURCE_EXHAUSTED);
    expect(big.message).to.include(String(MAX + 1)).and.include(String(MAX));
    await expectNothingStored("Hello", rows, files);

    // Declared within the limit, but the client keeps sending past it.
    const data = crypto.randomBytes(MAX + 200_000);
    const over = await rejects(upload(data, { size: 100_000, sha256: sha(data) }));
    expect(over).to.be.instanceOf(PatchSizeMismatchError);
    expect(over.message).to.include("declared size 100000");
    await expectNothingStored("Hello", rows, files);

    const under = await rejects(upload(crypto.randomBytes(500), { size: 501 }));
    expect(under).to.be.instanceOf(PatchSizeMismatchError);
    await expectNothingStored("Hello", rows, files);
  });

  it("refuses an unknown server (NOT_FOUND) and malformed headers (INVALID_ARGUMENT), storing nothing", async () => {
    const files = await h.storedPackages();
    const err = await rejects(upload(crypto.randomBytes(100), { server: "Nope" }));
    expect(err).to.be.instanceOf(NotFoundError);
    expect(err.message).to.include("Demo.Nope");
    expect(await h.storedPackages()).to.deep.equal(files);

    expect(await rejects(upload(Buffer.from("x"), { sha256: "xyz" }))).to.be.instanceOf(InvalidArgumentError);
    expect(await rejects(upload(Buffer.from("x"), { server: "../x" }))).to.be.instanceOf(InvalidArgumentError);
    expect(await rejects(upload(Buffer.from("x"), { comment: "c".repeat(5000) }))).to.be.instanceOf(InvalidArgumentError);
    const noHeader = await rejects(h.patch.upload((async function* () {
      yield { kind: { $case: "data" as const, value: Buffer.from("data first") } };
    })(), h.as(TOKENS.op)));
    expect(noHeader).to.be.instanceOf(InvalidArgumentError);
    expect(noHeader.message).to.include("header");
    const twoHeaders = await rejects(h.patch.upload((async function* () {
      const header = { $case: "header" as const, value: { application: "Demo", server: "Hello", sha256: sha(Buffer.from("ab")), size: 2, comment: "" } };
      yield { kind: header };
      yield { kind: { $case: "data" as const, value: Buffer.from("a") } };
      yield { kind: header };
      yield { kind: { $case: "data" as const, value: Buffer.from("b") } };
    })(), h.as(TOKENS.op)));
    expect(twoHeaders).to.be.instanceOf(InvalidArgumentError);
    expect(twoHeaders.message).to.include("second header");
    await expectNothingStored("Hello", 2, files);
  });

  it("removes the stored file when the patch row cannot be created (the server was deleted during the upload)", async () => {
    await h.store.servers.create({ application: "Demo", name: "Gone", type: "node" });
    const files = await h.storedPackages();
    const data = pkgOf(300_000, "Demo", "Gone");
    let resume!: () => void;
    const paused = new Promise<void>((r) => (resume = r));
    const call = h.patch.upload((async function* () {
      yield { kind: { $case: "header" as const, value: { application: "Demo", server: "Gone", sha256: sha(data), size: data.length, comment: "" } } };
      yield { kind: { $case: "data" as const, value: data.subarray(0, 100_000) } };
      await paused;
      yield { kind: { $case: "data" as const, value: data.subarray(100_000) } };
    })(), { ...h.as(TOKENS.op), timeoutMs: 30_000 });
    call.catch(() => undefined);
    const deadline = Date.now() + 10_000;
    while ((await h.unfinishedUploads()).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect((await h.unfinishedUploads()), "upload in progress").to.have.length(1);
    await h.store.servers.remove("Demo", "Gone");
    resume();
    const err = await rejects(call);
    expect(err).to.be.instanceOf(NotFoundError);
    expect(err.message).to.contain("Demo.Gone");
    expect(await h.storedPackages()).to.deep.equal(files);
    expect((await h.unfinishedUploads())).to.deep.equal([]);
  });

  it("sweeps package files no patch references once they are an hour old, keeping used and recent ones", async () => {
    await h.store.servers.create({ application: "Demo", name: "Sweep", type: "node" });
    const used = pkgOf(1000, "Demo", "Sweep");
    await upload(used, { server: "Sweep" });
    const put = async (data: Buffer) => (await h.storage.put(Readable.from([data]), { sha256: sha(data), size: data.length, maxBytes: MAX })).key;
    const orphan = await put(crypto.randomBytes(1000));
    const recent = await put(crypto.randomBytes(1000));
    await h.store.knex("package_blobs").whereIn("storage_key", [sha(used), orphan]).update({ created_at: Date.now() - 2 * 3600_000 });
    const removed = await sweepPackages({ store: h.store, storage: h.storage, log: getLogger("registry.test") });
    expect(removed).to.deep.equal([orphan]);
    expect(await h.storage.has(orphan)).to.equal(false);
    expect(await h.storage.has(sha(used))).to.equal(true);
    expect(await h.storage.has(recent)).to.equal(true);
    // A later sweep, with the recent one now old enough, takes it too.
    expect(await sweepPackages({ store: h.store, storage: h.storage, log: getLogger("registry.test") }, { olderThanMs: 0, now: Date.now() + 1000 })).to.deep.equal([recent]);
  });

  it("keeps nothing of an upload the client cancels midway", async () => {
    const files = await h.storedPackages();
    const ac = new AbortController();
    const data = crypto.randomBytes(400_000);
    const call = h.patch.upload((async function* () {
      yield { kind: { $case: "header" as const, value: { application: "Demo", server: "Hello", sha256: sha(data), size: data.length, comment: "" } } };
      yield { kind: { $case: "data" as const, value: data.subarray(0, 100_000) } };
      await new Promise((resolve) => ac.signal.addEventListener("abort", resolve, { once: true }));
    })(), { ...h.as(TOKENS.op), signal: ac.signal });
    call.catch(() => undefined);
    const deadline = Date.now() + 10_000;
    while ((await h.unfinishedUploads()).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect((await h.unfinishedUploads()), "upload in progress").to.have.length(1);
    ac.abort();
    const err = await rejects(call);
    expect(err.status).to.equal(Status.CANCELLED);
    while ((await h.unfinishedUploads()).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await expectNothingStored("Hello", 2, files);
  });

  it("checks roles: no token UNAUTHENTICATED; a viewer or an operator of another application may not upload, set the default or delete", async () => {
    const files = await h.storedPackages();
    expect(await rejects(h.patch.list({ application: "Demo", server: "Hello" }))).to.be.instanceOf(UnauthenticatedError);
    expect(await rejects(upload(Buffer.from("x"), {}, "t-bogus"))).to.be.instanceOf(UnauthenticatedError);
    for (const token of [TOKENS.viewer, TOKENS.other]) {
      const up = await rejects(upload(Buffer.from("x"), {}, token));
      expect(up, token).to.be.instanceOf(PermissionDeniedError);
      expect(await rejects(h.patch.setDefault({ application: "Demo", server: "Hello", version: 2 }, h.as(token)))).to.be.instanceOf(PermissionDeniedError);
      expect(await rejects(h.patch.delete({ application: "Demo", server: "Hello", version: 2 }, h.as(token)))).to.be.instanceOf(PermissionDeniedError);
    }
    expect(await rejects(h.patch.list({ application: "Demo", server: "Hello" }, h.as(TOKENS.other)))).to.be.instanceOf(PermissionDeniedError);
    await expectNothingStored("Hello", 2, files);
    expect((await list()).map((p) => [p.version, p.isDefault])).to.deep.equal([[2, false], [1, true]]);
  });

  it("refuses to delete a patch while an instance desires it or it is the default, then deletes it and its file", async () => {
    const v2 = (await list()).find((p) => p.version === 2)!;
    const inst = await h.store.instances.create({ application: "Demo", server: "Hello", node: "node1", adapters: [{ obj: "HelloObj", host: "127.0.0.1", port: 10000 }], desiredPatchId: v2.id });
    const used = await rejects(h.patch.delete({ application: "Demo", server: "Hello", version: 2 }, h.as(TOKENS.op)));
    expect(used).to.be.instanceOf(FailedPreconditionError);
    expect(used.message).to.include("Demo.Hello@node1");
    const byDefault = await rejects(h.patch.delete({ application: "Demo", server: "Hello", version: 1 }, h.as(TOKENS.op)));
    expect(byDefault).to.be.instanceOf(FailedPreconditionError);
    expect(byDefault.message).to.include("default");
    expect((await list()).length).to.equal(2);

    const files = await h.storedPackages();
    await h.store.instances.setDesired(inst.id, { patchId: null });
    await h.patch.delete({ application: "Demo", server: "Hello", version: 2 }, h.as(TOKENS.op));
    expect((await list()).map((p) => p.version)).to.deep.equal([1]);
    expect(await h.storage.has(v2.sha256)).to.equal(false);
    expect(await h.storedPackages()).to.have.length(files.length - 1);
    const events = await h.store.events.list({ kind: "patch.delete", target: "Demo.Hello" });
    expect(events.map((e) => e.actor)).to.deep.equal(["ann"]);
    const gone = await rejects(download(2));
    expect(gone).to.be.instanceOf(NotFoundError);
    await h.store.instances.remove(inst.id);
  });

  it("keeps the stored file while another patch has the same bytes", async () => {
    const data = pkgOf(2000, "Demo", "Empty");
    const a = await upload(data, { server: "Empty" });
    const b = await upload(data, { server: "Empty" });
    expect([a.version, b.version]).to.deep.equal([1, 2]);
    await h.patch.delete({ application: "Demo", server: "Empty", version: 1 }, h.as(TOKENS.op));
    expect(await h.storage.has(sha(data))).to.equal(true);
    expect(Buffer.concat((await download(2, 0, "Empty")).map((c) => c.data)).equals(data)).to.equal(true);
    await h.patch.delete({ application: "Demo", server: "Empty", version: 2 }, h.as(TOKENS.op));
    expect(await h.storage.has(sha(data))).to.equal(false);
  });

  it("answers NOT_FOUND naming an unknown server or version", async () => {
    const srv = await rejects(h.patch.list({ application: "Demo", server: "Nope" }, h.as(TOKENS.viewer)));
    expect(srv).to.be.instanceOf(NotFoundError);
    expect(srv.message).to.include("Demo.Nope");
    const ver = await rejects(download(42));
    expect(ver).to.be.instanceOf(NotFoundError);
    expect(ver.message).to.include("42");
    expect(await rejects(h.patch.setDefault({ application: "Demo", server: "Hello", version: 42 }, h.as(TOKENS.op)))).to.be.instanceOf(NotFoundError);
  });
  it("keeps the package's own version with the patch (sgrid.json, else package.json; none: \"\") and lists it", async () => {
    await h.store.servers.create({ application: "Demo", name: "Versioned", type: "node" });
    const withManifestVersion = gzip(buildTar([
      { name: "sgrid.json", body: JSON.stringify({ app: "Demo", server: "Versioned", type: "node", entry: "main.js", version: "1.4.0" }) },
      { name: "package.json", body: JSON.stringify({ name: "x", version: "9.9.9" }) },
      { name: "main.js", body: crypto.randomBytes(100) },
    ]));
    const withPackageJson = gzip(buildTar([
      { name: "package.json", body: JSON.stringify({ name: "versioned", version: "2.0.1-rc.1", main: "main.js" }) },
      { name: "main.js", body: crypto.randomBytes(100) },
    ]));
    expect((await upload(withManifestVersion, { server: "Versioned" })).packageVersion).to.equal("1.4.0");
    expect((await upload(withPackageJson, { server: "Versioned" })).packageVersion).to.equal("2.0.1-rc.1");
    expect((await upload(pkgOf(100, "Demo", "Versioned"), { server: "Versioned" })).packageVersion).to.equal("");
    expect((await list("Versioned")).map((p) => [p.version, p.packageVersion])).to.deep.equal([[3, ""], [2, "2.0.1-rc.1"], [1, "1.4.0"]]);
    expect((await h.store.patches.getByVersion("Demo", "Versioned", 1)).packageVersion).to.equal("1.4.0");
  });
});
