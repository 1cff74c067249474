/**
 * The package archive itself: a deterministic `.tgz` (entries sorted,
 * directories before their contents, fixed mtime, no owner, normalised
 * modes, gzip without a header time) with the manifest first, and its
 * sha256. What goes in is decided by build-package.ts.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as zlib from "node:zlib";
import { pipeline } from "node:stream/promises";
import { Header, PackSync, ReadEntry, type WriteEntry } from "tar";
import { MANIFEST_FILE, type PackageManifest } from "sgridnext";

/** Fixed mtime of every entry (npm pack's choice), so the same inputs give the same bytes. */
export const PACKAGE_MTIME = new Date("1985-10-26T08:15:00.000Z");

/** One archive entry: a project-relative posix path and what it is. */
export interface Entry {
  rel: string;
  kind: "dir" | "file" | "symlink" | "memory";
  /** The bytes of a "memory" entry (made here, not read from the project). */
  content?: Buffer;
}

/** Orders paths so that a directory comes right before its own contents (segment-wise compare). */
export function compareEntries(a: string, b: string): number {
  const as = a.split("/");
  const bs = b.split("/");
  for (let i = 0; i < Math.min(as.length, bs.length); i++) {
    if (as[i] !== bs[i]) return as[i]! < bs[i]! ? -1 : 1;
  }
  return as.length - bs.length;
}

export async function writeArchive(root: string, file: string, manifest: PackageManifest, entries: Entry[]): Promise<void> {
  // Level 9 and no header time: the same bytes on every run on the same zlib.
  const gz = zlib.createGzip({ level: 9 });
  const body = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
  const header = new Header({ path: MANIFEST_FILE, mode: 0o644, size: body.length, mtime: PACKAGE_MTIME, type: "File" });
  header.encode();
  gz.write(header.block!);
  gz.write(body);
  gz.write(Buffer.alloc((512 - (body.length % 512)) % 512));
  const pack = new PackSync({
    cwd: root,
    portable: true,
    mtime: PACKAGE_MTIME,
    noDirRecurse: true,
    // Modes are normalised so the umask of the build machine does not change the bytes.
    onWriteEntry: (e: WriteEntry) => {
      if (e.stat) {
        const exec = e.type === "Directory" || (e.stat.mode & 0o111) !== 0;
        (e.stat as { mode: number }).mode = (e.stat.mode & ~0o7777) | (exec ? 0o755 : 0o644);
      }
    },
  });
  // PackSync reads the files synchronously and writes into the gzip stream as
  // entries are added. The asynchronous Pack stalled now and then on large
  // trees (thousands of node_modules files): its queue stopped, the event
  // loop emptied and the process exited 0 with half an archive.
  const done = pipeline(gz, fs.createWriteStream(file, { mode: 0o644 }));
  pack.on("error", (err: unknown) => gz.destroy(err as Error));
  pack.pipe(gz);
  for (const e of entries) {
    if (e.kind === "memory") {
      // A file made here (the bundle): a tar entry built from its bytes, in its sorted place.
      const entry = new ReadEntry(new Header({ path: e.rel, mode: 0o644, size: e.content!.length, mtime: PACKAGE_MTIME, type: "File" }));
      entry.end(e.content!);
      pack.add(entry);
    } else {
      pack.add(e.rel);
    }
  }
  pack.end();
  await done;
}

/** sha256 (hex) and size of a file, streamed. */
export async function hashFile(file: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of fs.createReadStream(file)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, sha256: hash.digest("hex") };
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}
