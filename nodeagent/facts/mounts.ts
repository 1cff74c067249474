/**
 * Disks per mount, from /proc/mounts and statfs(2).
 *
 * Pseudo and memory-backed filesystems are skipped (the exclusion list is
 * node_exporter's default, plus tmpfs/ramfs: they are memory, and memory is
 * reported separately). A device mounted several times (bind mounts, the
 * same disk seen from a container) is reported once, at its shortest mount
 * point. A mount statfs cannot read (permissions, a hung NFS server) is
 * left out rather than failing the whole report.
 */
import * as fs from "node:fs";

export const PSEUDO_FILESYSTEMS: ReadonlySet<string> = new Set([
  "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts", "devtmpfs", "efivarfs",
  "fusectl", "hugetlbfs", "iso9660", "mqueue", "nsfs", "proc", "procfs", "pstore", "rpc_pipefs", "securityfs",
  "selinuxfs", "squashfs", "sysfs", "tracefs", "tmpfs", "ramfs", "overlay", "fuse.lxcfs", "rootfs",
]);

export interface MountEntry {
  device: string;
  mount: string;
  fsType: string;
  options: string[];
}

export interface DiskFacts {
  mount: string;
  device: string;
  fsType: string;
  totalBytes: number;
  /** Free bytes, including those reserved for root. */
  freeBytes: number;
  /** Bytes an unprivileged user can still write. */
  availableBytes: number;
  readOnly: boolean;
}

/** Decodes the octal escapes /proc/mounts uses for space, tab, newline and backslash. */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Parses the text of /proc/mounts (or /proc/self/mounts). */
export function parseMounts(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4) continue;
    out.push({ device: unescapeMount(f[0]), mount: unescapeMount(f[1]), fsType: f[2], options: f[3].split(",") });
  }
  return out;
}

/**
 * The real (non-pseudo) mounts, one per device, shortest mount point first
 * seen. `overlay` is kept only when it is the root filesystem (a container's
 * "/"), since that is the disk the agent's data dir usually lives on.
 */
export function diskMounts(entries: readonly MountEntry[]): MountEntry[] {
  const byDevice = new Map<string, MountEntry>();
  for (const e of entries) {
    const pseudo = PSEUDO_FILESYSTEMS.has(e.fsType) && !(e.fsType === "overlay" && e.mount === "/");
    if (pseudo || !e.mount.startsWith("/")) continue;
    const key = `${e.device}\0${e.fsType}`;
    const seen = byDevice.get(key);
    if (!seen || e.mount.length < seen.mount.length) byDevice.set(key, e);
  }
  return [...byDevice.values()].sort((a, b) => a.mount.localeCompare(b.mount));
}

/** Reads disks per mount. Never throws: an unreadable mounts file gives an empty list. */
export async function readDisks(mountsFile = "/proc/mounts"): Promise<DiskFacts[]> {
  let text: string;
  try {
    // Read at once (procfs never waits on a disk); statfs below stays asynchronous: a hung network mount must not hold the agent.
    text = fs.readFileSync(mountsFile, "utf8");
  } catch {
    return [];
  }
  const out: DiskFacts[] = [];
  for (const m of diskMounts(parseMounts(text))) {
    try {
      const s = await fs.promises.statfs(m.mount);
      if (s.blocks === 0) continue;
      out.push({
        mount: m.mount, device: m.device, fsType: m.fsType,
        totalBytes: s.blocks * s.bsize, freeBytes: s.bfree * s.bsize, availableBytes: s.bavail * s.bsize,
        readOnly: m.options.includes("ro"),
      });
    } catch {
      // unreadable mount: left out, see the file comment
    }
  }
  return out;
}
