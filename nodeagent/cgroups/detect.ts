/**
 * Choosing the cgroup backend, once, at agent start.
 *
 * Order: cgroup v2 when the unified hierarchy offers the memory, cpu and
 * pids controllers and the agent can create its `sgrid` folder there; else
 * cgroup v1 when the memory, cpu and pids hierarchies are mounted and
 * writable; else `none`, logged once as a warning (servants then run without
 * limits). A hybrid host (v1 controllers plus an empty v2 mount at
 * /sys/fs/cgroup/unified, as on this project's CI machine) therefore gets v1.
 *
 * Each candidate is probed by actually creating its `sgrid` folder(s), not
 * only by checking permissions: read-only bind mounts and container
 * namespaces answer access() with yes and mkdir() with no.
 */
import * as fs from "node:fs";
import { lazySchema } from "../lazy-schema";
import { hasExactly, isInt, isString } from "../plain-checks";
import { getLogger, ConfigError } from "sgridnext";
import type { CgroupBackend } from "./base";
import { CgroupV2Backend, V2_CONTROLLERS } from "./v2";
import { CgroupV1Backend, type CgroupV1Mounts, V1_REQUIRED } from "./v1";
import { NoCgroupBackend } from "./none";
import { writable } from "./cgroup-files";

export interface DetectCgroupsOptions {
  /** Skip detection and use this backend ("v2", "v1" or "none"). Default: detect. */
  prefer?: "v2" | "v1" | "none";
  /** Mount point of the unified hierarchy; null to never consider v2. Default: the first cgroup2 mount in mountinfo. */
  v2Mount?: string | null;
  /** v1 controller mounts, overriding what mountinfo says; null to never consider v1. Default: from mountinfo. */
  v1Mounts?: Partial<CgroupV1Mounts> | null;
  /** Folder at the top of each hierarchy holding every instance group. Default "sgrid". */
  groupName?: string;
  /** How long cleanup() keeps killing a group before giving up, ms. Default 5000. */
  drainTimeoutMs?: number;
  /** The mountinfo file to read. Default "/proc/self/mountinfo". */
  mountinfo?: string;
}

export const DETECT_DEFAULTS = Object.freeze({
  groupName: "sgrid",
  drainTimeoutMs: 5000,
  mountinfo: "/proc/self/mountinfo",
});

/** Options the schema below takes as they are. */
function plainlyValid(v: unknown): boolean {
  const absolute = (x: unknown) => isString(x) && x.startsWith("/");
  return hasExactly(v, {
    prefer: (x) => x === "v2" || x === "v1" || x === "none",
    v2Mount: (x) => x === null || absolute(x),
    v1Mounts: (x) => x === null || hasExactly(x, { memory: absolute, cpu: absolute, cpuacct: absolute, pids: absolute }, []),
    groupName: (x) => isString(x, 0, /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/),
    drainTimeoutMs: (x) => isInt(x, 1),
    mountinfo: (x) => isString(x),
  }, []);
}

/** Checked at the agent's start without zod when plainly valid (exported for test/nodeagent/lazy-options.test.ts). */
export const detectOptionsSchema = lazySchema((z) => z.object({
  prefer: z.enum(["v2", "v1", "none"]).optional(),
  v2Mount: z.string().startsWith("/").nullable().optional(),
  v1Mounts: z.object({
    memory: z.string().startsWith("/").optional(),
    cpu: z.string().startsWith("/").optional(),
    cpuacct: z.string().startsWith("/").optional(),
    pids: z.string().startsWith("/").optional(),
  }).nullable().optional(),
  groupName: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/).optional(),
  drainTimeoutMs: z.number().int().positive().optional(),
  mountinfo: z.string().optional(),
}).strict(), plainlyValid);

/** One cgroup mount found in mountinfo. */
export interface CgroupMount {
  /** "cgroup2" or "cgroup". */
  fstype: string;
  mountPoint: string;
  /** v1 controllers of this hierarchy (from the super options); [] for cgroup2. */
  controllers: string[];
}

const V1_KNOWN = new Set(["memory", "cpu", "cpuacct", "pids", "cpuset", "blkio", "devices", "freezer", "net_cls", "net_prio", "perf_event", "hugetlb", "rdma", "misc"]);

/** Parses /proc/self/mountinfo text into its cgroup mounts (octal escapes such as \040 decoded). */
export function parseCgroupMounts(text: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of text.split("\n")) {
    const dash = line.indexOf(" - ");
    if (dash < 0) continue;
    const left = line.slice(0, dash).split(" ");
    const [fstype, , superOpts = ""] = line.slice(dash + 3).split(" ");
    if (fstype !== "cgroup" && fstype !== "cgroup2") continue;
    const mountPoint = (left[4] ?? "").replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    const controllers = fstype === "cgroup" ? superOpts.split(",").filter((o) => V1_KNOWN.has(o)) : [];
    out.push({ fstype, mountPoint, controllers });
  }
  return out;
}

let warnedNone = false;

/**
 * Chooses the backend (see the file comment). Never rejects for a host
 * without cgroups: that yields `none`. Throws ConfigError for bad options
 * and when `prefer` names a backend this host cannot provide.
 */
export async function detectCgroups(options: DetectCgroupsOptions = {}): Promise<CgroupBackend> {
  const parsed = detectOptionsSchema.safeParse(options);
  if (!parsed.success) throw new ConfigError(`invalid cgroup detection options: ${parsed.error.message}`);
  const opts = Object.freeze({ ...DETECT_DEFAULTS, ...parsed.data });
  const log = getLogger("agent.cgroups");
  let mounts: CgroupMount[] = [];
  try {
    mounts = parseCgroupMounts(fs.readFileSync(opts.mountinfo, "utf8"));
  } catch {
    // No /proc (not Linux): only `none` remains.
  }
  const why: string[] = [];
  if (opts.prefer === "none") {
    log.info("cgroups: disabled by configuration; servants run without resource limits");
    return new NoCgroupBackend(opts.drainTimeoutMs);
  }

  if (opts.prefer === undefined || opts.prefer === "v2") {
    const mount = opts.v2Mount === null ? undefined : opts.v2Mount ?? mounts.find((m) => m.fstype === "cgroup2")?.mountPoint;
    if (mount === undefined) why.push("v2: no unified hierarchy");
    else {
      const have = CgroupV2Backend.availableControllers(mount);
      const missing = V2_CONTROLLERS.filter((c) => !have.includes(c));
      if (missing.length > 0) why.push(`v2: ${mount} lacks controller(s) ${missing.join(", ")}`);
      else if (!writable(mount)) why.push(`v2: ${mount} is not writable`);
      else {
        const backend = new CgroupV2Backend({ mount, groupName: opts.groupName, drainTimeoutMs: opts.drainTimeoutMs });
        try {
          await backend.prepare();
          log.info({ backend: "v2", root: backend.root }, "cgroups: using the unified hierarchy (v2)");
          return backend;
        } catch (err) {
          why.push(`v2: ${(err as Error).message}`);
        }
      }
    }
  }

  if (opts.prefer === undefined || opts.prefer === "v1") {
    if (opts.v1Mounts === null) why.push("v1: disabled");
    else {
      const found: Partial<CgroupV1Mounts> = {};
      for (const m of mounts) {
        if (m.fstype !== "cgroup") continue;
        for (const c of m.controllers) if ((c === "memory" || c === "cpu" || c === "cpuacct" || c === "pids") && found[c] === undefined) found[c] = m.mountPoint;
      }
      const v1: Partial<CgroupV1Mounts> = { ...found, ...opts.v1Mounts };
      const missing = V1_REQUIRED.filter((c) => v1[c] === undefined);
      const readOnly = V1_REQUIRED.filter((c) => v1[c] !== undefined && !writable(v1[c]!));
      if (missing.length > 0) why.push(`v1: controller(s) ${missing.join(", ")} not mounted`);
      else if (readOnly.length > 0) why.push(`v1: controller(s) ${readOnly.join(", ")} not writable`);
      else {
        const backend = new CgroupV1Backend({ mounts: v1 as CgroupV1Mounts, groupName: opts.groupName, drainTimeoutMs: opts.drainTimeoutMs });
        try {
          await backend.prepare();
          log.info({ backend: "v1", roots: backend.roots() }, "cgroups: using the v1 controller hierarchies");
          return backend;
        } catch (err) {
          why.push(`v1: ${(err as Error).message}`);
        }
      }
    }
  }

  if (opts.prefer !== undefined) {
    throw new ConfigError(`cgroup backend "${opts.prefer}" was asked for but is not usable here: ${why.join("; ")}`);
  }
  if (!warnedNone) {
    warnedNone = true;
    log.warn({ reasons: why }, "cgroups: no writable cgroupfs with memory, cpu and pids controllers; servants run WITHOUT resource limits");
  }
  return new NoCgroupBackend(opts.drainTimeoutMs);
}
