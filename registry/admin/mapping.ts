/**
 * Records of the store <-> messages of admin.proto / types.proto / config.proto.
 *
 * Wire conventions (proto3): 0 / "" / empty list mean "not set". Patch
 * versions travel as version numbers (1, 2, 3... per server); the store keeps
 * patch ids, so callers pass a `versions` lookup (patch id -> version).
 */
import { scopeToMessage } from "../services/config-reads";
import { InvalidArgumentError, formatTags } from "sgridnext";
import type {
  Adapter as AdapterMsg, HealthCheck as HealthCheckMsg, InstanceInfo, LaunchOptions as LaunchMsg, ResourceLimits as LimitsMsg,
} from "sgridnext/gen/sgrid/registry/v1/types";
import type {
  CanaryInfo, EventInfo, NodeInfo, NodeSample, PlacementInfo, RoleGrant as RoleGrantMsg, ServerInfo, TaskInfo, TaskItem, UserInfo,
} from "sgridnext/gen/sgrid/registry/v1/admin";
import type { ConfigScope as ScopeMsg, ConfigFile, ConfigVersion } from "sgridnext/gen/sgrid/registry/v1/config";
import type { DeepPartial } from "sgridnext";
import { p99Of } from "./canary-judge";
import { canaryOf, type CanaryState } from "./canary-plan";
import type {
  AdapterInput, ConfigFileRecord, ConfigLevel, ConfigScope, ConfigVersionRecord, EventRecord, InstanceRecord, JsonObject, LaunchOptions,
  NodeRecord, PlacementRecord, ResourceLimits, RoleGrant, ServerRecord, TaskItemRecord, TaskRecord, UserRecord,
} from "../store/records";

/** Patch id -> version number. */
export type VersionLookup = (patchId: number | null) => number;

// ---- adapters, limits, health check, launch --------------------------------------
export function adaptersFromMsg(list: AdapterMsg[]): AdapterInput[] {
  return list.map((a) => {
    const out: AdapterInput = { obj: a.obj, host: a.host, port: a.port };
    if (a.protocol) {
      if (a.protocol !== "grpc" && a.protocol !== "sgrid") throw new InvalidArgumentError(`invalid adapter protocol "${a.protocol}" for ${a.obj}: expected "grpc" or "sgrid"`, { kind: "adapter protocol" });
      out.protocol = a.protocol;
    }
    if (a.weight) out.weight = a.weight;
    return out;
  });
}

export function limitsFromMsg(m: LimitsMsg | undefined): ResourceLimits {
  const out: ResourceLimits = {};
  if (!m) return out;
  if (m.memoryBytes) out.memoryBytes = m.memoryBytes;
  if (m.cpuCores) out.cpuCores = m.cpuCores;
  if (m.pids) out.pids = m.pids;
  return out;
}

const HEALTH_KINDS = ["http", "tcp", "grpc"];

/** The stored health check: the message's fields that are set, camelCase; null for none. */
export function healthFromMsg(m: HealthCheckMsg | undefined): JsonObject | null {
  if (!m || !m.kind) return null;
  if (!HEALTH_KINDS.includes(m.kind)) throw new InvalidArgumentError(`invalid health check kind "${m.kind}": expected http, tcp or grpc`, { kind: "health check" });
  const out: JsonObject = { kind: m.kind };
  for (const key of ["port", "path", "initialDelayMs", "intervalMs", "timeoutMs", "failureThreshold"] as const) {
    if (m[key]) out[key] = m[key];
  }
  return out;
}

export function launchFromMsg(m: LaunchMsg | undefined): LaunchOptions {
  const out: LaunchOptions = {};
  if (!m) return out;
  if (m.args.length) out.args = m.args;
  if (m.jvmOptions.length) out.jvmOptions = m.jvmOptions;
  if (m.nodeOptions.length) out.nodeOptions = m.nodeOptions;
  if (m.entry) out.entry = m.entry;
  if (m.runAsUser) out.runAsUser = m.runAsUser;
  if (m.stopSignal) out.stopSignal = m.stopSignal;
  if (m.stopGraceMs) out.stopGraceMs = m.stopGraceMs;
  if (m.keepaliveTimeoutMs) out.keepaliveTimeoutMs = m.keepaliveTimeoutMs;
  return out;
}

function healthToMsg(h: JsonObject | null): DeepPartial<HealthCheckMsg> | undefined {
  if (!h) return undefined;
  const n = (k: string) => (typeof h[k] === "number" ? (h[k] as number) : 0);
  return {
    kind: typeof h.kind === "string" ? h.kind : "",
    port: n("port"), path: typeof h.path === "string" ? h.path : "",
    initialDelayMs: n("initialDelayMs"), intervalMs: n("intervalMs"), timeoutMs: n("timeoutMs"), failureThreshold: n("failureThreshold"),
  };
}

// ---- instances, servers ---------------------------------------------------------------
export interface Usage {
  memoryBytes: number;
  cpuCoresUsed: number;
  startedAt: number;
}

export function instanceToMsg(r: InstanceRecord, type: string, versions: VersionLookup, usage?: Usage): DeepPartial<InstanceInfo> {
  const launch = r.launch ?? {};
  return {
    id: r.id,
    application: r.application,
    server: r.server,
    node: r.node,
    type,
    adapters: r.adapters.map((a) => ({ obj: a.obj, host: a.host, port: a.port, protocol: a.protocol, weight: a.weight })),
    env: { ...r.env },
    limits: { memoryBytes: r.limits.memoryBytes ?? 0, cpuCores: r.limits.cpuCores ?? 0, pids: r.limits.pids ?? 0 },
    healthCheck: healthToMsg(r.healthCheck),
    launch: {
      args: launch.args ?? [], jvmOptions: launch.jvmOptions ?? [], nodeOptions: launch.nodeOptions ?? [],
      entry: launch.entry ?? "", runAsUser: launch.runAsUser ?? "", stopSignal: launch.stopSignal ?? "",
      stopGraceMs: launch.stopGraceMs ?? 0, keepaliveTimeoutMs: launch.keepaliveTimeoutMs ?? 0,
    },
    desiredState: r.desiredState,
    desiredVersion: versions(r.desiredPatchId),
    observedState: r.observedState,
    observedVersion: versions(r.observedPatchId),
    pid: r.pid ?? 0,
    restarts: r.restarts,
    lastExitReason: r.lastExitReason ?? "",
    drained: r.drained,
    surgeOf: r.surgeOf ?? 0,
    observedAt: r.observedAt ?? 0,
    memoryBytes: usage?.memoryBytes ?? 0,
    cpuCoresUsed: usage?.cpuCoresUsed ?? 0,
    startedAt: usage?.startedAt ?? 0,
  };
}

export function serverToMsg(s: ServerRecord, versions: VersionLookup, instanceCount: number, placement?: PlacementRecord): DeepPartial<ServerInfo> {
  return {
    application: s.application, name: s.name, type: s.type, defaultVersion: versions(s.defaultPatchId),
    createdAt: s.createdAt, instanceCount, ...(placement ? { placement: placementToMsg(placement) } : {}),
  };
}

export function placementToMsg(p: PlacementRecord): DeepPartial<PlacementInfo> {
  const st = p.status;
  return {
    query: p.query, count: p.count, placed: st?.placed ?? 0, state: st?.state ?? "pending", reasons: st?.reasons ?? [],
    matching: st?.matching ?? [], updatedAt: st?.at ?? p.updatedAt, createdBy: p.createdBy,
  };
}

// ---- users ------------------------------------------------------------------------------
export function grantsToMsg(roles: RoleGrant[]): RoleGrantMsg[] {
  return roles.map((g) => ({ application: g.application, role: g.role }));
}

export function userToMsg(u: UserRecord): DeepPartial<UserInfo> {
  return { name: u.name, roles: grantsToMsg(u.roles), createdAt: u.createdAt };
}

// ---- tasks --------------------------------------------------------------------------------
export function taskItemToMsg(i: TaskItemRecord): DeepPartial<TaskItem> {
  return {
    id: i.id, instanceId: i.instanceId, application: i.application, server: i.server, node: i.node, batch: i.batch,
    status: i.status, reason: i.reason ?? "", startedAt: i.startedAt ?? 0, finishedAt: i.finishedAt ?? 0,
  };
}

export function taskToMsg(t: TaskRecord): DeepPartial<TaskInfo> {
  const p = t.params;
  const num = (v: unknown) => (typeof v === "number" ? v : 0);
  return {
    id: t.id, kind: t.kind, status: t.status, createdBy: t.createdBy, reason: t.reason ?? "",
    createdAt: t.createdAt, startedAt: t.startedAt ?? 0, finishedAt: t.finishedAt ?? 0,
    items: t.items.map(taskItemToMsg),
    version: num(p.version),
    batchSize: num(p.batchSize),
    stopOnFailure: p.stopOnFailure === true,
    previousVersionsJson: p.previousVersions && typeof p.previousVersions === "object" ? JSON.stringify(p.previousVersions) : "",
    rollbackOf: num(p.rollbackOf),
    comment: typeof p.comment === "string" ? p.comment : "",
    ...(canaryOf(t) ? { canary: canaryToMsg(canaryOf(t)!) } : {}),
  };
}

export function canaryToMsg(c: CanaryState): DeepPartial<CanaryInfo> {
  const s = c.settings;
  const last = c.last;
  return {
    options: { percent: s.percent, instances: s.instances, bakeS: s.bakeS, maxErrorRateDelta: s.maxErrorRateDelta, maxP99Ratio: s.maxP99Ratio, minCalls: s.minCalls, p99FloorMs: s.p99FloorMs, hold: s.hold },
    state: c.state, reason: c.reason === "weights set" ? "" : c.reason, instanceIds: c.canaryIds, share: c.share,
    bakeStartedAt: c.bakeStartedAt, bakeEndsAt: c.bakeEndsAt,
    canaryCalls: last?.canary.calls ?? 0, canaryErrors: last?.canary.errors ?? 0, canaryP99Ms: last ? p99Of(last.canary) : 0,
    baselineCalls: last?.baseline.calls ?? 0, baselineErrors: last?.baseline.errors ?? 0, baselineP99Ms: last ? p99Of(last.baseline) : 0,
    rollbackTaskId: c.rollbackTaskId, decidedBy: c.decidedBy,
  };
}

// ---- nodes, events --------------------------------------------------------------------------
function sampleToMsg(s: Record<string, number>): DeepPartial<NodeSample> {
  const n = (k: string) => (typeof s[k] === "number" && Number.isFinite(s[k]) ? s[k]! : 0);
  // Keys as registry/node/heartbeat-samples.ts produces them.
  // uint64/int64 fields must be non-negative integers on the wire.
  const u = (v: number) => Math.max(0, Math.round(v));
  const diskTotal = u(n("diskTotalBytes"));
  return {
    at: u(n("at")), load1: n("load1"), cpuUsed: n("cpu"), memoryUsed: u(n("memoryUsedBytes")), memoryTotal: u(n("memoryTotalBytes")),
    diskUsed: diskTotal > 0 ? u(diskTotal - n("diskAvailableBytes")) : 0, diskTotal,
  };
}

export function nodeToMsg(n: NodeRecord, instanceCount: number, samples: Array<Record<string, number>>): DeepPartial<NodeInfo> {
  return {
    name: n.name, address: n.address, agentVersion: n.agentVersion, online: n.online, lastHeartbeatAt: n.lastHeartbeatAt ?? 0,
    hostInfoJson: JSON.stringify(n.hostInfo ?? {}), samples: samples.map(sampleToMsg), instanceCount,
    tags: formatTags(n.tags), agentTags: formatTags(n.agentTags),
    adminTags: formatTags(Object.fromEntries(Object.entries(n.adminTags).filter((e): e is [string, string] => e[1] !== null))),
    adminUnset: Object.keys(n.adminTags).filter((k) => n.adminTags[k] === null).sort(),
  };
}

export function eventToMsg(e: EventRecord): DeepPartial<EventInfo> {
  return { id: e.id, time: e.time, actor: e.actor, kind: e.kind, target: e.target, message: e.message, dataJson: JSON.stringify(e.data ?? {}) };
}

// ---- config ------------------------------------------------------------------------------------
export function scopeFromMsg(m: ScopeMsg | undefined): ConfigScope {
  if (!m) throw new InvalidArgumentError("missing config scope", { kind: "config scope" });
  switch (m.level) {
    case "application": return { level: "application", application: m.application };
    case "server": return { level: "server", application: m.application, server: m.server };
    case "instance": return { level: "instance", application: m.application, server: m.server, node: m.node };
    default: throw new InvalidArgumentError(`invalid config level "${m.level}": expected application, server or instance`, { kind: "config level" });
  }
}

/** Parses a scope key (`App`, `App.Server`, `App.Server@node`) back to the message (the Config API's own mapping). */
export function scopeKeyToMsg(level: string, key: string): DeepPartial<ScopeMsg> {
  return scopeToMessage(level as ConfigLevel, key);
}

export function configVersionToMsg(v: ConfigVersionRecord): DeepPartial<ConfigVersion> {
  return {
    scope: scopeKeyToMsg(v.level, v.scopeKey), fileName: v.fileName, version: v.version, content: v.content, author: v.author,
    comment: v.comment, rolledBackFrom: v.rolledBackFrom ?? 0, createdAt: v.createdAt,
  };
}

export function configFileToMsg(f: ConfigFileRecord): DeepPartial<ConfigFile> {
  return { scope: scopeKeyToMsg(f.level, f.scopeKey), fileName: f.fileName, currentVersion: f.currentVersion, updatedAt: f.updatedAt };
}
