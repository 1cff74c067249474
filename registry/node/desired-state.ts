/**
 * The desired state of a node: every instance placed on it, as the agent
 * receives it on its session (DesiredState of node.proto).
 *
 * Built from the store (instances, their servers' types, their desired
 * patches) and the registry's settings (advertised endpoints, heartbeat
 * interval). The result is deterministic for the same rows: instances by id,
 * env keys sorted. That makes {@link desiredKey} a cheap "did anything change
 * for this node" test, so that a change elsewhere (another node's instance,
 * an observed-state report) sends nothing.
 *
 * Patches are cached by id: a patch row never changes after its upload (it
 * can only be deleted, and a patch in use cannot be). Server types are cached
 * too, re-read when an instance names an unknown server and dropped when the
 * `servers` topic moves.
 */
import { createHash } from "node:crypto";
import type { DesiredState, InstanceDesired } from "sgridnext/gen/sgrid/registry/v1/node";
import { HealthCheck, LaunchOptions } from "sgridnext/gen/sgrid/registry/v1/types";
import type { InstanceRecord, PatchRecord, RegistryStore, ServerType } from "../store";
import type { RegistrySettings } from "../server/context";

/** Largest number of patch records kept in the cache (a few hundred bytes each). */
const PATCH_CACHE_MAX = 10_000;

/** One instance's desired state as the agent sees it. Pure. */
export function instanceDesired(inst: InstanceRecord, type: ServerType, patch: PatchRecord | undefined): InstanceDesired {
  const env: Record<string, string> = {};
  for (const k of Object.keys(inst.env).sort()) env[k] = inst.env[k]!;
  const hc = inst.healthCheck;
  return {
    instanceId: inst.id,
    application: inst.application,
    server: inst.server,
    type,
    adapters: inst.adapters.map((a) => ({ obj: a.obj, host: a.host, port: a.port, protocol: a.protocol, weight: a.weight })),
    env,
    limits: { memoryBytes: inst.limits.memoryBytes ?? 0, cpuCores: inst.limits.cpuCores ?? 0, pids: inst.limits.pids ?? 0 },
    // Stored as the proto's JSON (camelCase); `type` is accepted for `kind` (older free-form checks).
    healthCheck: hc ? HealthCheck.fromJSON({ ...hc, kind: hc.kind ?? hc.type ?? "" }) : undefined,
    launch: LaunchOptions.fromPartial(inst.launch ?? {}),
    state: inst.desiredState,
    patch: patch ? { id: patch.id, version: patch.version, sha256: patch.sha256, size: patch.size } : undefined,
  };
}

/**
 * A string equal for equal desired states (the builder's output is
 * deterministic): the SHA-256 of its JSON. Each session keeps the key of
 * the last state it sent; the JSON itself (about 4.5 KB for 10 instances)
 * kept per session was 45 MB of a 10,000-node registry's heap.
 */
export function desiredKey(state: DesiredState): string {
  return createHash("sha256").update(JSON.stringify(state)).digest("base64");
}

export class DesiredStateBuilder {
  private readonly patches = new Map<number, PatchRecord>();
  /** Server id -> type; re-read on a miss and dropped on the `servers` topic (a type can change). */
  private serverTypes = new Map<number, ServerType>();

  /**
   * `factsIntervalMs`: how often host facts are taken from heartbeats (the
   * hub's factsIntervalMs), told to agents so that the others carry only a
   * HostSample; 0 asks for facts with every heartbeat.
   */
  constructor(private readonly store: RegistryStore, private readonly settings: RegistrySettings, private readonly factsIntervalMs = 0) {}

  /** The desired state of one node (empty instance list for a node with none), with the instance records it was built from. */
  async forNode(node: string): Promise<{ state: DesiredState; instances: InstanceRecord[] }> {
    const instances = await this.store.instances.list({ node });
    const map = await this.forNodes(new Set([node]), instances);
    return { state: map.get(node)!, instances };
  }

  /**
   * Desired states of several nodes. `instances` may be given (every
   * instance, or those of these nodes) to share one query between many
   * nodes; otherwise each node's are read.
   */
  async forNodes(nodes: ReadonlySet<string>, instances?: InstanceRecord[]): Promise<Map<string, DesiredState>> {
    let list: InstanceRecord[];
    if (instances) list = instances.filter((i) => nodes.has(i.node));
    else {
      list = [];
      for (const n of nodes) list.push(...(await this.store.instances.list({ node: n })));
    }
    let types = this.serverTypes;
    if (list.some((i) => !types.has(i.serverId))) {
      types = new Map((await this.store.servers.list()).map((s) => [s.id, s.type]));
      this.serverTypes = types;
    }
    const byNode = new Map<string, InstanceDesired[]>();
    for (const n of nodes) byNode.set(n, []);
    for (const inst of [...list].sort((a, b) => a.id - b.id)) {
      const patch = inst.desiredPatchId === null ? undefined : await this.patch(inst.desiredPatchId);
      // A server removed between the two reads: its instances are gone too; skip.
      const type = types.get(inst.serverId);
      if (type === undefined) continue;
      byNode.get(inst.node)!.push(instanceDesired(inst, type, patch));
    }
    const out = new Map<string, DesiredState>();
    for (const [n, insts] of byNode) {
      out.set(n, { instances: insts, registry: this.settings.advertise, heartbeatIntervalMs: this.settings.heartbeatIntervalMs, factsIntervalMs: Math.min(this.factsIntervalMs, 0xffff_ffff) });
    }
    return out;
  }

  /** A patch by id, cached; undefined when it was deleted meanwhile. */
  private async patch(id: number): Promise<PatchRecord | undefined> {
    const hit = this.patches.get(id);
    if (hit) return hit;
    try {
      const p = await this.store.patches.get(id);
      if (this.patches.size >= PATCH_CACHE_MAX) this.patches.clear();
      this.patches.set(id, p);
      return p;
    } catch (err) {
      if ((err as { code?: string })?.code === "NOT_FOUND") return undefined;
      throw err;
    }
  }

  /** Forgets cached patches (call on the `patches` topic: a deleted id must not be served). */
  forgetPatches(): void {
    this.patches.clear();
  }

  /** Forgets cached server types (call on the `servers` topic). */
  forgetServers(): void {
    this.serverTypes = new Map();
  }
}
