/**
 * Package uploads: the request body is written to a private temp file while
 * it is hashed and counted, checked (gzip magic, a tar header inside, the
 * size limit, the sha256 the browser declared if it did), and only then
 * streamed to the registry's Patch.Upload with the sha256 and size computed
 * here.
 *
 * Why buffer in admin rather than hash in the browser: `crypto.subtle` exists
 * only in secure contexts (HTTPS or localhost), and an admin app on a LAN
 * address over plain HTTP would have no way to hash; a temp file also lets
 * a bad package be refused before a byte reaches the registry. The page
 * still sends `x-sha256` when it can hash, and a mismatch is refused
 * (end-to-end integrity when available).
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { AdminUploadInvalidError, AdminUploadTooLargeError } from "./errors";

export interface BufferedUpload {
  file: string;
  sha256: string;
  size: number;
  /** Removes the temp file and its directory. Idempotent, never throws. */
  dispose(): Promise<void>;
}

const GZIP_MAGIC = [0x1f, 0x8b];

/** Streams `source` to a temp file under `tmpDir`, hashing and counting; throws and leaves nothing behind on any failure. */
export async function bufferUpload(source: Readable, opts: { tmpDir: string; maxBytes: number; declaredSha256?: string }): Promise<BufferedUpload> {
  const dir = await fs.promises.mkdtemp(path.join(opts.tmpDir || os.tmpdir(), "sgrid-admin-upload-"));
  const file = path.join(dir, "package.tgz");
  const dispose = async (): Promise<void> => {
    await fs.promises.rm(dir, { recursive: true, force: true }).catch(() => undefined);
  };
  try {
    const hash = createHash("sha256");
    let size = 0;
    let head = Buffer.alloc(0);
    const meter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        size += chunk.length;
        if (size > opts.maxBytes) {
          cb(new AdminUploadTooLargeError(`package is larger than the ${opts.maxBytes} bytes allowed`, { field: "file", maxBytes: opts.maxBytes }));
          return;
        }
        if (head.length < 2) head = Buffer.concat([head, chunk.subarray(0, 2)]);
        if (head.length >= 2 && (head[0] !== GZIP_MAGIC[0] || head[1] !== GZIP_MAGIC[1])) {
          cb(new AdminUploadInvalidError("not a .tgz package: the file is not gzip-compressed", { field: "file" }));
          return;
        }
        hash.update(chunk);
        cb(null, chunk);
      },
    });
    await pipeline(source, meter, fs.createWriteStream(file, { mode: 0o600 }));
    if (size === 0) throw new AdminUploadInvalidError("the package is empty", { field: "file" });
    if (size < 2) throw new AdminUploadInvalidError("not a .tgz package: the file is not gzip-compressed", { field: "file" });
    const sha256 = hash.digest("hex");
    if (opts.declaredSha256 && opts.declaredSha256.toLowerCase() !== sha256) {
      throw new AdminUploadInvalidError(`the package's sha256 is ${sha256}, not the ${opts.declaredSha256} the page computed (damaged in transit?)`, { field: "file" });
    }
    await checkTarInside(file);
    return { file, sha256, size, dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}

/** Unzips the first block and checks it is a tar header (checksum right); AdminUploadInvalidError otherwise. */
async function checkTarInside(file: string): Promise<void> {
  const first = await new Promise<Buffer>((resolve, reject) => {
    const input = fs.createReadStream(file);
    const gunzip = createGunzip();
    let got = Buffer.alloc(0);
    const done = (buf: Buffer): void => {
      input.destroy();
      gunzip.destroy();
      resolve(buf);
    };
    gunzip.on("data", (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 512) done(got.subarray(0, 512));
    });
    gunzip.on("end", () => done(got));
    gunzip.on("error", (e) => reject(new AdminUploadInvalidError(`not a .tgz package: bad gzip data (${e.message})`, { field: "file" })));
    input.on("error", reject);
    input.pipe(gunzip);
  });
  if (first.length < 512 || !validTarHeader(first)) {
    throw new AdminUploadInvalidError("not a .tgz package: the gzip data is not a tar archive", { field: "file" });
  }
}

/** POSIX/GNU tar header checksum: the sum of the 512 bytes with the checksum field read as spaces. */
function validTarHeader(block: Buffer): boolean {
  const field = block.subarray(148, 156).toString("latin1").replace(/\0.*$/s, "").trim();
  if (!/^[0-7]+$/.test(field)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return sum === parseInt(field, 8);
}
