/**
 * Whole-tree permission changes and removal for release directories.
 *
 * Links are never followed (every entry is lstat'ed first), so a link in a
 * release can never make the agent chmod or delete something outside it.
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** Removes write permission from every file and directory under `dir` (links untouched). */
export async function makeReadOnly(dir: string): Promise<void> {
  await walk(dir, async (p, st) => {
    const mode = st.mode & 0o7777;
    if ((mode & 0o222) !== 0) await fs.promises.chmod(p, mode & ~0o222);
  }, "post");
}

/**
 * Gives the owner write permission on every directory under `dir`, so the
 * tree can be removed without root. Directories are changed before they are
 * entered.
 */
export async function makeDirsWritable(dir: string): Promise<void> {
  await walk(dir, async (p, st) => {
    if (!st.isDirectory()) return;
    const mode = st.mode & 0o7777;
    if ((mode & 0o700) !== 0o700) await fs.promises.chmod(p, mode | 0o700);
  }, "pre");
}

/** Removes a release tree, read-only or not. Idempotent. */
export async function removeTree(dir: string): Promise<void> {
  try {
    await makeDirsWritable(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  await fs.promises.rm(dir, { recursive: true, force: true });
}

type Visit = (p: string, st: fs.Stats) => Promise<void>;

async function walk(p: string, visit: Visit, order: "pre" | "post"): Promise<void> {
  const st = await fs.promises.lstat(p);
  if (st.isSymbolicLink()) return;
  if (!st.isDirectory()) {
    await visit(p, st);
    return;
  }
  if (order === "pre") await visit(p, st);
  for (const name of await fs.promises.readdir(p)) await walk(path.join(p, name), visit, order);
  if (order === "post") await visit(p, st);
}
