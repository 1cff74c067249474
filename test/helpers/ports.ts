/**
 * Ports for tests that must name a port before something listens on it (an
 * adapter port in the registry, a flag of a child process).
 *
 * The classic "bind port 0, read it, close it" has a race: between the close
 * and the child's bind, any other test (or another mocha worker) binding
 * port 0 may get the same port from the kernel. Ports here come from
 * 10000-19999, outside the kernel's ephemeral range (so no port-0 bind ever
 * lands on them) and outside the registry's automatic port range
 * (20000-29999), in blocks of 100 that each test process claims for itself
 * with a lock file (so parallel runs and workers never share a port). Each
 * port is handed out once per process, after a check that nothing listens
 * on it. Where the test does not need to know the port beforehand, bind
 * port 0 instead and read the port from the server (or from the child's
 * output).
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { pidAlive } from "./pid";

const FIRST = 10_000;
const BLOCK = 100;
const BLOCKS = 100;
const LOCK_DIR = path.join(os.tmpdir(), "sgrid-test-ports");

let block: number | undefined;
let next = 0;


/** Claims a block no live process holds; starts at a pid-derived block so processes rarely contend. */
function claimBlock(): number {
  fs.mkdirSync(LOCK_DIR, { recursive: true });
  for (let k = 0; k < BLOCKS; k++) {
    const b = (process.pid + k + (block ?? 0)) % BLOCKS;
    const lock = path.join(LOCK_DIR, `block-${b}`);
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: "wx" });
      return b;
    } catch {
      const owner = Number(fs.readFileSync(lock, "utf8").trim());
      if (owner === process.pid && b !== block) return b;
      if (!Number.isInteger(owner) || owner <= 0 || !pidAlive(owner)) {
        // A dead process's block: take it over (rename makes the takeover atomic).
        const tmp = `${lock}.${process.pid}`;
        fs.writeFileSync(tmp, String(process.pid));
        fs.renameSync(tmp, lock);
        if (fs.readFileSync(lock, "utf8").trim() === String(process.pid)) return b;
      }
    }
  }
  throw new Error(`no free test port block under ${LOCK_DIR}`);
}

function listenable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen({ port, host: "0.0.0.0", exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** A port nothing listens on, reserved for this process (see the file comment). */
export async function reservePort(): Promise<number> {
  for (;;) {
    if (block === undefined || next >= BLOCK) {
      block = claimBlock();
      next = 0;
    }
    const port = FIRST + block * BLOCK + next++;
    if (await listenable(port)) return port;
  }
}
