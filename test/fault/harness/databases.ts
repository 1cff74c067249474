/**
 * Databases going away for real, for the fault suite.
 *
 * - SQLite: {@link lockSqlite} makes the registry's database file unusable
 *   the way a stuck process does: another process takes SQLite's own WAL
 *   locks (the eight lock bytes of `<db>-shm`: writer, checkpointer,
 *   recovery and every read mark) with fcntl, so every read and write of the
 *   registry fails (SQLITE_PROTOCOL / SQLITE_BUSY) until the lock is let go.
 *   The locker is Python's fcntl (arguments as an array), so the lock is a
 *   plain POSIX lock of another process, exactly what SQLite respects.
 * - MariaDB: {@link OwnMariaDb} is a mariadbd of the test's own (own data
 *   directory under the run's folder, own port, loopback only), so it can be
 *   stopped and started without touching the shared server.
 * Both are child processes of the run (the reaper ends them if it is killed).
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { Proc } from "../../e2e/helpers/procs";
import { runCommand } from "../../e2e/helpers/scaffold";
import { reservePort } from "../../helpers/ports";
import { waitFor } from "../../helpers/wait";

const PYTHON = "/usr/bin/python3";
const MARIADBD = "/usr/sbin/mariadbd";
const INSTALL_DB = "/usr/bin/mariadb-install-db";

/** SQLite's WAL locks: offset 120 of the -shm file, 8 bytes (see the SQLite source, os_unix.c / wal.c). */
const LOCKER = `
import fcntl, os, sys, time
fd = os.open(sys.argv[1] + "-shm", os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX, 8, 120, 0)
print("LOCKED", flush=True)
while True:
    time.sleep(3600)
`;

export interface Held {
  release(): Promise<void>;
}

/** Takes every WAL lock of SQLite database `file` (in WAL mode, opened by the registry) until release(). */
export async function lockSqlite(file: string, logDir: string): Promise<Held> {
  const proc = new Proc("sqlite locker", PYTHON, ["-c", LOCKER, file], { logFile: path.join(logDir, "sqlite-locker.log") });
  await proc.waitForLine(/^LOCKED$/m, 30_000);
  return {
    async release() {
      proc.signal("SIGKILL");
      await proc.exited;
    },
  };
}

export function mariadbAvailable(): boolean {
  return fs.existsSync(MARIADBD) && fs.existsSync(INSTALL_DB);
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1", () => { s.destroy(); resolve(true); });
    s.on("error", () => resolve(false));
  });
}

export class OwnMariaDb {
  private proc: Proc | undefined;

  private constructor(readonly dir: string, readonly port: number) {}

  /** Initialises a data directory in `dir` and starts mariadbd on a reserved port. */
  static async create(dir: string): Promise<OwnMariaDb> {
    fs.mkdirSync(dir, { recursive: true });
    const r = await runCommand(INSTALL_DB, ["--no-defaults", `--datadir=${path.join(dir, "data")}`, "--auth-root-authentication-method=normal", "--skip-test-db", "--user=root"], dir, {}, 120_000);
    if (r.code !== 0) throw new Error(`mariadb-install-db failed (exit ${r.code}): ${r.out.slice(-2000)}`);
    const db = new OwnMariaDb(dir, await reservePort());
    await db.start();
    return db;
  }

  /** `mysql://root@127.0.0.1:<port>/<database>` (root without password, loopback only). */
  url(database: string): string {
    return `mysql://root@127.0.0.1:${this.port}/${database}`;
  }

  /** Starts mariadbd on the data directory (again) and waits until it accepts connections. */
  async start(): Promise<void> {
    const d = this.dir;
    this.proc = new Proc("mariadbd", MARIADBD, ["--no-defaults", `--datadir=${path.join(d, "data")}`, `--socket=${path.join(d, "mysqld.sock")}`,
      `--port=${this.port}`, "--bind-address=127.0.0.1", "--user=root", `--pid-file=${path.join(d, "mysqld.pid")}`, `--log-error=${path.join(d, "error.log")}`,
      "--skip-log-bin", "--innodb-buffer-pool-size=32M"], { cwd: d, logFile: path.join(d, "mariadbd.out") });
    const proc = this.proc;
    await waitFor("mariadbd to accept connections", async () => {
      if (!proc.running) throw new Error(`mariadbd exited: ${fs.readFileSync(path.join(d, "error.log"), "utf8").slice(-2000)}`);
      return accepts(this.port);
    }, 60_000, 100);
  }

  /** A clean stop (SIGTERM), as an operator's `systemctl stop`; resolves once it is gone. */
  async stop(): Promise<void> {
    await this.proc?.stop(30_000);
    this.proc = undefined;
  }

  async destroy(): Promise<void> {
    this.proc?.signal("SIGKILL");
    await this.proc?.exited;
    this.proc = undefined;
  }
}
