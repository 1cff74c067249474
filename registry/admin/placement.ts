/**
 * Placing servers on nodes (Deploy) and changing an instance's spec: port
 * auto-assignment, adapter hosts, and the one transaction that creates a
 * server and its instances together (all or nothing).
 *
 * Ports: an adapter with port 0 gets the lowest free port of
 * PLACEMENT_DEFAULTS.portRange (20000–29999) on its node — free meaning not
 * used by any adapter of any instance on that node (store.instances.usedPorts)
 * nor assigned earlier in the same request. The range sits below Linux's
 * ephemeral range (32768+) so outgoing connections never hold an assigned
 * port, and above the usual well-known and registered service ports.
 * Concurrent deploys that pick the same port are caught by the store's
 * uniqueness check; the whole placement is then retried (up to 3 times).
 *
 * Hosts: an adapter without a host gets the node's address (the host part of
 * what the agent announced), or 127.0.0.1 for a node that never announced one.
 */
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from "sgridnext";
import type { RegistryStore } from "../store";
import type { AdapterInput, InstanceRecord, PlacementRecord, PlacementTemplate, ServerRecord, ServerType } from "../store/records";
import { SERVER_TYPES } from "../store/records";

export const PLACEMENT_DEFAULTS = Object.freeze({
  /** Inclusive range ports are auto-assigned from. */
  portRange: Object.freeze([20000, 29999] as const),
  /** Attempts when a concurrent placement took the same port. */
  attempts: 3,
});

/** The host part of a node's announced address (`host`, `host:port`, `[v6]:port`). */
export function nodeHost(address: string): string {
  const a = address.trim();
  if (a === "") return "127.0.0.1";
  const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(a);
  if (bracket) return bracket[1]!;
  const parts = a.split(":");
  return parts.length === 2 ? parts[0]! : a;
}

/** Fills port-0 adapters with free ports of the range and empty hosts with `host`. Mutates `taken`. */
export function assignPorts(adapters: AdapterInput[], taken: Set<number>, host: string, node: string): AdapterInput[] {
  const [lo, hi] = PLACEMENT_DEFAULTS.portRange;
  let next = lo;
  for (const a of adapters) if (a.port) taken.add(a.port);
  return adapters.map((a) => {
    const out = { ...a, host: a.host || host };
    if (a.port === 0) {
      while (next <= hi && taken.has(next)) next++;
      if (next > hi) throw new FailedPreconditionError(`no free port left in ${lo}-${hi} on node "${node}" for Obj "${a.obj}"`, { node, obj: a.obj });
      out.port = next;
      taken.add(next);
    }
    return out;
  });
}

/** What to deploy: the instance spec (the same as a placement's template), and where. */
export interface DeploySpec extends PlacementTemplate {
  application: string;
  server: string;
  /** Empty: the server must exist. */
  type: string;
  nodes: string[];
  actor: string;
}

export interface DeployResult {
  server: ServerRecord;
  created: boolean;
  instances: InstanceRecord[];
}

function isRetryablePortClash(err: unknown): boolean {
  return (err as { code?: string }).code === "ALREADY_EXISTS" && /port/i.test((err as Error).message);
}

/**
 * Creates the server when missing and one instance per node, in one
 * transaction. Errors: unknown node or version (NOT_FOUND), the server on a
 * node already (ALREADY_EXISTS, naming it), the existing server of another
 * type or `start` without any version (FAILED_PRECONDITION), bad names,
 * adapters, env, limits (INVALID_ARGUMENT). Nothing is written on error.
 */
export async function deploy(store: RegistryStore, spec: DeploySpec): Promise<DeployResult> {
  const nodes = [...new Set(spec.nodes)];
  if (nodes.length === 0) throw new InvalidArgumentError(`no node given to deploy ${spec.application}.${spec.server} on`, { kind: "nodes" });
  if (spec.type && !(SERVER_TYPES as readonly string[]).includes(spec.type)) {
    throw new InvalidArgumentError(`invalid server type "${spec.type}": expected one of ${SERVER_TYPES.join(", ")}`, { kind: "server type" });
  }
  const anyAuto = spec.adapters.some((a) => a.port === 0);
  for (let attempt = 1; ; attempt++) {
    try {
      return await store.transaction((tx) => deployOnce(tx, spec, nodes));
    } catch (err) {
      if (anyAuto && attempt < PLACEMENT_DEFAULTS.attempts && isRetryablePortClash(err)) continue;
      throw err;
    }
  }
}

/** The server of a deploy, created when missing (with its `server.create` event); its patch for new instances, checked against `start`. */
async function ensureServer(tx: RegistryStore, spec: Omit<DeploySpec, "nodes">): Promise<{ server: ServerRecord; created: boolean; patchId: number | null }> {
  const full = `${spec.application}.${spec.server}`;
  let server = await tx.servers.find(spec.application, spec.server);
  let created = false;
  if (server) {
    if (spec.type && spec.type !== server.type) {
      throw new FailedPreconditionError(`server ${full} exists with type ${server.type}, not ${spec.type}`, { server: full, type: server.type });
    }
  } else {
    if (!spec.type) throw new InvalidArgumentError(`server ${full} does not exist: give its type (${SERVER_TYPES.join(", ")}) to create it`, { kind: "server type" });
    server = await tx.servers.create({ application: spec.application, name: spec.server, type: spec.type as ServerType });
    created = true;
    await tx.events.append({ actor: spec.actor, kind: "server.create", target: full, message: `server ${full} (${spec.type}) created` });
  }
  let patchId = server.defaultPatchId;
  if (spec.version > 0) patchId = (await tx.patches.getByVersion(spec.application, spec.server, spec.version)).id;
  if (spec.start && patchId === null) {
    throw new FailedPreconditionError(`cannot start ${full} on deploy: it has no patch version yet (upload one, or give a version)`, { server: full });
  }
  return { server, created, patchId };
}

export interface PlaceSpec extends Omit<DeploySpec, "nodes"> {
  /** The placement query (checked by the caller). */
  query: string;
  count: number;
}

/**
 * Stores (or replaces) a server's placement, creating the server when
 * missing, in one transaction; the reconciler then makes its instances.
 * Errors as for deploy; nothing is written on error.
 */
export async function place(store: RegistryStore, spec: PlaceSpec): Promise<{ server: ServerRecord; created: boolean; placement: PlacementRecord }> {
  if (spec.type && !(SERVER_TYPES as readonly string[]).includes(spec.type)) {
    throw new InvalidArgumentError(`invalid server type "${spec.type}": expected one of ${SERVER_TYPES.join(", ")}`, { kind: "server type" });
  }
  return store.transaction(async (tx) => {
    const { server, created } = await ensureServer(tx, spec);
    const placement = await tx.placements.put({
      application: spec.application, server: spec.server, query: spec.query, count: spec.count, actor: spec.actor,
      template: { adapters: spec.adapters, env: spec.env, limits: spec.limits, healthCheck: spec.healthCheck, launch: spec.launch, version: spec.version, start: spec.start },
    });
    await tx.events.append({
      actor: spec.actor, kind: "server.place", target: `${spec.application}.${spec.server}`,
      message: `${spec.application}.${spec.server} placed by ${spec.query}, count ${spec.count}`,
      data: { query: spec.query, count: spec.count, envNames: Object.keys(spec.env), start: spec.start, version: spec.version },
    });
    return { server, created, placement };
  });
}

async function deployOnce(tx: RegistryStore, spec: DeploySpec, nodes: string[]): Promise<DeployResult> {
  const full = `${spec.application}.${spec.server}`;
  const { server, created, patchId } = await ensureServer(tx, spec);
  const instances: InstanceRecord[] = [];
  for (const nodeName of nodes) {
    const node = await tx.nodes.find(nodeName);
    if (!node) throw new NotFoundError(`node "${nodeName}" not found`, { node: nodeName });
    const existing = await tx.instances.find(spec.application, spec.server, nodeName);
    if (existing) throw new AlreadyExistsError(`server ${full} is already on node "${nodeName}" (instance ${existing.id})`, { server: full, node: nodeName, instanceId: existing.id });
    const adapters = assignPorts(spec.adapters, new Set(await tx.instances.usedPorts(nodeName)), nodeHost(node.address), nodeName);
    const inst = await tx.instances.create({
      application: spec.application, server: spec.server, node: nodeName, adapters, env: spec.env, limits: spec.limits,
      healthCheck: spec.healthCheck, launch: spec.launch, desiredState: spec.start ? "active" : "inactive", desiredPatchId: patchId,
    });
    instances.push(inst);
    await tx.events.append({
      actor: spec.actor, kind: "instance.deploy", target: `${full}@${nodeName}`,
      message: `${full} placed on ${nodeName} (instance ${inst.id})${spec.start ? ", started" : ""}`,
      // Env values may be secrets: only their names go to the event log.
      data: { instanceId: inst.id, adapters: inst.adapters.map((a) => `${a.obj}@${a.host}:${a.port}`), envNames: Object.keys(spec.env), limits: { ...spec.limits }, patchId, start: spec.start },
    });
  }
  return { server, created, instances };
}
