/**
 * Package uploads: the request body is written to a private temp file while
 * it is hashed and counted, checked (not empty, the size limit, the sha256
 * the browser declared if it did), and only then streamed to the registry's
 * Patch.Upload with the sha256 and size computed here. What makes a package
 * (gzip, tar, manifest) is checked by the registry, the same way for every
 * client (registry/services/package-check.ts): its PATCH_INVALID comes back
 * as a 400 on field `file`.
 *
 * Why buffer in admin rather than hash in the browser: `crypto.subtle` exists
 * only in secure contexts (HTTPS or localhost), and an admin app on a LAN
 * address over plain HTTP would have no way to hash; a temp file also lets
 * an oversized or damaged upload be refused before a byte reaches the registry. The page
 * still sends `x-sha256` when it can hash, and a mismatch is refused
 * (end-to-end integrity when available).
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { AdminUploadInvalidError, AdminUploadTooLargeError } from "./errors";

export interface BufferedUpload {
  file: string;
  sha256: string;
  size: number;
  /** Removes the temp file and its directory. Idempotent, never throws. */
  dispose(): Promise<void>;
}

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
    const meter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        size += chunk.length;
        if (size > opts.maxBytes) {
          cb(new AdminUploadTooLargeError(`package is larger than the ${opts.maxBytes} bytes allowed`, { field: "file", maxBytes: opts.maxBytes }));
          return;
        }
        hash.update(chunk);
        cb(null, chunk);
      },
    });
    await pipeline(source, meter, fs.createWriteStream(file, { mode: 0o600 }));
    if (size === 0) throw new AdminUploadInvalidError("the package is empty", { field: "file" });
    const sha256 = hash.digest("hex");
    if (opts.declaredSha256 && opts.declaredSha256.toLowerCase() !== sha256) {
      throw new AdminUploadInvalidError(`the package's sha256 is ${sha256}, not the ${opts.declaredSha256} the page computed (damaged in transit?)`, { field: "file" });
    }
    return { file, sha256, size, dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}
