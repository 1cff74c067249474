/**
 * Change counters per topic, for registry processes sharing one database:
 * each polls `get()` (a few rows, primary key order) about once a second and
 * re-reads a topic whose counter moved. Counters only grow.
 */
import type { RevisionRepo } from "../base";
import { TOPICS, type Topic } from "../records";
import { type StoreContext, num } from "./context";

export class KnexRevisionRepo implements RevisionRepo {
  constructor(private readonly ctx: StoreContext) {}

  async get(): Promise<Record<Topic, number>> {
    return this.ctx.read(async (db) => {
      const out = Object.fromEntries(TOPICS.map((t) => [t, 0])) as Record<Topic, number>;
      for (const r of await db("revisions").select("topic", "rev")) {
        if ((TOPICS as readonly string[]).includes(r.topic)) out[r.topic as Topic] = num(r.rev);
      }
      return out;
    });
  }
}
