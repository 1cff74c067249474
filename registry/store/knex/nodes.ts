/**
 * Nodes: one row per machine running `sgrid node`, keyed by node name.
 * Heartbeats are the hottest write in the registry (every node, every few
 * seconds), so `heartbeat` is a single UPDATE that bumps the `nodes`
 * revision only when the node comes back online, and `recordHeartbeats`
 * writes a whole second of them with one UPDATE per few hundred nodes.
 */
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, MAX_NODE_TAGS, checkTagKey, parseTags } from "sgridnext";
import type { HeartbeatEntry, NodeHello, NodeRepo } from "../base";
import type { NodeRecord } from "../records";
import { validateJsonObject, validateNodeName, validateText } from "../validate";
import { type StoreContext, num, toJson } from "./context";
import { requireNodeRow, toNode } from "./rows";

/** Nodes per statement of recordHeartbeats (well under SQLite's and MySQL's bound-parameter limits). */
const HEARTBEAT_CHUNK = 500;

export class KnexNodeRepo implements NodeRepo {
  constructor(private readonly ctx: StoreContext) {}

  async upsert(hello: NodeHello): Promise<NodeRecord> {
    const name = validateNodeName(hello.name);
    const address = validateText("node address", hello.address ?? "", 255);
    const agentVersion = validateText("agent version", hello.agentVersion ?? "", 64);
    const hostInfo = toJson(validateJsonObject("host info", hello.hostInfo));
    const agentId = hello.agentId === undefined ? undefined : validateText("agent id", hello.agentId, 64);
    const agentTags = hello.tags === undefined ? undefined : toJson(parseTags(hello.tags));
    return this.ctx.write(async (trx, touch) => {
      const now = this.ctx.now();
      const fields = {
        address, agent_version: agentVersion, host_info: hostInfo, last_heartbeat_at: now, online: true, updated_at: now,
        ...(agentId === undefined ? {} : { agent_id: agentId }), ...(agentTags === undefined ? {} : { agent_tags: agentTags }),
      };
      await trx("nodes").insert({ name, ...fields, created_at: now }).onConflict("name").merge(Object.keys(fields));
      touch("nodes");
      return toNode(await requireNodeRow(trx, name));
    });
  }

  async get(name: string): Promise<NodeRecord> {
    validateNodeName(name);
    return this.ctx.read(async (db) => toNode(await requireNodeRow(db, name)));
  }

  async find(name: string): Promise<NodeRecord | undefined> {
    validateNodeName(name);
    return this.ctx.read(async (db) => {
      const row = await db("nodes").where({ name }).first();
      return row ? toNode(row) : undefined;
    });
  }

  async list(): Promise<NodeRecord[]> {
    return this.ctx.read(async (db) => (await db("nodes").orderBy("name")).map(toNode));
  }

  async heartbeat(name: string, at?: number): Promise<void> {
    validateNodeName(name);
    const now = at ?? this.ctx.now();
    // Fast path: already online, one UPDATE, no revision bump.
    const n = await this.ctx.read((db) => db("nodes").where({ name, online: true }).update({ last_heartbeat_at: now }));
    if (num(n) > 0) return;
    await this.ctx.write(async (trx, touch) => {
      const changed = await trx("nodes").where({ name }).update({ last_heartbeat_at: now, online: true, updated_at: now });
      if (num(changed) === 0) throw new NotFoundError(`node "${name}" not found`, { node: name });
      touch("nodes");
    });
  }

  async recordHeartbeats(batch: readonly HeartbeatEntry[]): Promise<string[]> {
    const byName = new Map<string, { at: number; hostInfo?: string }>();
    for (const e of batch) {
      const name = validateNodeName(e.name);
      if (!Number.isFinite(e.at) || e.at < 0) throw new InvalidArgumentError(`invalid heartbeat time ${String(e.at)} of node "${name}"`, { node: name });
      byName.set(name, { at: e.at, hostInfo: e.hostInfo === undefined ? undefined : toJson(validateJsonObject("host info", e.hostInfo)) });
    }
    if (byName.size === 0) return [];
    // Oldest first, so that each chunk's single time (its oldest) understates a node's by less than a flush interval.
    const entries = [...byName].sort((a, b) => a[1].at - b[1].at);
    return this.ctx.write(async (trx, touch) => {
      const missing: string[] = [];
      for (let i = 0; i < entries.length; i += HEARTBEAT_CHUNK) {
        const chunk = entries.slice(i, i + HEARTBEAT_CHUNK);
        const names = chunk.map(([name]) => name);
        const n = await trx("nodes").where({ online: true }).whereIn("name", names).update({ last_heartbeat_at: chunk[0]![1].at });
        if (num(n) === names.length) continue;
        const online = new Set((await trx("nodes").where({ online: true }).whereIn("name", names).select("name")).map((r: any) => String(r.name)));
        missing.push(...names.filter((name) => !online.has(name)));
      }
      const gone = new Set(missing);
      const facts = entries.filter(([name, e]) => e.hostInfo !== undefined && !gone.has(name));
      for (let i = 0; i < facts.length; i += HEARTBEAT_CHUNK / 2) {
        const chunk = facts.slice(i, i + HEARTBEAT_CHUNK / 2);
        const cases = chunk.map(() => "when ? then ?").join(" ");
        await trx("nodes").where({ online: true }).whereIn("name", chunk.map(([name]) => name)).update({
          host_info: trx.raw(`case name ${cases} end`, chunk.flatMap(([name, e]) => [name, e.hostInfo!])),
          updated_at: this.ctx.now(),
        });
      }
      if (facts.length > 0) touch("nodes");
      return missing.sort();
    });
  }

  async setOnline(name: string, online: boolean): Promise<void> {
    validateNodeName(name);
    await this.ctx.write(async (trx, touch) => {
      await requireNodeRow(trx, name);
      const changed = await trx("nodes").where({ name }).whereNot({ online }).update({ online, updated_at: this.ctx.now() });
      if (num(changed) > 0) touch("nodes");
    });
  }

  async markStale(cutoff: number, keep: ReadonlySet<string> = new Set()): Promise<string[]> {
    return this.ctx.write(async (trx, touch) => {
      const stale = (q: any) => q.where({ online: true }).andWhere((w: any) => w.where("last_heartbeat_at", "<", cutoff).orWhereNull("last_heartbeat_at"));
      const names = (await stale(this.ctx.lock(trx("nodes").select("name")))).map((r: any) => String(r.name)).filter((n: string) => !keep.has(n));
      if (names.length === 0) return [];
      // Re-check the condition in the UPDATE: a heartbeat may have landed in between (SQLite, no row locks).
      await stale(trx("nodes").whereIn("name", names)).update({ online: false, updated_at: this.ctx.now() });
      touch("nodes");
      return names.sort();
    });
  }

  async setAdminTags(name: string, set: string[], unset: string[]): Promise<NodeRecord> {
    validateNodeName(name);
    const tags: Record<string, string | null> = parseTags(set);
    for (const key of unset) {
      checkTagKey(key);
      if (key in tags) throw new InvalidArgumentError(`tag "${key}" is both set and unset`, { kind: "tags" });
      tags[key] = null;
    }
    if (Object.keys(tags).length > MAX_NODE_TAGS) throw new InvalidArgumentError(`too many tags: ${Object.keys(tags).length} (at most ${MAX_NODE_TAGS})`, { kind: "tags" });
    return this.ctx.write(async (trx, touch) => {
      await requireNodeRow(trx, name);
      await trx("nodes").where({ name }).update({ admin_tags: toJson(tags), updated_at: this.ctx.now() });
      touch("nodes");
      return toNode(await requireNodeRow(trx, name));
    });
  }

  async remove(name: string): Promise<void> {
    validateNodeName(name);
    await this.ctx.write(async (trx, touch) => {
      const row = await requireNodeRow(trx, name);
      const placed = await trx("instances as i").join("servers as s", "s.id", "i.server_id").where("i.node_id", row.id).select("s.application", "s.name");
      if (placed.length > 0) {
        const list = placed.map((r: any) => `${r.application}.${r.name}`).sort();
        throw new FailedPreconditionError(`node "${name}" still has ${list.length} instance(s): ${list.join(", ")}`, { node: name, instances: list });
      }
      await trx("nodes").where({ id: row.id }).del();
      touch("nodes");
    });
  }
}

