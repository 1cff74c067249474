/**
 * Endpoints: the adapters of instances seen from the proxy's side, by full
 * Obj name. Adapters live as JSON on the instance row, so the lookup reads the
 * server's instances (an indexed, small set) and filters in memory.
 */
import { NotFoundError, type EndpointInactiveReason } from "sgridnext";
import type { EndpointRepo } from "../base";
import type { InstanceRecord, ObjEndpoint } from "../records";
import { parseFullObjName, validateApplication } from "../validate";
import { type StoreContext, bool } from "./context";
import { findServerRow, instanceQuery, toInstance } from "./rows";

/** The FindObject rule: serving traffic only when wanted, running, reachable and not drained. */
export function isEndpointActive(inst: Pick<InstanceRecord, "desiredState" | "observedState" | "drained">, nodeOnline: boolean): boolean {
  return inst.desiredState === "active" && inst.observedState === "active" && nodeOnline && !inst.drained;
}

/**
 * Why an endpoint is not active ("" when it is), in the contract's words
 * (framework/contract/endpoints.ts). Decisions first (drained, stopped),
 * then what the agent reported (down), then the guesses (node offline,
 * not reported serving yet), so that a guess never hides a decision.
 */
export function inactiveReason(inst: Pick<InstanceRecord, "desiredState" | "observedState" | "drained">, nodeOnline: boolean): EndpointInactiveReason | "" {
  if (inst.drained) return "drained";
  if (inst.desiredState !== "active") return "stopped";
  if (inst.observedState === "inactive" || inst.observedState === "failed" || inst.observedState === "deactivating") return "down";
  if (!nodeOnline) return "node_offline";
  if (inst.observedState !== "active") return "not_ready";
  return "";
}

function endpointsOf(row: any, onlyObj?: string): ObjEndpoint[] {
  const inst = toInstance(row);
  const nodeOnline = bool(row.node_online);
  const active = isEndpointActive(inst, nodeOnline);
  const reason = inactiveReason(inst, nodeOnline);
  return inst.adapters
    .filter((a) => onlyObj === undefined || a.obj === onlyObj)
    .map((a) => ({
      obj: `${inst.application}.${inst.server}.${a.obj}`,
      instanceId: inst.id,
      node: inst.node,
      host: a.host,
      port: a.port,
      protocol: a.protocol,
      weight: a.weight,
      active,
      inactiveReason: reason,
      desiredState: inst.desiredState,
      observedState: inst.observedState,
      nodeOnline,
      drained: inst.drained,
    }));
}

export class KnexEndpointRepo implements EndpointRepo {
  constructor(private readonly ctx: StoreContext) {}

  async find(fullObjName: string): Promise<ObjEndpoint[]> {
    const { application, server, obj } = parseFullObjName(fullObjName);
    return this.ctx.read(async (db) => {
      const serverRow = await findServerRow(db, application, server);
      if (!serverRow) {
        throw new NotFoundError(`Obj "${fullObjName}" not found: no server "${application}.${server}"`, { obj: fullObjName });
      }
      const rows = await instanceQuery(db).where("i.server_id", serverRow.id).orderBy("n.name");
      const out = rows.flatMap((r: any) => endpointsOf(r, obj));
      if (out.length === 0) {
        throw new NotFoundError(`Obj "${fullObjName}" not found: no instance of ${application}.${server} declares it`, { obj: fullObjName });
      }
      return out;
    });
  }

  async list(filter: { application?: string } = {}): Promise<ObjEndpoint[]> {
    if (filter.application !== undefined) validateApplication(filter.application);
    return this.ctx.read(async (db) => {
      const q = instanceQuery(db).orderBy([{ column: "s.application" }, { column: "s.name" }, { column: "n.name" }]);
      if (filter.application !== undefined) q.where("s.application", filter.application);
      return (await q).flatMap((r: any) => endpointsOf(r));
    });
  }
}
