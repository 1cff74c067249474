/**
 * Placements: one row per placed server (query, count, the template its
 * instances are made from, the reconciler's last status). Written under the
 * `servers` topic: a placement is part of a server's desired state, and the
 * reconciler of every registry process wakes on that topic.
 */
import { InvalidArgumentError, NotFoundError } from "sgridnext";
import type { PlacementInput, PlacementRepo } from "../base";
import type { PlacementRecord, PlacementStatus, PlacementTemplate } from "../records";
import {
  validateAdapters, validateApplication, validateEnv, validateJsonObject, validateLaunch, validateLimits, validateServerName, validateText,
} from "../validate";
import { type Db, type StoreContext, fromJson, num, toJson } from "./context";
import { requireServerRow } from "./rows";

/** Most instances one placement may ask for. */
export const MAX_PLACEMENT_COUNT = 1000;

function toPlacement(r: any): PlacementRecord {
  return {
    id: num(r.id),
    serverId: num(r.server_id),
    application: String(r.application),
    server: String(r.server),
    query: String(r.query),
    count: num(r.count),
    template: fromJson<PlacementTemplate>(r.template, { adapters: [], env: {}, limits: {}, healthCheck: null, launch: {}, version: 0, start: false }),
    status: fromJson<PlacementStatus | null>(r.status, null),
    createdBy: String(r.created_by ?? ""),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

function placementQuery(db: Db) {
  return db("placements as p").join("servers as s", "s.id", "p.server_id").select("p.*", "s.application as application", "s.name as server");
}

/** Checks a template the way an instance is checked, with port 0 (assigned per node) and an empty host (the node's) allowed. */
function validateTemplate(t: PlacementTemplate): PlacementTemplate {
  const adapters = t.adapters ?? [];
  validateAdapters(adapters.map((a) => ({ ...a, host: a.host || "node", port: a.port === 0 ? 1 : a.port })));
  const version = t.version ?? 0;
  if (!Number.isInteger(version) || version < 0) throw new InvalidArgumentError(`invalid version ${version}`, { kind: "version" });
  return {
    adapters: adapters.map((a) => ({ ...a })),
    env: validateEnv(t.env),
    limits: validateLimits(t.limits),
    healthCheck: t.healthCheck == null ? null : validateJsonObject("health check", t.healthCheck),
    launch: validateLaunch(t.launch),
    version,
    start: t.start === true,
  };
}

export class KnexPlacementRepo implements PlacementRepo {
  constructor(private readonly ctx: StoreContext) {}

  async put(input: PlacementInput): Promise<PlacementRecord> {
    const application = validateApplication(input.application);
    const server = validateServerName(input.server);
    const query = validateText("placement query", input.query, 1024);
    if (!Number.isInteger(input.count) || input.count < 1 || input.count > MAX_PLACEMENT_COUNT) {
      throw new InvalidArgumentError(`invalid placement count ${input.count}: expected 1..${MAX_PLACEMENT_COUNT}`, { kind: "count" });
    }
    const template = validateTemplate(input.template);
    const actor = validateText("actor", input.actor, 64);
    return this.ctx.write(async (trx, touch) => {
      const row = await requireServerRow(trx, application, server);
      const now = this.ctx.now();
      const fields = { query, count: input.count, template: toJson(template), status: null, created_by: actor, updated_at: now };
      await trx("placements").insert({ server_id: row.id, ...fields, created_at: now }).onConflict("server_id").merge(Object.keys(fields));
      touch("servers");
      return toPlacement(await placementQuery(trx).where("p.server_id", row.id).first());
    });
  }

  async find(application: string, server: string): Promise<PlacementRecord | undefined> {
    validateApplication(application);
    validateServerName(server);
    return this.ctx.read(async (db) => {
      const row = await placementQuery(db).where({ "s.application": application, "s.name": server }).first();
      return row ? toPlacement(row) : undefined;
    });
  }

  async list(): Promise<PlacementRecord[]> {
    return this.ctx.read(async (db) => (await placementQuery(db).orderBy([{ column: "s.application" }, { column: "s.name" }])).map(toPlacement));
  }

  async lockById(id: number): Promise<PlacementRecord | undefined> {
    return this.ctx.write(async (trx) => {
      const row = await this.ctx.lock(placementQuery(trx).where("p.id", id)).first();
      return row ? toPlacement(row) : undefined;
    });
  }

  async setStatus(id: number, status: PlacementStatus): Promise<void> {
    await this.ctx.write(async (trx, touch) => {
      const before = await trx("placements").where({ id }).first("status");
      if (!before) return;
      const text = toJson(status);
      // The time alone moved: no revision bump (watchers would wake every reconcile).
      const same = JSON.stringify({ ...fromJson<PlacementStatus | null>(before.status, null), at: 0 }) === JSON.stringify({ ...status, at: 0 });
      await trx("placements").where({ id }).update({ status: text });
      if (!same) touch("servers");
    });
  }

  async remove(application: string, server: string): Promise<void> {
    validateApplication(application);
    validateServerName(server);
    await this.ctx.write(async (trx, touch) => {
      const row = await requireServerRow(trx, application, server);
      const n = await trx("placements").where({ server_id: row.id }).del();
      if (num(n) === 0) throw new NotFoundError(`server ${application}.${server} has no placement`, { application, server });
      touch("servers");
    });
  }
}
