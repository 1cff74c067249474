/**
 * The agent checks its own options at its start without loading zod
 * (nodeagent/lazy-schema.ts): a plain check takes values that are plainly
 * valid, and everything else goes to the zod schema. Here the plain check is
 * held against the schema it stands in for: over valid options and over the
 * values a hand-written check gets wrong most easily (1.5, NaN, Infinity,
 * strings of digits, holes in arrays, unknown keys, class instances, keys
 * present with the value undefined), it never takes a value the schema
 * refuses or would change, and it takes the options the agent really starts
 * with, so an idle agent loads no zod (test/cli/lazy-load.test.ts).
 */
import { expect } from "chai";
import { nodeAgentOptionsSchema } from "../../nodeagent/agent/options";
import { detectOptionsSchema } from "../../nodeagent/cgroups/detect";
import { packageCacheOptionsSchema } from "../../nodeagent/install/package-cache";
import { logRotatorOptionsSchema, LOG_ROTATOR_DEFAULTS } from "../../nodeagent/logs/log-rotator";
import type { ZodType } from "zod";
import type { LazySchema } from "../../nodeagent/lazy-schema";
import { wranglerOptionsSchema } from "../../nodeagent/process/wrangler";
import { supervisorOptionsSchema } from "../../nodeagent/supervisor/options";
import { RESTART_DEFAULTS, restartPolicySchema } from "../../nodeagent/supervisor/restart-tracker";
import { NoCgroupBackend } from "../../nodeagent/cgroups/none";

/** Values a plain check could take by mistake, put in place of one key's value. */
const TRICKY: unknown[] = [1.5, -1, 0, NaN, Infinity, -Infinity, 2 ** 53, "5", "", "/abs", "rel", null, undefined, true, [], [1], {}, { x: 1 }, new Date(0), () => 1, Number.MAX_SAFE_INTEGER, 1001, 10, 250, 9, 251, "SIGTERM", "sigterm"];

function sparse(): unknown[] {
  const a: unknown[] = ["127.0.0.1:9000"];
  a[2] = "127.0.0.1:9001";
  return a;
}

class NotPlain {
  registry = ["127.0.0.1:9000"];
}

/** Every variant of `base` with one key's value replaced by each TRICKY value, one unknown key added, and the key removed. */
function variants(base: Record<string, unknown>): unknown[] {
  const out: unknown[] = [base, { ...base, unknown: 1 }, Object.assign(Object.create({ inherited: 1 }) as object, base), new NotPlain(), [], null, "x"];
  for (const key of Object.keys(base)) {
    for (const v of TRICKY) out.push({ ...base, [key]: v });
    const { [key]: _removed, ...rest } = base;
    out.push(rest);
  }
  return out;
}

/** The plain check never takes a value the schema refuses, and takes exactly what the schema would give back. */
function holdsAgainstSchema(name: string, lazy: LazySchema<ZodType>, values: unknown[]): number {
  let taken = 0;
  for (const v of values) {
    if (!lazy.accepts(v)) continue;
    taken++;
    const r = lazy.schema().safeParse(v) as { success: boolean; data?: unknown; error?: Error };
    expect(r.success, `${name}: the plain check took ${show(v)}, the schema refuses it: ${r.error?.message}`).to.equal(true);
    expect(r.data, `${name}: the schema would change ${show(v)}`).to.deep.equal(v);
  }
  return taken;
}

function show(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x: unknown) => (typeof x === "number" && !Number.isFinite(x) ? String(x) : x === undefined ? "undefined" : x)) ?? String(v);
  } catch {
    return String(v);
  }
}

describe("nodeagent: options checked without zod", () => {
  const agentOptions = {
    registry: ["127.0.0.1:9000", "grpcs://reg.example:9500"], name: "node-1", dataDir: "/var/lib/sgrid", token: "t", address: "10.0.0.5",
    agentListen: "127.0.0.1:0", tags: ["ssd", "zone=a"], cgroups: { groupName: "sgrid" }, supervisor: { restart: { initialDelayMs: 0 } }, process: {},
    backoff: { initialMs: 100 }, keepReleases: 5, unpackLimits: { maxBytes: 1 }, logRotation: { keep: 3 }, heartbeatIntervalMs: 5000,
    downloadIdleTimeoutMs: 15_000, installRetry: { initialMs: 1, maxMs: 2 }, nodePath: "/usr/bin/node", javaPath: "java",
  };
  const cases: Array<[string, LazySchema<ZodType>, Record<string, unknown>]> = [
    ["node agent options", nodeAgentOptionsSchema as LazySchema<ZodType>, agentOptions],
    ["supervisor options", supervisorOptionsSchema as LazySchema<ZodType>, { restart: { initialDelayMs: 0, jitter: 0 }, stop: { signal: "SIGTERM", graceMs: 100 }, keepaliveTimeoutMs: 1, health: { initialDelayMs: 0, intervalMs: 1, timeoutMs: 1, failureThreshold: 1 }, healthCheckFactory: () => undefined }],
    ["restart policy", restartPolicySchema as LazySchema<ZodType>, { ...RESTART_DEFAULTS }],
    ["process wrangler options", wranglerOptionsSchema as LazySchema<ZodType>, { cgroups: new NoCgroupBackend(), pollIntervalMs: 100, shell: "/bin/sh", setpriv: "/usr/bin/setpriv", killTimeoutMs: 1 }],
    ["cgroup detection options", detectOptionsSchema as LazySchema<ZodType>, { prefer: "v1", v2Mount: "/sys/fs/cgroup", v1Mounts: { memory: "/m", cpu: "/c", cpuacct: "/a", pids: "/p" }, groupName: "sgrid", drainTimeoutMs: 1, mountinfo: "/proc/self/mountinfo" }],
    ["package cache options", packageCacheOptionsSchema as LazySchema<ZodType>, { dataDir: "/d", fetch: () => undefined }],
    ["log rotator options", logRotatorOptionsSchema as LazySchema<ZodType>, { ...LOG_ROTATOR_DEFAULTS }],
  ];

  for (const [name, lazy, base] of cases) {
    it(`${name}: the plain check takes only what the zod schema takes unchanged, and takes the valid options`, () => {
      expect(lazy.accepts(base), `${name}: valid options taken without zod`).to.equal(true);
      const taken = holdsAgainstSchema(name, lazy, variants(base));
      expect(taken).to.be.greaterThan(1);
    });
  }

  it("node agent options: registry lists with holes, bad endpoints, names and tags go to the schema", () => {
    const bad = [
      { ...agentOptions, registry: sparse() }, { ...agentOptions, registry: [] }, { ...agentOptions, registry: ["https://reg:9500"] },
      { ...agentOptions, name: "../x" }, { ...agentOptions, name: "a b" }, { ...agentOptions, tags: ["=x"] }, { ...agentOptions, dataDir: "rel/dir" },
      { ...agentOptions, address: "a b" }, { ...agentOptions, agentListen: "nohostport" }, { ...agentOptions, installRetry: { initialMs: 1, other: 2 } },
    ];
    for (const v of bad) expect(nodeAgentOptionsSchema.accepts(v), show(v)).to.equal(false);
    holdsAgainstSchema("node agent options", nodeAgentOptionsSchema as LazySchema<ZodType>, bad);
  });
});
