/**
 * What `sgrid up` keeps in its data dir besides the parts' own data (see
 * up.ts for the layout): the lock that allows one `sgrid up` per data dir,
 * and the secrets made on first start (cluster token, first admin password),
 * mode 0600.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { ConfigError, FailedPreconditionError } from "sgridnext";
import { readProcStat } from "../nodeagent";

/** File and folder names under the data dir. */
export const UP_FILES = Object.freeze({
  lock: "up.lock",
  clusterToken: "cluster-token",
  adminPassword: "admin-password",
  registry: "registry",
  node: "node",
  admin: "admin",
});

// ---- the lock --------------------------------------------------------------------------

interface LockInfo {
  pid: number;
  /** /proc start time of the pid (clock ticks after boot): a recycled pid is not mistaken for the owner. */
  startTime: number;
}

function lockHolder(file: string): LockInfo | undefined {
  let info: LockInfo;
  try {
    info = JSON.parse(fs.readFileSync(file, "utf8")) as LockInfo;
  } catch {
    return undefined; // unreadable or half written: treated as stale
  }
  if (!Number.isInteger(info.pid) || info.pid <= 0) return undefined;
  const stat = readProcStat(info.pid);
  if (!stat || stat.state === "Z") return undefined;
  if (info.startTime !== undefined && stat.startTime !== info.startTime) return undefined;
  return info;
}

/**
 * Takes `<dataDir>/up.lock` for this process. Throws FailedPreconditionError
 * naming the pid when another live `sgrid up` holds it; takes over a lock
 * whose process is gone. Returns the release function (idempotent, never throws).
 */
export function acquireLock(dataDir: string): () => void {
  const file = path.join(dataDir, UP_FILES.lock);
  const mine: LockInfo = { pid: process.pid, startTime: readProcStat(process.pid)?.startTime ?? 0 };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      fs.writeFileSync(file, JSON.stringify(mine) + "\n", { flag: "wx", mode: 0o644 });
      let released = false;
      return () => {
        if (released) return;
        released = true;
        try {
          if (lockHolder(file)?.pid === process.pid) fs.unlinkSync(file);
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const holder = lockHolder(file);
    if (holder) {
      throw new FailedPreconditionError(
        `another sgrid up (pid ${holder.pid}) is running on ${dataDir}; stop it (Ctrl-C in its terminal, or kill ${holder.pid}) or use another --data-dir`,
        { dataDir, pid: holder.pid, lock: file },
      );
    }
    // Left by a process that is gone: take it over.
    fs.rmSync(file, { force: true });
  }
  throw new FailedPreconditionError(`cannot take the lock ${file}: it keeps coming back`, { lock: file });
}

// ---- secrets kept in the data dir ------------------------------------------------------------

/** Reads a 0600 secret file (tightening a looser mode), or undefined when there is none. */
function readSecret(file: string): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8").trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`);
  }
  if ((fs.statSync(file).mode & 0o077) !== 0) fs.chmodSync(file, 0o600);
  if (text === "") throw new ConfigError(`${file} is empty; delete it to have a new one made`);
  return text;
}

function writeSecret(file: string, value: string): void {
  fs.writeFileSync(file, value + "\n", { mode: 0o600, flag: "wx" });
  fs.chmodSync(file, 0o600);
}

/** The cluster token: SGRID_CLUSTER_TOKEN, else the file, else a new one written to the file. */
export function clusterToken(dataDir: string, env: NodeJS.ProcessEnv = process.env): { token: string; source: string } {
  if (env.SGRID_CLUSTER_TOKEN) return { token: env.SGRID_CLUSTER_TOKEN, source: "SGRID_CLUSTER_TOKEN" };
  const file = path.join(dataDir, UP_FILES.clusterToken);
  const kept = readSecret(file);
  if (kept !== undefined) return { token: kept, source: file };
  const token = crypto.randomBytes(32).toString("hex");
  writeSecret(file, token);
  return { token, source: `${file} (new)` };
}

/**
 * The first admin's password (see the file comment). `undefined` when the
 * registry already exists but the password file is gone (the password is
 * then whatever was set; nothing is printed).
 */
export function adminPassword(dataDir: string, env: NodeJS.ProcessEnv = process.env): { password: string | undefined; note?: string } {
  const file = path.join(dataDir, UP_FILES.adminPassword);
  const kept = readSecret(file);
  if (kept !== undefined) {
    const note = env.SGRID_ADMIN_PASSWORD && env.SGRID_ADMIN_PASSWORD !== kept
      ? `SGRID_ADMIN_PASSWORD is ignored: the admin user was created on first start with the password in ${file}`
      : undefined;
    return { password: kept, note };
  }
  if (fs.existsSync(path.join(dataDir, UP_FILES.registry, "registry.db"))) {
    return { password: undefined, note: `${file} is gone and the registry exists already: log in with the admin password you set` };
  }
  const password = env.SGRID_ADMIN_PASSWORD || crypto.randomBytes(12).toString("base64url");
  writeSecret(file, password);
  return { password };
}
