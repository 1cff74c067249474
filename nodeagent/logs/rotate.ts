/**
 * Size-based rotation of a servant's stdout/stderr file by copy-then-truncate.
 *
 * Why not rename-and-reopen: the file is held open by a detached servant
 * (and, after an agent restart, by a servant the agent did not start), so
 * the writer cannot be told to reopen. The servant's descriptor is opened
 * with O_APPEND, so after the truncate its next write lands at offset 0 and
 * the file does not become sparse. The price, as for logrotate's
 * copytruncate: lines written between the copy and the truncate are lost;
 * the window is the time to copy one file (milliseconds for 10 MB).
 *
 * Layout: `out.log` (live), `out.log.1` (newest) ... `out.log.<keep>` (oldest).
 */
import * as fs from "node:fs";

export interface RotateOptions {
  /** Rotated copies kept (`.1` ... `.keep`); 0 just truncates. */
  keep: number;
}

/** Rotates `file` now: shifts the copies, copies the live file to `.1`, truncates it. Returns false when `file` does not exist. */
export async function rotateFile(file: string, opts: RotateOptions): Promise<boolean> {
  try {
    await fs.promises.lstat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
  await removeBeyond(file, opts.keep);
  for (let i = opts.keep - 1; i >= 1; i--) {
    try {
      await fs.promises.rename(`${file}.${i}`, `${file}.${i + 1}`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  if (opts.keep >= 1) await fs.promises.copyFile(file, `${file}.1`);
  await fs.promises.truncate(file, 0);
  return true;
}

/** Rotates `file` when it is larger than `maxBytes`. Returns true when it rotated. */
export async function rotateIfLarger(file: string, maxBytes: number, opts: RotateOptions): Promise<boolean> {
  let size: number;
  try {
    size = (await fs.promises.stat(file)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
  if (size <= maxBytes) return false;
  return rotateFile(file, opts);
}

/** Removes copies numbered above `keep` (left when `keep` was lowered). */
async function removeBeyond(file: string, keep: number): Promise<void> {
  for (let i = Math.max(keep, 0) + 1; ; i++) {
    try {
      await fs.promises.unlink(`${file}.${i}`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
  }
}
