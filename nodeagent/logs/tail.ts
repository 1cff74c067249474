/**
 * The last lines of a log file, read backwards from its end in blocks, so a
 * multi-gigabyte log costs no more than the lines asked for (bounded by
 * `maxBytes` in any case). Used by admin's "tail an instance's log".
 */
import * as fs from "node:fs";

export interface TailOptions {
  /** Most bytes read from the end of the file. Default 1 MiB. */
  maxBytes?: number;
}

export const TAIL_DEFAULTS = Object.freeze({ maxBytes: 1024 * 1024, maxLines: 10_000 });

const BLOCK = 64 * 1024;

/**
 * Returns up to `lines` last lines of `file` (without their newlines), oldest
 * first. A file that does not exist yet has no lines. When `maxBytes` is
 * reached before enough lines, the first (partial) line is dropped.
 * Throws TypeError on a bad `lines` or `maxBytes`.
 */
export function tail(file: string, lines: number, options: TailOptions = {}): Promise<string[]> {
  if (!Number.isInteger(lines) || lines < 0 || lines > TAIL_DEFAULTS.maxLines) {
    throw new TypeError(`tail: lines must be an integer from 0 to ${TAIL_DEFAULTS.maxLines}, got ${lines}`);
  }
  const maxBytes = options.maxBytes ?? TAIL_DEFAULTS.maxBytes;
  if (!Number.isInteger(maxBytes) || maxBytes <= 0) throw new TypeError(`tail: maxBytes must be a positive integer, got ${maxBytes}`);
  return lines === 0 ? Promise.resolve([]) : readTail(file, lines, maxBytes);
}

async function readTail(file: string, lines: number, maxBytes: number): Promise<string[]> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  try {
    const size = (await fh.stat()).size;
    const floor = Math.max(0, size - maxBytes);
    const chunks: Buffer[] = [];
    let pos = size;
    let newlines = 0;
    // One newline more than lines are needed, plus one when the file ends with a newline.
    while (pos > floor && newlines <= lines) {
      const len = Math.min(BLOCK, pos - floor);
      pos -= len;
      const buf = Buffer.alloc(len);
      const { bytesRead } = await fh.read(buf, 0, len, pos);
      const got = buf.subarray(0, bytesRead);
      chunks.unshift(got);
      for (const b of got) if (b === 0x0a) newlines++;
    }
    let text = Buffer.concat(chunks).toString("utf8");
    if (text.endsWith("\n")) text = text.slice(0, -1);
    if (text === "") return [];
    const all = text.split("\n");
    if (pos > 0 && all.length > 0) all.shift();
    return all.slice(-lines);
  } finally {
    await fh.close();
  }
}
