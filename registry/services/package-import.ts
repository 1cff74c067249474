/**
 * The way over for packages a registry kept on its own disk (under
 * `<data-dir>/packages/ab/cd/<sha256>`, before packages moved into the
 * database): at start, each such file is streamed into the storage, which
 * checks that its bytes hash to its name, and removed once stored (or when
 * the storage has its bytes already). A file that does not match its name,
 * or that cannot be stored, is left where it is and logged; the next start
 * tries again. Upload temp files (`tmp/*.part`) are removed, and so are the
 * folders left empty. Patch rows are not touched: their storage key is the
 * sha256 either way.
 */
import { createReadStream, promises as fsp } from "node:fs";
import * as path from "node:path";
import type { Logger } from "sgridnext";
import type { PackageStorage } from "../server/context";

const KEY_RE = /^[0-9a-f]{64}$/;
const PAIR_RE = /^[0-9a-f]{2}$/;

async function entries(dir: string): Promise<string[]> {
  return fsp.readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT" || err.code === "ENOTDIR") return [];
    throw err;
  });
}

/** Moves the packages under `dir` into `storage`; resolves with how many were imported and how many were left. Never throws for one bad file. */
export async function importDiskPackages(storage: PackageStorage, dir: string, log: Logger): Promise<{ imported: number; left: number }> {
  let imported = 0;
  let left = 0;
  for (const a of await entries(dir)) {
    if (!PAIR_RE.test(a)) continue;
    for (const b of await entries(path.join(dir, a))) {
      if (!PAIR_RE.test(b)) continue;
      for (const key of await entries(path.join(dir, a, b))) {
        const file = path.join(dir, a, b, key);
        if (!KEY_RE.test(key) || !key.startsWith(a + b)) continue;
        try {
          const st = await fsp.stat(file);
          if (!st.isFile()) continue;
          if (!(await storage.has(key))) {
            await storage.put(createReadStream(file), { sha256: key, size: st.size, maxBytes: st.size });
            imported++;
          }
          await fsp.rm(file, { force: true });
        } catch (err) {
          left++;
          log.warn({ file, err: (err as Error).message }, "package file from disk not moved into the database; left in place");
        }
      }
      await fsp.rmdir(path.join(dir, a, b)).catch(() => undefined);
    }
    await fsp.rmdir(path.join(dir, a)).catch(() => undefined);
  }
  const tmp = path.join(dir, "tmp");
  for (const name of await entries(tmp)) {
    if (name.endsWith(".part")) await fsp.rm(path.join(tmp, name), { force: true });
  }
  await fsp.rmdir(tmp).catch(() => undefined);
  await fsp.rmdir(dir).catch(() => undefined);
  if (imported > 0 || left > 0) log.info({ dir, imported, left }, "moved package files from disk into the database");
  return { imported, left };
}
