/**
 * Instances: a server placed on a node, with what it should be (spec and
 * desired state, written by people and tasks) and what it is (observed
 * state, written from the agent's reports).
 *
 * Ports are checked per node at write time: two instances on one node may not
 * declare the same port. Two registry processes placing instances at the same
 * moment could still race past that check; the agent then reports the bind
 * failure. Good enough for a check whose job is to catch typos.
 */
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from "sgridnext";
import type { InstanceFilter, InstanceInput, InstanceRepo, InstanceSpecUpdate, ObservedReport } from "../base";
import { isUniqueViolation } from "../db-errors";
import { type Adapter, type AdapterInput, DESIRED_STATES, type DesiredState, type InstanceRecord, OBSERVED_STATES } from "../records";
import { scopeKey } from "../scope";
import {
  validateAdapters, validateApplication, validateCount, validateEnv, validateId, validateJsonObject, validateLimits,
  validateLaunch, validateNodeName, validateOneOf, validateServerName, validateText,
} from "../validate";
import { type Db, type StoreContext, fromJson, num, toJson } from "./context";
import { instanceQuery, requireInstance, requireNodeRow, requirePatchOfServer, requireServerRow, toInstance } from "./rows";

export class KnexInstanceRepo implements InstanceRepo {
  constructor(private readonly ctx: StoreContext) {}

  async create(input: InstanceInput): Promise<InstanceRecord> {
    const application = validateApplication(input.application);
    const serverName = validateServerName(input.server);
    const nodeName = validateNodeName(input.node);
    const adapters = validateAdapters(input.adapters);
    const env = validateEnv(input.env);
    const limits = validateLimits(input.limits);
    const healthCheck = input.healthCheck == null ? null : validateJsonObject("health check", input.healthCheck);
    const launch = validateLaunch(input.launch);
    const desiredState: DesiredState = validateOneOf("desired state", input.desiredState ?? "inactive", DESIRED_STATES);
    if (input.desiredPatchId != null) validateId("desired patch id", input.desiredPatchId);
    const full = `${application}.${serverName}`;
    return this.ctx.write(async (trx, touch) => {
      const server = await requireServerRow(trx, application, serverName);
      const node = await requireNodeRow(trx, nodeName);
      if (await trx("instances").where({ server_id: server.id, node_id: node.id, slot: 0 }).first()) throw duplicate(full, nodeName);
      await checkPorts(trx, num(node.id), nodeName, adapters, null);
      const patchId = input.desiredPatchId !== undefined ? input.desiredPatchId : server.default_patch_id;
      if (patchId != null) await requirePatchOfServer(trx, num(patchId), num(server.id), full);
      const now = this.ctx.now();
      try {
        await trx("instances").insert({
          server_id: server.id,
          node_id: node.id,
          adapters: toJson(adapters),
          env: toJson(env),
          limits: toJson(limits),
          health_check: healthCheck === null ? null : toJson(healthCheck),
          launch: toJson(launch),
          desired_state: desiredState,
          desired_patch_id: patchId ?? null,
          observed_state: "inactive",
          restarts: 0,
          drained: false,
          created_at: now,
          updated_at: now,
        });
      } catch (err) {
        if (isUniqueViolation(err)) throw duplicate(full, nodeName);
        throw err;
      }
      touch("instances");
      return toInstance(await instanceQuery(trx).where({ "i.server_id": server.id, "i.node_id": node.id, "i.slot": 0 }).first());
    });
  }

  async createSurge(of: number, input: { adapters: AdapterInput[]; patchId: number | null }): Promise<InstanceRecord> {
    validateId("instance id", of);
    const adapters = validateAdapters(input.adapters);
    if (input.patchId !== null) validateId("desired patch id", input.patchId);
    return this.ctx.write(async (trx, touch) => {
      const original = await requireInstance(trx, of);
      if (original.surgeOf !== null) throw new FailedPreconditionError(`instance ${of} is itself a surge (of instance ${original.surgeOf})`, { instanceId: of });
      const existing = await trx("instances").where({ surge_of: of }).first("id");
      if (existing) throw new AlreadyExistsError(`instance ${of} already has a surge (instance ${num(existing.id)})`, { instanceId: of, surgeId: num(existing.id) });
      await checkPorts(trx, original.nodeId, original.node, adapters, null);
      if (input.patchId !== null) await requirePatchOfServer(trx, input.patchId, original.serverId, `${original.application}.${original.server}`);
      const now = this.ctx.now();
      await trx("instances").insert({
        server_id: original.serverId,
        node_id: original.nodeId,
        slot: 1,
        surge_of: of,
        adapters: toJson(adapters),
        env: toJson(original.env),
        limits: toJson(original.limits),
        health_check: original.healthCheck === null ? null : toJson(original.healthCheck),
        launch: toJson(original.launch),
        desired_state: "active",
        desired_patch_id: input.patchId,
        observed_state: "inactive",
        restarts: 0,
        drained: false,
        created_at: now,
        updated_at: now,
      });
      touch("instances");
      return toInstance(await instanceQuery(trx).where({ "i.surge_of": of }).first());
    });
  }

  async findSurge(of: number): Promise<InstanceRecord | undefined> {
    validateId("instance id", of);
    return this.ctx.read(async (db) => {
      const row = await instanceQuery(db).where({ "i.surge_of": of }).first();
      return row ? toInstance(row) : undefined;
    });
  }

  async get(id: number): Promise<InstanceRecord> {
    validateId("instance id", id);
    return this.ctx.read((db) => requireInstance(db, id));
  }

  async find(application: string, server: string, node: string): Promise<InstanceRecord | undefined> {
    validateApplication(application);
    validateServerName(server);
    validateNodeName(node);
    return this.ctx.read(async (db) => {
      const row = await instanceQuery(db).where({ "s.application": application, "s.name": server, "n.name": node, "i.slot": 0 }).first();
      return row ? toInstance(row) : undefined;
    });
  }

  async list(filter: InstanceFilter = {}): Promise<InstanceRecord[]> {
    if (filter.application !== undefined) validateApplication(filter.application);
    if (filter.server !== undefined) validateServerName(filter.server);
    if (filter.node !== undefined) validateNodeName(filter.node);
    return this.ctx.read(async (db) => {
      const q = instanceQuery(db).orderBy([{ column: "s.application" }, { column: "s.name" }, { column: "n.name" }]);
      if (filter.application !== undefined) q.where("s.application", filter.application);
      if (filter.server !== undefined) q.where("s.name", filter.server);
      if (filter.node !== undefined) q.where("n.name", filter.node);
      return (await q).map(toInstance);
    });
  }

  async usedPorts(node: string): Promise<number[]> {
    validateNodeName(node);
    return this.ctx.read(async (db) => {
      const nodeRow = await requireNodeRow(db, node);
      const ports = new Set<number>();
      for (const r of await db("instances").where({ node_id: nodeRow.id }).select("adapters")) {
        for (const a of fromJson<Adapter[]>(r.adapters, [])) ports.add(a.port);
      }
      return [...ports].sort((a, b) => a - b);
    });
  }

  async updateSpec(id: number, update: InstanceSpecUpdate): Promise<InstanceRecord> {
    validateId("instance id", id);
    const fields: Record<string, unknown> = {};
    const adapters = update.adapters !== undefined ? validateAdapters(update.adapters) : undefined;
    if (adapters !== undefined) fields.adapters = toJson(adapters);
    if (update.env !== undefined) fields.env = toJson(validateEnv(update.env));
    if (update.limits !== undefined) fields.limits = toJson(validateLimits(update.limits));
    if (update.healthCheck !== undefined) fields.health_check = update.healthCheck === null ? null : toJson(validateJsonObject("health check", update.healthCheck));
    if (update.launch !== undefined) fields.launch = toJson(validateLaunch(update.launch));
    return this.update(id, fields, async (trx, current) => {
      if (adapters !== undefined) await checkPorts(trx, current.nodeId, current.node, adapters, current.id);
    });
  }

  async setDesired(id: number, desired: { state?: DesiredState; patchId?: number | null }): Promise<InstanceRecord> {
    validateId("instance id", id);
    const fields: Record<string, unknown> = {};
    if (desired.state !== undefined) fields.desired_state = validateOneOf("desired state", desired.state, DESIRED_STATES);
    if (desired.patchId != null) validateId("desired patch id", desired.patchId);
    return this.update(id, fields, async (trx, current) => {
      if (desired.patchId !== undefined) {
        if (desired.patchId !== null) await requirePatchOfServer(trx, desired.patchId, current.serverId, `${current.application}.${current.server}`);
        fields.desired_patch_id = desired.patchId;
      }
    });
  }

  async reportObserved(id: number, report: ObservedReport): Promise<InstanceRecord> {
    // Observed state has its own topic: what agents report is not a change of
    // what is desired, so node sessions need not rebuild desired state for it.
    return this.update(id, this.observedFields(id, report), undefined, "observed");
  }

  async recordObserved(id: number, report: ObservedReport): Promise<void> {
    const fields = { ...this.observedFields(id, report), updated_at: this.ctx.now() };
    await this.ctx.write(async (trx, touch) => {
      const n = await trx("instances").where({ id }).update(fields);
      if (num(n) === 0) throw new NotFoundError(`instance ${id} not found`, { instanceId: id });
      touch("observed");
    });
  }

  /** The columns of an observed report, validated. */
  private observedFields(id: number, report: ObservedReport): Record<string, unknown> {
    validateId("instance id", id);
    const fields: Record<string, unknown> = {
      observed_state: validateOneOf("observed state", report.state, OBSERVED_STATES),
      observed_at: report.at ?? this.ctx.now(),
    };
    if (report.pid !== undefined) fields.pid = report.pid === null ? null : validateId("pid", report.pid);
    if (report.patchId !== undefined) fields.observed_patch_id = report.patchId === null ? null : validateId("observed patch id", report.patchId);
    if (report.restarts !== undefined) fields.restarts = validateCount("restarts", report.restarts);
    if (report.lastExitReason !== undefined) {
      fields.last_exit_reason = report.lastExitReason === null ? null : validateText("last exit reason", report.lastExitReason, 4096);
    }
    return fields;
  }

  async setDrained(id: number, drained: boolean): Promise<InstanceRecord> {
    validateId("instance id", id);
    if (typeof drained !== "boolean") throw new InvalidArgumentError("invalid drained flag: expected a boolean", { kind: "drained" });
    return this.update(id, { drained });
  }

  async remove(id: number): Promise<void> {
    validateId("instance id", id);
    await this.ctx.write(async (trx, touch) => {
      const current = await requireInstance(trx, id);
      if (current.surgeOf !== null) {
        await trx("instances").where({ id }).del();
        touch("instances");
        return;
      }
      await trx("instances").where({ surge_of: id }).del();
      const key = scopeKey({ level: "instance", application: current.application, server: current.server, node: current.node });
      const files = (await trx("config_files").where({ level: "instance", scope_key: key }).select("id")).map((r: any) => r.id);
      if (files.length > 0) {
        await trx("config_versions").whereIn("file_id", files).del();
        await trx("config_files").whereIn("id", files).del();
        touch("configs");
      }
      await trx("instances").where({ id }).del();
      touch("instances");
    });
  }

  /** Loads the instance, runs `check` (which may add fields), writes, returns the new record. */
  private async update(id: number, fields: Record<string, unknown>, check?: (trx: Db, current: InstanceRecord) => Promise<void>, topic: "instances" | "observed" = "instances"): Promise<InstanceRecord> {
    return this.ctx.write(async (trx, touch) => {
      const current = await requireInstance(trx, id);
      if (check) await check(trx, current);
      await trx("instances").where({ id }).update({ ...fields, updated_at: this.ctx.now() });
      touch(topic);
      return requireInstance(trx, id);
    });
  }
}

/** Refuses adapters whose port another instance on the same node declares already. */
async function checkPorts(db: Db, nodeId: number, nodeName: string, adapters: Adapter[], selfId: number | null): Promise<void> {
  if (adapters.length === 0) return;
  const rows = await db("instances as i").join("servers as s", "s.id", "i.server_id").where("i.node_id", nodeId).select("i.id", "i.adapters", "s.application", "s.name");
  for (const r of rows) {
    if (selfId !== null && num(r.id) === selfId) continue;
    for (const other of fromJson<Adapter[]>(r.adapters, [])) {
      const mine = adapters.find((a) => a.port === other.port);
      if (mine) {
        throw new AlreadyExistsError(
          `port ${mine.port} on node "${nodeName}" is already used by ${r.application}.${r.name}.${other.obj} (wanted for Obj "${mine.obj}")`,
          { node: nodeName, port: mine.port },
        );
      }
    }
  }
}

function duplicate(server: string, node: string): AlreadyExistsError {
  return new AlreadyExistsError(`server "${server}" already has an instance on node "${node}"`, { server, node });
}
