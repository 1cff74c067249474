/**
 * Crash-safe file replacement: after a crash (even `kill -9` or power loss
 * on a journaling filesystem) the file holds either the old or the new
 * content in full, never a mix or nothing.
 *
 * Steps: write a temp file in the same directory, fsync it, rename it over
 * the target (atomic within one filesystem), fsync the directory so the
 * rename itself is durable.
 */
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { StateWriteError } from "../errors";

let counter = 0;

/** Replaces `file` with `data` atomically and durably. Rejects with StateWriteError; the temp file is removed on failure. */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}-${++counter}`);
  try {
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    const fh = await fsp.open(tmp, "w", mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, file);
    const dh = await fsp.open(dir, "r");
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch (err) {
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw new StateWriteError(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { file });
  }
}
