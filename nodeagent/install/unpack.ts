/**
 * Safe unpacking of a package (.tgz or plain .tar) into an empty directory.
 *
 * The `tar` package parses; this file decides and writes, so that every rule
 * is ours and every refusal names its reason:
 * - entry paths must be relative and free of ".." segments (no stripping and
 *   carrying on: a package that tries is refused as a whole);
 * - symbolic links must resolve inside the release, through any chain of
 *   other links of the package ({@link resolveLinkTarget}), checked when each
 *   link is made and again once the whole package is unpacked;
 * - hard links must name a regular file unpacked earlier from the package;
 * - no entry may be written through a link, or over an earlier entry;
 * - device, fifo and unknown entry types are refused;
 * - the unpacked size and entry count are capped while streaming: a file's
 *   declared size is charged before its first byte is written, and the
 *   decompressed stream itself is capped, so a gzip bomb stops after at most
 *   the cap, never after filling the disk.
 * Files are created with O_EXCL|O_NOFOLLOW, mode 0755 when the package marks
 * them executable and 0644 otherwise (never setuid/setgid, never chowned).
 *
 * On refusal the promise rejects and the destination may hold a partial
 * tree: the caller owns the directory and removes it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { Readable, Transform, Writable, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Parser, ReadEntry } from "tar";
import { SgridError } from "sgridnext";
import { PackageCorruptError, PackageTooLargeError, PackageUnsafeError } from "./errors";
import { resolveLinkTarget, splitSegments } from "./link-resolver";

/** Limits a package must stay within while it is unpacked. */
export interface UnpackLimits {
  /** Most bytes all regular files of the package may hold together once unpacked. Default 1 GiB. */
  maxBytes: number;
  /** Most entries (files, directories and links) a package may hold. Default 100 000. */
  maxEntries: number;
}

export const DEFAULT_UNPACK_LIMITS: Readonly<UnpackLimits> = Object.freeze({
  maxBytes: 1024 * 1024 * 1024,
  maxEntries: 100_000,
});

/** What an unpack produced. */
export interface UnpackStats {
  /** Entries unpacked (files, directories, links; implicit parent directories not counted). */
  entries: number;
  /** Bytes of regular files written. */
  bytes: number;
  /** True when the package was gzip-compressed. */
  gzip: boolean;
}

/** Bytes of tar framing allowed per entry on top of file contents (header, pax header, padding). */
const FRAMING_PER_ENTRY = 2048;
/** Longest pax / long-name meta entry accepted; real ones are a few hundred bytes. */
const MAX_META_ENTRY = 64 * 1024;

type Kind = "dir" | "file" | "symlink";

const GZIP_MAGIC = [0x1f, 0x8b];
/** Bytes per read of the package file while unpacking. */
const UNPACK_READ_BYTES = 1024 * 1024;
/** Bytes of inflated output per chunk (zlib's default is 16 KiB). */
const UNPACK_INFLATE_CHUNK_BYTES = 256 * 1024;

/**
 * Unpacks the package at `source` (a file, or its bytes in order as they
 * arrive: ./streamed-package.ts) into `destDir`, which must exist and be
 * empty. Rejects with PackageUnsafeError, PackageTooLargeError or
 * PackageCorruptError (or an fs error such as ENOSPC, or the error the
 * bytes' iterator throws).
 */
export async function unpackPackage(source: string | AsyncIterable<Uint8Array>, destDir: string, limits: UnpackLimits = DEFAULT_UNPACK_LIMITS): Promise<UnpackStats> {
  let input: NodeJS.ReadableStream;
  let gzip: boolean;
  if (typeof source === "string") {
    gzip = await startsWith(source, GZIP_MAGIC);
    input = fs.createReadStream(source, { highWaterMark: UNPACK_READ_BYTES });
  } else {
    const it = source[Symbol.asyncIterator]();
    const head = await readHead(it, GZIP_MAGIC.length);
    gzip = head.length >= GZIP_MAGIC.length && GZIP_MAGIC.every((b, i) => head.at(i) === b);
    // Pulled chunk by chunk: the inflater and the tar parser hold the bytes back, not a buffer here.
    input = Readable.from(prepend(head.chunks, it), { objectMode: false, highWaterMark: 1 });
  }
  const extractor = new Extractor(destDir, limits);
  const tarCap = limits.maxBytes + (limits.maxEntries + 2) * FRAMING_PER_ENTRY;
  // Large pieces: the defaults (64 KiB reads, 16 KiB of inflated output per chunk) cost about
  // 3x the CPU per byte in stream and tar-parser overhead; every check below is per entry, not per chunk.
  const stages: (NodeJS.ReadableStream | NodeJS.WritableStream | NodeJS.ReadWriteStream)[] = [input];
  if (gzip) stages.push(zlib.createGunzip({ chunkSize: UNPACK_INFLATE_CHUNK_BYTES }));
  stages.push(new ByteCap(tarCap), new TarSink(extractor));
  try {
    await (pipeline as (...s: unknown[]) => Promise<void>)(...stages);
    extractor.verifyLinks();
  } catch (err) {
    extractor.closeOpenFile();
    throw toPackageError(err);
  }
  return { entries: extractor.entries, bytes: extractor.bytes, gzip };
}

/** Chunks pulled from `it` until they hold at least `n` bytes (fewer at its end). */
async function readHead(it: AsyncIterator<Uint8Array>, n: number): Promise<{ chunks: Uint8Array[]; length: number; at(i: number): number | undefined }> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  while (length < n) {
    const r = await it.next();
    if (r.done) break;
    chunks.push(r.value);
    length += r.value.length;
  }
  const at = (i: number): number | undefined => {
    for (const c of chunks) {
      if (i < c.length) return c[i];
      i -= c.length;
    }
    return undefined;
  };
  return { chunks, length, at };
}

/** `head`, then the rest of `it`; ending early (the pipeline failed) ends `it` too. */
async function* prepend(head: Uint8Array[], it: AsyncIterator<Uint8Array>): AsyncGenerator<Uint8Array> {
  let finished = false;
  try {
    yield* head;
    for (;;) {
      const r = await it.next();
      if (r.done) {
        finished = true;
        return;
      }
      yield r.value;
    }
  } finally {
    if (!finished) await it.return?.();
  }
}

async function startsWith(file: string, magic: number[]): Promise<boolean> {
  const fh = await fs.promises.open(file, "r");
  try {
    const buf = Buffer.alloc(magic.length);
    const { bytesRead } = await fh.read(buf, 0, magic.length, 0);
    return bytesRead === magic.length && magic.every((b, i) => buf[i] === b);
  } finally {
    await fh.close();
  }
}

function toPackageError(err: unknown): unknown {
  if (err instanceof SgridError) return err;
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.code === "string" && (e.code.startsWith("Z_") || e.code.startsWith("ERR_ZLIB"))) {
    return new PackageCorruptError(`package is not a valid gzip stream: ${e.message}`, { reason: e.code }, err);
  }
  return err;
}

/** Passes bytes through and fails once more than `cap` have gone by (the decompressed tar stream). */
class ByteCap extends Transform {
  private seen = 0;
  constructor(private readonly cap: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.cap) {
      cb(new PackageTooLargeError(`package refused: its tar stream is larger than ${this.cap} bytes (stopped after ${this.seen})`, { limitBytes: this.cap, readBytes: this.seen }));
      return;
    }
    cb(null, chunk);
  }
}

/** Feeds the tar parser; every entry is handled synchronously inside write(), so the parser never holds data back. */
class TarSink extends Writable {
  constructor(private readonly ex: Extractor) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    try {
      this.ex.parser.write(chunk);
    } catch (err) {
      this.ex.fail(err);
    }
    cb(this.ex.failure ?? null);
  }
  override _final(cb: (err?: Error | null) => void): void {
    if (this.ex.failure) return cb(this.ex.failure);
    let settled = false;
    const done = (err?: Error | null): void => {
      if (settled) return;
      settled = true;
      cb(err ?? this.ex.failure ?? null);
    };
    this.ex.parser.once("end", () => done());
    this.ex.parser.once("error", (err: Error) => done(this.ex.failure ?? err));
    try {
      this.ex.parser.end();
    } catch (err) {
      this.ex.fail(err);
      done();
    }
  }
}

/** Applies the rules to each entry the parser emits and writes it. */
class Extractor {
  readonly parser: Parser;
  failure: Error | undefined;
  entries = 0;
  bytes = 0;
  private readonly kinds = new Map<string, Kind>();
  private readonly links = new Map<string, string>();
  private openFd: number | undefined;

  constructor(private readonly root: string, private readonly limits: UnpackLimits) {
    // tar is loaded by the first install, not when the agent starts.
    const { Parser: TarParser } = require("tar") as typeof import("tar");
    this.parser = new TarParser({ strict: true, zstd: false, brotli: false, maxMetaEntrySize: MAX_META_ENTRY });
    this.parser.on("entry", (entry: ReadEntry) => this.onEntry(entry));
    this.parser.on("ignoredEntry", (entry: ReadEntry) => {
      const why = entry.meta ? `an oversized ${entry.type} header` : `unsupported type ${entry.type}`;
      this.fail(new PackageUnsafeError(`package refused: entry "${entry.path}" has ${why}`, { entry: entry.path, type: entry.type }));
    });
    this.parser.on("error", (err: Error) => {
      this.fail(new PackageCorruptError(`package is not a valid tar archive: ${err.message}`, { reason: (err as { tarCode?: string }).tarCode ?? "TAR_ERROR" }, err));
    });
  }

  /** Records the first failure and stops the parser; later failures are consequences and are dropped. */
  fail(err: unknown): void {
    if (this.failure) return;
    this.failure = err instanceof Error ? err : new Error(String(err));
    this.closeOpenFile();
    try {
      this.parser.abort(this.failure);
    } catch {
      // abort re-emits as 'error', which is handled; nothing else can be done here
    }
  }

  closeOpenFile(): void {
    if (this.openFd === undefined) return;
    try {
      fs.closeSync(this.openFd);
    } catch {
      // already closed or never opened; nothing to release
    }
    this.openFd = undefined;
  }

  /** Re-checks every link against the finished tree: a later entry can change where an earlier link leads. */
  verifyLinks(): void {
    for (const [key, target] of this.links) this.checkLink(key, target);
  }

  private onEntry(entry: ReadEntry): void {
    if (this.failure) {
      entry.resume();
      return;
    }
    try {
      this.handle(entry);
    } catch (err) {
      this.fail(err);
      entry.resume();
    }
  }

  private handle(entry: ReadEntry): void {
    if (++this.entries > this.limits.maxEntries) {
      throw new PackageTooLargeError(`package refused: more than ${this.limits.maxEntries} entries`, { limitEntries: this.limits.maxEntries });
    }
    const raw = entry.path;
    const segs = entryPath(raw, "entry");
    const key = segs.join("/");
    switch (entry.type) {
      case "Directory":
        if (segs.length > 0) this.makeDir(segs);
        entry.resume();
        return;
      case "File":
      case "OldFile":
      case "ContiguousFile":
        this.requireName(segs, raw);
        return this.writeFile(entry, segs);
      case "SymbolicLink":
        this.requireName(segs, raw);
        this.makeSymlink(segs, raw, entry.linkpath ?? "");
        entry.resume();
        return;
      case "Link":
        this.requireName(segs, raw);
        this.makeHardlink(segs, raw, entry.linkpath ?? "");
        entry.resume();
        return;
      case "CharacterDevice":
      case "BlockDevice":
      case "FIFO":
        throw new PackageUnsafeError(`package refused: entry "${raw}" is a ${entry.type === "FIFO" ? "fifo" : "device file"}; device and fifo entries are not allowed`, { entry: raw, type: entry.type });
      default:
        throw new PackageUnsafeError(`package refused: entry "${raw}" has unsupported type ${entry.type}`, { entry: raw, type: entry.type, key });
    }
  }

  private requireName(segs: string[], raw: string): void {
    if (segs.length === 0) throw new PackageUnsafeError(`package refused: entry "${raw}" names the release root but is not a directory`, { entry: raw });
  }

  private abs(segs: readonly string[]): string {
    return path.join(this.root, ...segs);
  }

  /** Makes sure every parent of `segs` is a real directory of the release, creating missing ones. */
  private ensureParents(segs: readonly string[], raw: string): void {
    for (let i = 1; i < segs.length; i++) {
      const prefix = segs.slice(0, i).join("/");
      const kind = this.kinds.get(prefix);
      if (kind === "dir") continue;
      if (kind === "symlink") throw new PackageUnsafeError(`package refused: entry "${raw}" passes through the symbolic link "${prefix}"`, { entry: raw, link: prefix });
      if (kind === "file") throw new PackageUnsafeError(`package refused: entry "${raw}" is inside "${prefix}", which is a file`, { entry: raw });
      fs.mkdirSync(this.abs(segs.slice(0, i)), { mode: 0o755 });
      this.kinds.set(prefix, "dir");
    }
  }

  /** Claims a path for a new entry; false when it is a directory that already exists (harmless repeat). */
  private claim(segs: readonly string[], raw: string, kind: Kind): boolean {
    const key = segs.join("/");
    const existing = this.kinds.get(key);
    if (existing === undefined) {
      this.kinds.set(key, kind);
      return true;
    }
    if (existing === "dir" && kind === "dir") return false;
    throw new PackageUnsafeError(`package refused: entry "${raw}" appears twice (would overwrite an earlier ${existing})`, { entry: raw });
  }

  private makeDir(segs: string[]): void {
    const raw = segs.join("/");
    this.ensureParents(segs, raw);
    if (this.claim(segs, raw, "dir")) fs.mkdirSync(this.abs(segs), { mode: 0o755 });
  }

  private writeFile(entry: ReadEntry, segs: string[]): void {
    const raw = entry.path;
    this.bytes += entry.size;
    if (this.bytes > this.limits.maxBytes) {
      throw new PackageTooLargeError(`package refused: it unpacks to more than ${this.limits.maxBytes} bytes (at entry "${raw}", declared ${entry.size} bytes)`, { limitBytes: this.limits.maxBytes, declaredBytes: this.bytes, entry: raw });
    }
    this.ensureParents(segs, raw);
    this.claim(segs, raw, "file");
    const mode = ((entry.mode ?? 0o644) & 0o111) !== 0 ? 0o755 : 0o644;
    const fd = fs.openSync(this.abs(segs), fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, mode);
    this.openFd = fd;
    fs.fchmodSync(fd, mode);
    entry.on("data", (chunk: Buffer) => {
      if (this.failure) return;
      try {
        let off = 0;
        while (off < chunk.length) off += fs.writeSync(fd, chunk, off, chunk.length - off);
      } catch (err) {
        this.fail(err);
      }
    });
    entry.on("end", () => {
      if (this.openFd === fd) this.closeOpenFile();
    });
    entry.resume();
  }

  private makeSymlink(segs: string[], raw: string, target: string): void {
    if (target === "" || target.includes("\0")) throw new PackageUnsafeError(`package refused: symbolic link "${raw}" has an empty or invalid target`, { entry: raw });
    this.ensureParents(segs, raw);
    const key = segs.join("/");
    this.checkLink(key, target);
    this.claim(segs, raw, "symlink");
    fs.symlinkSync(target, this.abs(segs));
    this.links.set(key, target);
  }

  private checkLink(key: string, target: string): void {
    const res = resolveLinkTarget(splitSegments(key).slice(0, -1), target, this.links);
    if (res.ok) return;
    const why = res.reason === "absolute" ? "is absolute" : res.reason === "loop" ? "loops" : "points outside the release";
    throw new PackageUnsafeError(`package refused: symbolic link "${key}" -> "${target}" ${why}`, { entry: key, target, reason: res.reason });
  }

  private makeHardlink(segs: string[], raw: string, linkpath: string): void {
    const targetSegs = entryPath(linkpath, `hard link "${raw}" -> target`);
    const tkey = targetSegs.join("/");
    for (let i = 1; i <= targetSegs.length; i++) {
      const prefix = targetSegs.slice(0, i).join("/");
      if (this.kinds.get(prefix) === "symlink") {
        throw new PackageUnsafeError(`package refused: hard link "${raw}" -> "${linkpath}" goes through the symbolic link "${prefix}"`, { entry: raw, target: linkpath });
      }
    }
    if (this.kinds.get(tkey) !== "file") {
      throw new PackageUnsafeError(`package refused: hard link "${raw}" -> "${linkpath}" does not name a file unpacked earlier from the package`, { entry: raw, target: linkpath });
    }
    this.ensureParents(segs, raw);
    this.claim(segs, raw, "file");
    fs.linkSync(this.abs(targetSegs), this.abs(segs));
  }
}

/**
 * Splits an entry path (or hard link target) into release-relative segments,
 * refusing absolute paths and ".." segments outright.
 */
function entryPath(raw: string, what: string): string[] {
  if (raw.includes("\0")) throw new PackageUnsafeError(`package refused: ${what} "${raw}" contains a NUL byte`, { entry: raw });
  if (raw.startsWith("/") || raw.startsWith("\\") || /^[A-Za-z]:/.test(raw)) {
    throw new PackageUnsafeError(`package refused: ${what} "${raw}" is an absolute path`, { entry: raw, reason: "absolute" });
  }
  const segs = splitSegments(raw);
  if (segs.includes("..")) throw new PackageUnsafeError(`package refused: ${what} "${raw}" has a ".." segment`, { entry: raw, reason: "dotdot" });
  return segs;
}
