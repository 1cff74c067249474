/**
 * The placement reconciler: keeps each placed server at its count of
 * instances on nodes its placement query matches, as nodes join, leave,
 * change tags or stay offline past the grace period. Desired state, not a
 * one-off command: it runs every PLACEMENT_RECONCILER_DEFAULTS.intervalMs
 * and at once when the `nodes`, `servers`, `instances` or `observed` topic moves, on
 * every registry process. Each placement is reconciled in one transaction
 * that first locks its row (FOR UPDATE on MySQL; SQLite has one writer),
 * so two registry processes never place for the same server at once.
 *
 * Per placement ({@link planPlacement} decides, {@link PlacementReconciler}
 * acts):
 * - an instance on a matching node that is online, or offline for less
 *   than the grace, is kept (up to the count);
 * - an instance on a node offline for longer than the grace ("lost") is
 *   removed, and its node's agent drops it when it comes back (it gets a
 *   desired state without it);
 * - missing instances are made on matching online nodes that hold none of
 *   this server yet (at most one per node), the nodes with the fewest
 *   instances of any server first (spread), then by name; a node whose
 *   ports do not fit is skipped with the reason;
 * - instances beyond the count, or on nodes that no longer match, are
 *   removed only once the kept ones number `count` and are all observed
 *   active, so a node losing its tag never takes the last serving instance.
 * The outcome (placed, matching nodes, why instances are missing) is stored
 * with the placement and shown by ListServers. A query that matches no node
 * places nothing and says so.
 */
import { PeriodicTask, type Logger } from "sgridnext";
import type { RegistryContext } from "../server/context";
import type { RegistryStore } from "../store";
import type { InstanceRecord, NodeRecord, PlacementRecord, PlacementStatus, Topic } from "../store/records";
import { assignPorts, nodeHost } from "./placement";
import { matches, parsePlacementQuery, type NodeView, type QueryNode } from "./placement-query";

export interface PlacementReconcilerSettings {
  /** Between two full passes, ms. */
  intervalMs: number;
  /** A node offline this long (since its last heartbeat) is lost: its instances are placed elsewhere, ms. */
  graceMs: number;
}

export const PLACEMENT_RECONCILER_DEFAULTS: Readonly<PlacementReconcilerSettings> = Object.freeze({
  intervalMs: 5_000,
  /**
   * Nomad replaces the allocations of a node that missed its heartbeats
   * (plus heartbeat_grace); Kubernetes evicts after 5 minutes. A minute
   * rides out an agent restart or a short network cut without moving
   * anything, and is on top of the heartbeat timeout that marks the node
   * offline in the first place.
   */
  graceMs: 60_000,
});

/** The name, tags and facts a query is matched against. */
export function nodeView(n: NodeRecord): NodeView {
  const h = n.hostInfo as Record<string, any>;
  const disks: any[] = Array.isArray(h.disks) ? h.disks : [];
  const disk = disks.filter((d) => !d?.readOnly).reduce((m, d) => Math.max(m, Number(d?.availableBytes) || 0), 0);
  return {
    name: n.name,
    tags: n.tags,
    cpus: Number(h.cpuAvailable) || Number(h.cpuCount) || 0,
    memory: Number(h.memory?.totalBytes) || 0,
    disk,
    os: typeof h.platform === "string" ? h.platform : "",
    arch: typeof h.arch === "string" ? h.arch : "",
  };
}

export interface PlanInput {
  query: QueryNode;
  queryText: string;
  count: number;
  nodes: NodeRecord[];
  /** This server's instances (surges excluded). */
  instances: InstanceRecord[];
  /** Instances per node, of every server (for spreading). */
  load: ReadonlyMap<string, number>;
  now: number;
  graceMs: number;
}

export interface PlacementPlan {
  keep: InstanceRecord[];
  /** How many instances to make. */
  need: number;
  /** Nodes to try, in order, until `need` are made. */
  candidates: string[];
  remove: Array<{ instance: InstanceRecord; why: string }>;
  /** Names of matching nodes. */
  matching: string[];
  /** Why instances are missing before any is made (no match, too few nodes), or removals held back. */
  reasons: string[];
}

function isLost(n: NodeRecord, now: number, graceMs: number): boolean {
  return !n.online && (n.lastHeartbeatAt === null || now - n.lastHeartbeatAt > graceMs);
}

/** Decides what to keep, make and remove. Pure: everything it reads is in `input`. */
export function planPlacement(input: PlanInput): PlacementPlan {
  const { query, count, nodes, instances, load, now, graceMs } = input;
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const matching = nodes.filter((n) => matches(query, nodeView(n)));
  const matchSet = new Set(matching.map((n) => n.name));
  const sec = Math.round(graceMs / 1000);
  const kept: InstanceRecord[] = [];
  const remove: PlacementPlan["remove"] = [];
  const held: Array<{ instance: InstanceRecord; why: string }> = [];
  for (const inst of instances) {
    const n = byName.get(inst.node);
    if (n && isLost(n, now, graceMs)) remove.push({ instance: inst, why: `node "${inst.node}" has been offline for more than ${sec} s` });
    else if (!matchSet.has(inst.node)) held.push({ instance: inst, why: `node "${inst.node}" no longer matches ${input.queryText}` });
    else kept.push(inst);
  }
  // Keep the best: online nodes, then serving instances, then by node name.
  const score = (i: InstanceRecord): number => (byName.get(i.node)?.online ? 0 : 2) + (i.observedState === "active" ? 0 : 1);
  kept.sort((a, b) => score(a) - score(b) || a.node.localeCompare(b.node));
  for (const extra of kept.splice(count)) held.push({ instance: extra, why: `more instances than the count (${count})` });
  const need = count - kept.length;
  const used = new Set(instances.map((i) => i.node));
  const candidates = matching
    .filter((n) => n.online && !used.has(n.name))
    .sort((a, b) => (load.get(a.name) ?? 0) - (load.get(b.name) ?? 0) || a.name.localeCompare(b.name))
    .map((n) => n.name);
  const reasons: string[] = [];
  if (matching.length === 0) {
    reasons.push(`no node matches ${input.queryText} (${nodes.length} node(s) known)`);
  } else if (candidates.length < need) {
    const why = matching.filter((n) => !candidates.includes(n.name)).map((n) => {
      if (isLost(n, now, graceMs)) return `${n.name}: lost (offline for more than ${sec} s)`;
      if (!n.online) return `${n.name}: offline`;
      return `${n.name}: has an instance already`;
    });
    reasons.push(`not enough matching nodes: ${count} wanted, ${kept.length + candidates.length} possible (${matching.length} match: ${why.join(", ") || "none free"})`);
  }
  // Removing from live nodes waits for the kept instances to be all there and serving.
  const settled = need <= 0 && kept.every((i) => i.observedState === "active");
  for (const h of held) {
    if (settled) remove.push(h);
    else reasons.push(`instance ${h.instance.id} on ${h.instance.node} is kept until the others serve (${h.why})`);
  }
  return { keep: kept, need: Math.max(0, need), candidates, remove, matching: matching.map((n) => n.name), reasons };
}

export class PlacementReconciler {
  private readonly task: PeriodicTask;
  private readonly log: Logger;
  private readonly settings: PlacementReconcilerSettings;
  private again = false;

  constructor(private readonly ctx: RegistryContext, settings: Partial<PlacementReconcilerSettings> = {}) {
    this.settings = Object.freeze({ ...PLACEMENT_RECONCILER_DEFAULTS, ...settings });
    for (const [k, v] of Object.entries(this.settings)) {
      if (!Number.isInteger(v) || v < 1) throw new TypeError(`placement reconciler option ${k} must be a positive integer, got ${v}`);
    }
    this.log = ctx.log.child({ component: "placement" });
    this.task = new PeriodicTask(() => this.pass(), { intervalMs: this.settings.intervalMs, onError: (err) => this.log.warn({ err: (err as Error)?.message }, "placement pass failed (retried)") });
  }

  private readonly onChange = (topics: Set<Topic>): void => {
    if (topics.has("nodes") || topics.has("servers") || topics.has("instances") || topics.has("observed")) this.wake();
  };

  /** Runs a pass now (or right after the one in flight). */
  wake(): void {
    this.again = true;
    void this.task.runNow();
  }

  start(): void {
    this.ctx.changes.on("change", this.onChange);
    this.task.start();
  }

  async stop(): Promise<void> {
    this.ctx.changes.off("change", this.onChange);
    await this.task.stop();
  }

  /** One pass over every placement; a failing one is logged and the others go on. */
  private async pass(): Promise<void> {
    do {
      this.again = false;
      for (const p of await this.ctx.store.placements.list()) {
        try {
          await this.reconcile(p.id);
        } catch (err) {
          this.log.warn({ err: (err as Error)?.message, server: `${p.application}.${p.server}` }, "placement failed (retried)");
        }
      }
    } while (this.again && this.task.running);
  }

  /** Reconciles one placement now, in one transaction; resolves with its new status (undefined when it is gone). */
  async reconcile(id: number): Promise<PlacementStatus | undefined> {
    let changed = false;
    const status = await this.ctx.store.transaction(async (tx) => {
      const p = await tx.placements.lockById(id);
      if (!p) return undefined;
      const out = await this.reconcileLocked(tx, p);
      changed = out.changed;
      return out.status;
    });
    if (changed) this.ctx.changes.kick();
    return status;
  }

  private async reconcileLocked(tx: RegistryStore, p: PlacementRecord): Promise<{ status: PlacementStatus; changed: boolean }> {
    const full = `${p.application}.${p.server}`;
    const now = Date.now();
    const nodes = await tx.nodes.list();
    const all = await tx.instances.list();
    const load = new Map<string, number>();
    for (const i of all) load.set(i.node, (load.get(i.node) ?? 0) + 1);
    const mine = all.filter((i) => i.application === p.application && i.server === p.server && i.surgeOf === null);
    const plan = planPlacement({
      query: parsePlacementQuery(p.query), queryText: p.query, count: p.count, nodes, instances: mine, load, now, graceMs: this.settings.graceMs,
    });
    const reasons = [...plan.reasons];
    let made = 0;
    let changed = false;
    if (plan.need > 0 && plan.candidates.length > 0) {
      const desired = await this.desiredOf(tx, p, plan.keep);
      for (const nodeName of plan.candidates) {
        if (made >= plan.need) break;
        const node = nodes.find((n) => n.name === nodeName)!;
        try {
          const taken = new Set(await tx.instances.usedPorts(nodeName));
          const clash = p.template.adapters.find((a) => a.port !== 0 && taken.has(a.port));
          if (clash) throw new Error(`port ${clash.port} of Obj "${clash.obj}" is in use on node "${nodeName}"`);
          const adapters = assignPorts(p.template.adapters, taken, nodeHost(node.address), nodeName);
          const inst = await tx.instances.create({
            application: p.application, server: p.server, node: nodeName, adapters, env: p.template.env, limits: p.template.limits,
            healthCheck: p.template.healthCheck, launch: p.template.launch, desiredState: desired.state, desiredPatchId: desired.patchId,
          });
          made++;
          changed = true;
          await tx.events.append({
            actor: "placement", kind: "instance.place", target: `${full}@${nodeName}`,
            message: `${full} placed on ${nodeName} (instance ${inst.id}) by its placement ${p.query}`,
            data: { instanceId: inst.id, query: p.query, count: p.count, adapters: inst.adapters.map((a) => `${a.obj}@${a.host}:${a.port}`) },
          });
        } catch (err) {
          reasons.push(`node "${nodeName}": ${(err as Error).message}`);
        }
      }
      if (made < plan.need && plan.candidates.length >= plan.need) {
        reasons.unshift(`${plan.need - made} instance(s) could not be placed: the matching nodes' ports do not fit`);
      }
    }
    for (const r of plan.remove) {
      await tx.instances.remove(r.instance.id);
      changed = true;
      await tx.events.append({
        actor: "placement", kind: "instance.unplace", target: `${full}@${r.instance.node}`,
        message: `instance ${r.instance.id} of ${full} removed from ${r.instance.node}: ${r.why}`,
        data: { instanceId: r.instance.id, query: p.query, why: r.why },
      });
    }
    const placed = plan.keep.length + made;
    const status: PlacementStatus = {
      placed, count: p.count, matching: plan.matching, reasons: placed >= p.count ? reasons.filter((r) => r.startsWith("instance ")) : reasons,
      state: plan.matching.length === 0 ? "no_match" : placed >= p.count ? "placed" : "short", at: now,
    };
    if (p.status?.state !== status.state) {
      await tx.events.append({
        actor: "placement", kind: "placement.status", target: full,
        message: `placement of ${full} (${p.query}, count ${p.count}): ${placed} placed${status.reasons.length ? `: ${status.reasons.join("; ")}` : ""}`,
        data: { state: status.state, placed, count: p.count },
      });
      changed = true;
    }
    await tx.placements.setStatus(p.id, status);
    return { status, changed };
  }

  /** What a new instance desires: what its kept siblings desire (the version published since), else the template's. */
  private async desiredOf(tx: RegistryStore, p: PlacementRecord, keep: InstanceRecord[]): Promise<{ state: "active" | "inactive"; patchId: number | null }> {
    const sibling = keep[0];
    if (sibling) return { state: sibling.desiredState, patchId: sibling.desiredPatchId };
    let patchId: number | null;
    if (p.template.version > 0) patchId = (await tx.patches.getByVersion(p.application, p.server, p.template.version)).id;
    else patchId = (await tx.servers.get(p.application, p.server)).defaultPatchId;
    return { state: p.template.start && patchId !== null ? "active" : "inactive", patchId };
  }
}
