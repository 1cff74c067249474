/**
 * Network namespaces for tests that want "machines" with their own
 * addresses: one Linux bridge in the root namespace (10.77.<n>.1/24) and,
 * per node, a namespace `sge2e-<pid>-<i>` joined to the bridge by a veth
 * pair, with address 10.77.<n>.<i+2>/24 and its own loopback. Everything
 * on one L2 segment: the root namespace and every node reach each other
 * without IP forwarding or routes (nothing of the host's own network
 * setup is touched).
 *
 * Needs root (or CAP_NET_ADMIN), `ip` and `nsenter`; SGRID_TEST_NO_NETNS=1 turns it off
 * (to test the fallback). When any step fails, whatever was
 * made is removed again and the lab comes back with `available: false`
 * and the reason, so a test can fall back to loopback addresses and say so.
 *
 * Commands are run with argument arrays (never a shell). `destroy()` kills
 * every process still inside the namespaces, then deletes them and the
 * bridge; it is idempotent and never throws. `removeStaleNetns()` deletes
 * leftovers of test processes that died without cleaning up.
 */
import { execFile, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import { promisify } from "node:util";
import { pidAlive } from "./pid";

const run = promisify(execFile);

/** Prefix of every namespace this helper creates (stale ones are found by it). */
export const NETNS_PREFIX = "sge2e-";

export interface NetnsNode {
  /** Namespace name (`ip netns exec <ns> ...`). */
  ns: string;
  /** The node's address inside its namespace. */
  address: string;
}

export interface NetnsLab {
  available: boolean;
  /** Why namespaces are not available (when `available` is false). */
  reason?: string;
  /** The root namespace's address on the bridge (what nodes use to reach a server in the root namespace). */
  hostAddress: string;
  nodes: NetnsNode[];
  /**
   * `[command, args]` running `cmd args` inside node `i`'s network namespace
   * (plain `cmd args` when unavailable). It is `nsenter --net=/run/netns/<ns>`,
   * not `ip netns exec`: the latter also unshares the mount namespace and
   * remounts /sys, which takes the cgroup mounts away, so an agent started
   * that way runs without cgroups. nsenter enters only the network namespace:
   * agents see the host's cgroupfs and use real cgroups, as in production.
   */
  wrap(i: number, cmd: string, args: string[]): [string, string[]];
  /** Kills what runs inside, deletes namespaces and bridge. Idempotent; never throws. */
  destroy(): Promise<void>;
}

async function ip(args: string[]): Promise<string> {
  const { stdout } = await run("ip", args, { timeout: 10_000 });
  return stdout;
}


/** Kills every process inside a namespace (SIGKILL). Never throws. */
export async function killInNetns(ns: string): Promise<void> {
  let pids: number[] = [];
  try {
    pids = (await ip(["netns", "pids", ns])).split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return;
  }
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
}

/** Deletes namespaces (and their bridges) left by test processes that no longer run. Never throws. */
export async function removeStaleNetns(): Promise<void> {
  let list = "";
  try {
    list = await ip(["netns", "list"]);
  } catch {
    return;
  }
  for (const line of list.split("\n")) {
    const name = line.split(" ")[0] ?? "";
    const m = new RegExp(`^${NETNS_PREFIX}(\\d+)-\\d+$`).exec(name);
    if (!m || pidAlive(Number(m[1]))) continue;
    await killInNetns(name);
    await ip(["netns", "del", name]).catch(() => undefined);
  }
  // Bridges and host-side veth ends of dead test processes (a veth end can outlive its namespace for a while).
  const links = await ip(["-o", "link", "show"]).catch(() => "");
  for (const m of links.matchAll(/^\d+: (se(\d+)(?:h\d+|br))[@:]/gm)) {
    if (!pidAlive(Number(m[2]))) await ip(["link", "del", m[1]!]).catch(() => undefined);
  }
}

/** A /24 under 10.77 not in use on this machine, picked from the pid (parallel test processes differ). */
async function freeSubnet(): Promise<number> {
  const used = await ip(["-4", "-o", "addr", "show"]).catch(() => "");
  for (let k = 0; k < 250; k++) {
    const n = ((process.pid + k) % 250) + 1;
    if (!used.includes(` 10.77.${n}.`)) return n;
  }
  throw new Error("no free 10.77.x.0/24 subnet");
}

/** Runs a one-line node script (args as an array), optionally inside a namespace; resolves with its stdout. */
function nodeScript(ns: string | undefined, script: string, timeoutMs = 10_000): Promise<string> {
  const [cmd, args] = ns ? ["ip", ["netns", "exec", ns, process.execPath, "-e", script]] : [process.execPath, ["-e", script]];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => { out += d; });
    child.stderr.setEncoding("utf8").on("data", (d: string) => { err += d; });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`node -e in ${ns ?? "the root namespace"} exited ${code}: ${err.trim()}`));
    });
  });
}

/** A TCP connect from `ns` (undefined: the root namespace) to host:port. Rejects when it fails. */
async function probeConnect(ns: string | undefined, host: string, port: number): Promise<void> {
  const script = `const s=require("net").connect(${port},${JSON.stringify(host)},()=>{s.end();process.exit(0)});` +
    "s.on(\"error\",(e)=>{console.error(e.message);process.exit(1)});setTimeout(()=>{console.error(\"timeout\");process.exit(1)},3000);";
  await nodeScript(ns, script);
}

/** Checks the lab carries TCP root -> node, node -> root and node 0 -> node 1; throws naming the failing leg. */
async function checkConnectivity(hostAddress: string, nodes: NetnsNode[]): Promise<void> {
  const server = net.createServer((s) => s.end());
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, hostAddress, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  try {
    for (const n of nodes) await probeConnect(n.ns, hostAddress, port).catch((e: Error) => { throw new Error(`${n.ns} -> ${hostAddress}: ${e.message}`); });
    if (nodes.length >= 2) {
      // A listener inside node 1, reached from node 0 and from the root namespace.
      const listener = spawn("ip", ["netns", "exec", nodes[1]!.ns, process.execPath, "-e",
        `const s=require("net").createServer(c=>c.end()).listen(0,${JSON.stringify(nodes[1]!.address)},()=>console.log(s.address().port));setTimeout(()=>process.exit(0),8000);`],
      { stdio: ["ignore", "pipe", "ignore"] });
      try {
        const p = await new Promise<number>((resolve, reject) => {
          listener.stdout.setEncoding("utf8").once("data", (d: string) => resolve(Number(d.trim())));
          listener.once("exit", () => reject(new Error("listener in the namespace exited")));
        });
        await probeConnect(nodes[0]!.ns, nodes[1]!.address, p).catch((e: Error) => { throw new Error(`${nodes[0]!.ns} -> ${nodes[1]!.address}: ${e.message}`); });
        await probeConnect(undefined, nodes[1]!.address, p).catch((e: Error) => { throw new Error(`root -> ${nodes[1]!.address}: ${e.message}`); });
      } finally {
        listener.kill("SIGKILL");
      }
    }
  } finally {
    server.close();
  }
}

/**
 * Makes `count` namespaces on a bridge (see the file comment). When they
 * cannot be made, the lab falls back to loopback addresses (127.0.0.<i+2>)
 * in the root namespace: `available` says which, `reason` why.
 */
export async function createNetnsLab(count: number): Promise<NetnsLab> {
  const pid = process.pid;
  const bridge = `se${pid}br`;
  const made: { bridge: boolean; ns: string[]; links: string[] } = { bridge: false, ns: [], links: [] };
  let destroyed = false;
  const destroy = async (): Promise<void> => {
    if (destroyed) return;
    destroyed = true;
    for (const ns of made.ns) await killInNetns(ns);
    // The host-side veth ends first: deleting one deletes its peer at once, while a deleted
    // namespace's interfaces go away only when the kernel gets to it.
    for (const link of made.links) await ip(["link", "del", link]).catch(() => undefined);
    for (const ns of made.ns) await ip(["netns", "del", ns]).catch(() => undefined);
    if (made.bridge) await ip(["link", "del", bridge]).catch(() => undefined);
  };
  const fallback = (reason: string): NetnsLab => ({
    available: false,
    reason,
    hostAddress: "127.0.0.1",
    nodes: Array.from({ length: count }, (_, i) => ({ ns: "", address: `127.0.0.${i + 2}` })),
    wrap: (_i, cmd, args) => [cmd, args],
    destroy: async () => undefined,
  });

  if (process.env.SGRID_TEST_NO_NETNS) return fallback("turned off by SGRID_TEST_NO_NETNS");
  if (process.platform !== "linux") return fallback("not Linux");
  if (typeof process.getuid === "function" && process.getuid() !== 0) return fallback("not root (ip netns needs CAP_NET_ADMIN)");
  if (!fs.existsSync("/proc/self/ns/net")) return fallback("no network namespaces in this kernel");
  try {
    await removeStaleNetns();
    const subnet = await freeSubnet();
    const hostAddress = `10.77.${subnet}.1`;
    await ip(["link", "add", bridge, "type", "bridge"]);
    made.bridge = true;
    await ip(["addr", "add", `${hostAddress}/24`, "dev", bridge]);
    await ip(["link", "set", bridge, "up"]);
    const nodes: NetnsNode[] = [];
    for (let i = 0; i < count; i++) {
      const ns = `${NETNS_PREFIX}${pid}-${i}`;
      const hostSide = `se${pid}h${i}`;
      const nsSide = `se${pid}n${i}`;
      const address = `10.77.${subnet}.${i + 2}`;
      await ip(["netns", "add", ns]);
      made.ns.push(ns);
      await ip(["link", "add", hostSide, "type", "veth", "peer", "name", nsSide]);
      made.links.push(hostSide);
      await ip(["link", "set", nsSide, "netns", ns]);
      await ip(["link", "set", hostSide, "master", bridge]);
      await ip(["link", "set", hostSide, "up"]);
      await ip(["netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
      await ip(["netns", "exec", ns, "ip", "addr", "add", `${address}/24`, "dev", nsSide]);
      await ip(["netns", "exec", ns, "ip", "link", "set", nsSide, "up"]);
      nodes.push({ ns, address });
    }
    await checkConnectivity(hostAddress, nodes);
    return {
      available: true,
      hostAddress,
      nodes,
      wrap: (i, cmd, args) => ["nsenter", [`--net=/run/netns/${nodes[i]!.ns}`, "--", cmd, ...args]],
      destroy,
    };
  } catch (err) {
    const e = err as Error & { stderr?: string };
    await destroy();
    return fallback(`${e.message.split("\n")[0]}${e.stderr ? ` (${e.stderr.trim()})` : ""}`);
  }
}
