/**
 * From what the registry wants (an `InstanceDesired` of the node session)
 * to what the node's parts take: the package to fetch, the launch input
 * for ../launch, and the DesiredSpec the NodeSupervisor reconciles toward.
 *
 * Pure functions apart from the run-as lookup: the same InstanceDesired,
 * release and node context always give the same spec, so a resent desired
 * state (every reconnect) and a restarted agent compare equal to what runs
 * and restart nothing. That is why the per-instance token is passed in (it
 * is generated once and then read back from the persisted spec) and why
 * nothing time- or random-dependent goes into a spec.
 *
 * Mapping of the proto's zeros ("0 = unlimited / default / none"):
 * - limits: 0 = no limit (key absent)
 * - stop: "" / 0 = the supervisor's defaults (SIGTERM, 10 s)
 * - keepalive_timeout_ms: 0 = no keepalive expected
 * - health_check.kind "": no check; port 0 = the first adapter's port
 * - adapter host "" = the node's advertised address; protocol "sgrid" =
 *   the native framed-TCP transport, anything else gRPC
 */
import * as os from "node:os";
import * as path from "node:path";
import { ENV } from "sgridnext";
import type { InstanceDesired, DesiredPatch } from "sgridnext/gen/sgrid/registry/v1/node";
import { buildLaunchSpec, LaunchConfigError, type AdapterSpec, type NodeContext } from "../launch";
import { SERVER_TYPES, type PackageManifest, type ServerType } from "../install";
import type { DesiredSpec, HealthSpec } from "../supervisor";
import { resolveRunAs } from "./run-as";

/** Env names the agent adds to every instance besides the contract of ../launch/env.ts. */

/** The supervisor's (and cgroup's) name for an instance: its registry id in decimal. */
export function instanceKey(id: number): string {
  if (!Number.isSafeInteger(id) || id <= 0) throw new TypeError(`instance id must be a positive integer, got ${id}`);
  return String(id);
}

/** The release version label of a patch (its version number in decimal). */
export function patchVersion(patch: Pick<DesiredPatch, "version">): string {
  return String(patch.version);
}

/** The server type, checked. Throws LaunchConfigError for an unknown one. */
export function serverType(inst: Pick<InstanceDesired, "type" | "application" | "server">): ServerType {
  const t = inst.type === "" ? "node" : inst.type;
  if (!(SERVER_TYPES as readonly string[]).includes(t)) {
    throw new LaunchConfigError(`${inst.application}.${inst.server} has unknown server type "${inst.type}" (known: ${SERVER_TYPES.join(", ")})`, { type: inst.type });
  }
  return t as ServerType;
}

/** The instance's adapters for the environment contract. Throws LaunchConfigError for one without a port. */
export function adapterSpecs(inst: InstanceDesired, nodeAddress: string): AdapterSpec[] {
  return inst.adapters.map((a) => {
    if (!(a.port > 0)) throw new LaunchConfigError(`adapter ${a.obj} of instance ${inst.instanceId} has no port`, { obj: a.obj });
    return { obj: a.obj, host: a.host === "" ? nodeAddress : a.host, port: a.port, protocol: a.protocol === "sgrid" ? "sgrid" : "grpc" };
  });
}

/** Where health checks connect for an adapter bound to a wildcard address. */
function probeHost(host: string): string {
  if (host === "" || host === "0.0.0.0") return "127.0.0.1";
  if (host === "::" || host === "[::]") return "::1";
  return host;
}

/** The health spec of an instance, or undefined when it has none. */
export function healthSpec(inst: InstanceDesired, adapters: AdapterSpec[]): HealthSpec | undefined {
  const h = inst.healthCheck;
  if (!h || h.kind === "") return undefined;
  const first = adapters[0];
  const port = h.port > 0 ? h.port : first?.port;
  if (port === undefined) throw new LaunchConfigError(`health check of instance ${inst.instanceId} names no port and the instance has no adapter`, {});
  const probe: Record<string, unknown> = { kind: h.kind, host: probeHost(first?.host ?? ""), port };
  if (h.path !== "") probe[h.kind === "grpc" ? "service" : "path"] = h.path;
  const spec: HealthSpec = { probe };
  if (h.initialDelayMs > 0) spec.initialDelayMs = h.initialDelayMs;
  if (h.intervalMs > 0) spec.intervalMs = h.intervalMs;
  if (h.timeoutMs > 0) spec.timeoutMs = h.timeoutMs;
  if (h.failureThreshold > 0) spec.failureThreshold = h.failureThreshold;
  return spec;
}

/** What the agent knows that goes into every instance's spec. */
export interface MapContext extends Omit<NodeContext, "confDir" | "logDir" | "dataDir"> {
  /** The node's advertised address (adapters without a host). */
  address: string;
  /** The server's conf/, logs/, data/ directories (from its ReleaseManager). */
  confDir: string;
  logDir: string;
  dataDir: string;
  /** passwd file for run-as lookups. Default /etc/passwd. */
  passwdFile?: string;
}

/** Files the instance's stdout and stderr are appended to (rotated by the agent). */
export function logFiles(logDir: string, instanceId: string): { stdout: string; stderr: string } {
  return { stdout: path.join(logDir, `instance-${instanceId}.stdout.log`), stderr: path.join(logDir, `instance-${instanceId}.stderr.log`) };
}

/**
 * Builds the DesiredSpec of an instance whose release `version` is
 * unpacked at `releaseDir` with `manifest`. Rejects with LaunchConfigError
 * for a config that cannot run (bad entry, unknown user, adapter without
 * port, contract violations are dropped and logged by ../launch).
 */
export async function toDesiredSpec(
  inst: InstanceDesired, manifest: PackageManifest, releaseDir: string, version: string, ctx: MapContext, token: string,
): Promise<DesiredSpec> {
  const id = instanceKey(inst.instanceId);
  const type = serverType(inst);
  const launchOpts = inst.launch;
  const adapters = adapterSpecs(inst, ctx.address);
  const effective: PackageManifest = launchOpts && launchOpts.entry !== "" ? { ...manifest, entry: launchOpts.entry } : manifest;
  if (effective.entry !== manifest.entry && (path.isAbsolute(effective.entry) || effective.entry.split(/[\\/]/).includes(".."))) {
    throw new LaunchConfigError(`entry override "${effective.entry}" must be a relative path inside the release`, { entry: effective.entry });
  }
  const built = await buildLaunchSpec({
    manifest: effective,
    releaseDir,
    version,
    type,
    instance: {
      adapters,
      env: inst.env,
      jvmOptions: launchOpts?.jvmOptions ?? [],
      nodeOptions: launchOpts?.nodeOptions ?? [],
      args: launchOpts?.args ?? [],
    },
    context: {
      node: ctx.node, registry: ctx.registry, agent: ctx.agent,
      confDir: ctx.confDir, logDir: ctx.logDir, dataDir: ctx.dataDir,
      nodePath: ctx.nodePath, javaPath: ctx.javaPath, inheritEnv: ctx.inheritEnv,
    },
  });
  const env = { ...built.env, [ENV.INSTANCE_ID]: id, [ENV.AGENT_TOKEN]: token };
  const logs = logFiles(ctx.logDir, id);
  const spec: DesiredSpec = {
    state: inst.state === "active" ? "active" : "inactive",
    version,
    launch: { command: built.command, args: built.args, env, cwd: built.cwd, stdoutPath: logs.stdout, stderrPath: logs.stderr },
  };
  if (launchOpts && launchOpts.runAsUser !== "") {
    const { uid, gid } = resolveRunAs(launchOpts.runAsUser, ctx.passwdFile);
    spec.launch.uid = uid;
    spec.launch.gid = gid;
  }
  const l = inst.limits;
  if (l && (l.memoryBytes > 0 || l.cpuCores > 0 || l.pids > 0)) {
    spec.limits = {};
    if (l.memoryBytes > 0) spec.limits.memoryBytes = l.memoryBytes;
    if (l.cpuCores > 0) spec.limits.cpuCores = l.cpuCores;
    if (l.pids > 0) spec.limits.pids = l.pids;
  }
  if (launchOpts && (launchOpts.stopSignal !== "" || launchOpts.stopGraceMs > 0)) {
    const sig = launchOpts.stopSignal.toUpperCase();
    spec.stop = {};
    if (sig !== "") {
      const name = (sig.startsWith("SIG") ? sig : `SIG${sig}`) as NodeJS.Signals;
      if (!(name in os.constants.signals)) throw new LaunchConfigError(`stop signal "${launchOpts.stopSignal}" is not a signal name`, { signal: launchOpts.stopSignal });
      spec.stop.signal = name;
    }
    if (launchOpts.stopGraceMs > 0) spec.stop.graceMs = launchOpts.stopGraceMs;
  }
  if (launchOpts && launchOpts.keepaliveTimeoutMs > 0) spec.keepalive = { timeoutMs: launchOpts.keepaliveTimeoutMs };
  const health = healthSpec(inst, adapters);
  if (health) spec.health = health;
  return spec;
}
