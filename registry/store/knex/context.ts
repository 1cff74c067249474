/**
 * What every knex repository shares: the connection (or the transaction the
 * store is bound to), error mapping, transactions with retry on deadlock, and
 * the revision bump that makes writes visible to other registry processes.
 */
import type { Knex } from "knex";
import { Backoff } from "sgridnext";
import type { DatabaseInfo } from "../db";
import { isRetryableTxError, toStoreError } from "../db-errors";
import type { Topic } from "../records";

/** A connection or a transaction: what queries run on. */
export type Db = Knex | Knex.Transaction;

/** Records that a write touched a topic; the counter is bumped once at commit. */
export type Touch = (topic: Topic) => void;

/** How many times a transaction that hit a deadlock or a busy database is tried. */
const MAX_TX_ATTEMPTS = 5;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class StoreContext {
  constructor(
    readonly root: Knex,
    readonly info: DatabaseInfo,
    /** Set when this context belongs to a store bound to an open transaction. */
    private readonly bound: { trx: Knex.Transaction; touch: Touch } | null = null,
  ) {}

  /** True for the context of a store handed to a transaction callback. */
  get isBound(): boolean {
    return this.bound !== null;
  }

  get isMysql(): boolean {
    return this.info.dialect === "mysql";
  }

  /** The handle plain reads run on: the bound transaction, or the pool. */
  get db(): Db {
    return this.bound?.trx ?? this.root;
  }

  /** Current time in ms; one place, so that all rows of one write agree. */
  now(): number {
    return Date.now();
  }

  /** Maps a thrown value to the store's error contract. */
  fail(err: unknown): unknown {
    return toStoreError(err, this.info.safeUrl, this.info.scrub);
  }

  /** Runs a read (or a single-statement write that touches no topic) with error mapping. */
  async read<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    try {
      return await fn(this.db);
    } catch (err) {
      throw this.fail(err);
    }
  }

  /**
   * Runs `fn` in a transaction: the bound one, or a new one that is retried
   * (whole) on deadlock / lock timeout / SQLITE_BUSY. Topics passed to
   * `touch` get their revision bumped in the same transaction, in a fixed
   * order (so that concurrent writers cannot deadlock on the counters).
   */
  async write<T>(fn: (trx: Knex.Transaction, touch: Touch) => Promise<T>): Promise<T> {
    if (this.bound) {
      try {
        return await fn(this.bound.trx, this.bound.touch);
      } catch (err) {
        // A deadlock must reach the outermost write unmapped: that one retries the whole transaction.
        throw isRetryableTxError(err) ? err : this.fail(err);
      }
    }
    const backoff = new Backoff({ initialMs: 20, maxMs: 20 * 2 ** MAX_TX_ATTEMPTS, jitter: 0.5 });
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.root.transaction(async (trx) => {
          const touched = new Set<Topic>();
          const result = await fn(trx, (t) => touched.add(t));
          if (touched.size > 0) await bumpRevisions(trx, touched);
          return result;
        });
      } catch (err) {
        if (isRetryableTxError(err) && attempt < MAX_TX_ATTEMPTS) {
          await sleep(backoff.next());
          continue;
        }
        throw this.fail(err);
      }
    }
  }

  /** A context bound to an open transaction (for RegistryStore.transaction). */
  bind(trx: Knex.Transaction, touch: Touch): StoreContext {
    return new StoreContext(this.root, this.info, { trx, touch });
  }

  /** Adds FOR UPDATE on MySQL; SQLite has one writer at a time, so a plain select is already serialised. */
  lock<Q extends Knex.QueryBuilder>(qb: Q): Q {
    return (this.isMysql ? qb.forUpdate() : qb) as Q;
  }
}

/** Bumps the counters of the touched topics, in sorted order, in one statement. */
export async function bumpRevisions(db: Db, topics: Iterable<Topic>): Promise<void> {
  const list = [...new Set(topics)].sort();
  if (list.length > 0) await db("revisions").whereIn("topic", list).increment("rev", 1);
}

// ---- column helpers -------------------------------------------------------------------
export function toJson(value: unknown): string {
  return JSON.stringify(value ?? null);
}

export function fromJson<T>(text: unknown, fallback: T): T {
  if (typeof text !== "string" || text.length === 0) return fallback;
  try {
    const v = JSON.parse(text) as T | null;
    return v ?? fallback;
  } catch {
    return fallback;
  }
}

export function bool(v: unknown): boolean {
  return v === true || v === 1 || v === "1" || (typeof v === "bigint" && v !== 0n);
}

export function num(v: unknown): number {
  return typeof v === "number" ? v : Number(v);
}

export function numOrNull(v: unknown): number | null {
  return v == null ? null : num(v);
}

export function strOrNull(v: unknown): string | null {
  return v == null ? null : String(v);
}

/** The id of a row just inserted (knex returns `[id]` on both dialects without `returning`). */
export function insertedId(result: unknown): number {
  const first = Array.isArray(result) ? result[0] : result;
  return num(typeof first === "object" && first !== null ? (first as any).id : first);
}
