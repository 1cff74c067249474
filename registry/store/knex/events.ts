/**
 * The event log: who did what, when, on what; also what happened by itself
 * (a node going offline, an instance crashing or being OOM-killed). Append
 * only, except for pruning by age. Callers must not put secrets in messages
 * or data: the log is shown to every viewer.
 */
import { InvalidArgumentError } from "sgridnext";
import type { EventFilter, EventInput, EventRepo } from "../base";
import type { EventRecord } from "../records";
import { validateCount, validateId, validateJsonObject, validateText } from "../validate";
import { type StoreContext, insertedId, num, toJson } from "./context";
import { toEvent } from "./rows";

function validateKind(kind: unknown): string {
  const k = validateText("event kind", kind, 64);
  if (!/^[a-z][a-z0-9_.-]*$/.test(k)) {
    throw new InvalidArgumentError(`invalid event kind ${JSON.stringify(k)}: lower-case, dotted (e.g. "instance.crash")`, { kind: "event kind" });
  }
  return k;
}


export class KnexEventRepo implements EventRepo {
  constructor(private readonly ctx: StoreContext) {}

  async append(event: EventInput): Promise<EventRecord> {
    const row = {
      time: event.time === undefined ? this.ctx.now() : validateCount("event time", event.time),
      actor: validateText("event actor", event.actor, 128),
      kind: validateKind(event.kind),
      target: validateText("event target", event.target ?? "", 255),
      message: validateText("event message", event.message ?? "", 8192),
      data: toJson(validateJsonObject("event data", event.data)),
    };
    if (row.actor.length === 0) throw new InvalidArgumentError("invalid event actor: must not be empty", { kind: "event actor" });
    return this.ctx.write(async (trx, touch) => {
      const id = insertedId(await trx("events").insert(row));
      touch("events");
      return toEvent(await trx("events").where({ id }).first());
    });
  }

  async list(filter: EventFilter = {}): Promise<EventRecord[]> {
    const limit = Math.min(validateId("limit", filter.limit ?? 100), 1000);
    return this.ctx.read(async (db) => {
      const q = db("events").limit(limit);
      if (filter.kind !== undefined) q.where({ kind: filter.kind });
      if (filter.target !== undefined) q.where({ target: filter.target });
      // Not LIKE: SQLite's LIKE ignores case and MySQL's (utf8mb4_bin) does not; substr compares alike on both.
      if (filter.targetPrefix !== undefined) q.whereRaw("substr(??, 1, ?) = ?", ["target", [...filter.targetPrefix].length, filter.targetPrefix]);
      if (filter.actor !== undefined) q.where({ actor: filter.actor });
      if (filter.since !== undefined) q.where("time", ">=", filter.since);
      if (filter.until !== undefined) q.where("time", "<", filter.until);
      if (filter.beforeId !== undefined) q.where("id", "<", filter.beforeId);
      if (filter.afterId !== undefined) q.where("id", ">", filter.afterId).orderBy("id", "asc");
      else q.orderBy("id", "desc");
      return (await q).map(toEvent);
    });
  }

  async prune(before: number): Promise<number> {
    validateCount("prune time", before);
    return this.ctx.write(async (trx, touch) => {
      const n = num(await trx("events").where("time", "<", before).del());
      if (n > 0) touch("events");
      return n;
    });
  }
}
