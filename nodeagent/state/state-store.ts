/**
 * The node agent's durable state: one small JSON file, `agent-state.json`
 * in the agent's `state/` directory, holding one record per instance (its
 * last desired spec and the handle of the process that runs it).
 *
 * It is what lets an agent restarted after `kill -9` re-adopt its servants
 * instead of starting duplicates, and supervise on from the last desired
 * state while the registry is away. Every change is written with
 * {@link writeStateFile}; writes are serialised and coalesced (changes made
 * while a write runs go into the next one), and the promise a change returns
 * resolves once a write that contains it is durable.
 *
 * The store is generic over the record type so that it does not depend on
 * the supervisor that defines it; records are validated by their owner.
 */
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { getLogger } from "sgridnext";
import { StateCorruptError } from "../errors";
import { writeStateFile } from "./write-state-file";

/** On-disk format. */
export interface AgentStateFile<T> {
  /** Format version; a file with another version is moved aside, not guessed at. */
  version: 1;
  /** When this content was written (ISO 8601). */
  savedAt: string;
  /** Records by instance id. */
  instances: Record<string, T>;
}

export interface StateStoreOptions {
  /** Directory of the state file (the agent's `<data-dir>/state`). Required, absolute. */
  dir: string;
  /** File name inside `dir`. Default "agent-state.json". */
  fileName?: string;
}

export const STATE_STORE_DEFAULTS = Object.freeze({ fileName: "agent-state.json" });

export class StateStore<T> {
  /** Absolute path of the state file. */
  readonly file: string;
  private readonly records = new Map<string, T>();
  private current: Promise<void> = Promise.resolve();
  private queued: Promise<void> | undefined;
  private readonly log = getLogger("agent.state");

  constructor(options: StateStoreOptions) {
    if (typeof options.dir !== "string" || !path.isAbsolute(options.dir)) throw new TypeError(`state dir must be an absolute path, got ${String(options.dir)}`);
    const fileName = options.fileName ?? STATE_STORE_DEFAULTS.fileName;
    if (fileName.includes("/") || fileName.startsWith(".")) throw new TypeError(`state file name must be a plain name, got ${fileName}`);
    this.file = path.join(options.dir, fileName);
  }

  /**
   * Reads the file into memory (replacing what was there). A missing file is
   * an empty state. An unreadable or foreign file is renamed to
   * `<file>.corrupt-<time>` (kept for a person to inspect), logged, and the
   * state starts empty: the agent must come up, and the registry resends the
   * desired state. Resolves with the records.
   */
  async load(): Promise<ReadonlyMap<string, T>> {
    this.records.clear();
    let text: string;
    try {
      text = await fsp.readFile(this.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return this.records;
      throw err;
    }
    try {
      const data = JSON.parse(text) as AgentStateFile<T>;
      if (data === null || typeof data !== "object" || data.version !== 1 || typeof data.instances !== "object" || data.instances === null) {
        throw new StateCorruptError(`${this.file} is not a version 1 agent state file`);
      }
      for (const [id, rec] of Object.entries(data.instances)) this.records.set(id, rec);
    } catch (err) {
      const aside = `${this.file}.corrupt-${Date.now()}`;
      await fsp.rename(this.file, aside).catch(() => undefined);
      const e = err instanceof StateCorruptError ? err : new StateCorruptError(`${this.file} cannot be parsed: ${(err as Error).message}`);
      this.log.error({ file: this.file, movedTo: aside, code: e.code, err: e.message }, "agent state unreadable; starting empty");
    }
    return this.records;
  }

  /** The record of one instance. */
  get(instanceId: string): T | undefined {
    return this.records.get(instanceId);
  }

  /** Every record, by instance id. */
  all(): ReadonlyMap<string, T> {
    return this.records;
  }

  /** Sets one record; resolves once it is on disk. Rejects with StateWriteError. */
  set(instanceId: string, record: T): Promise<void> {
    this.records.set(instanceId, record);
    return this.schedule();
  }

  /** Removes one record; resolves once that is on disk. */
  delete(instanceId: string): Promise<void> {
    if (!this.records.delete(instanceId)) return this.current;
    return this.schedule();
  }

  /** Resolves when every change made so far is on disk. */
  flush(): Promise<void> {
    return this.queued ?? this.current;
  }

  /** True when the state file exists. */
  exists(): boolean {
    return fs.existsSync(this.file);
  }

  private schedule(): Promise<void> {
    // A write that has not started yet will take this change too.
    if (this.queued) return this.queued;
    const p = this.current.then(() => {
      this.queued = undefined;
      return this.writeNow();
    });
    this.queued = p;
    this.current = p.catch(() => undefined);
    return p;
  }

  private async writeNow(): Promise<void> {
    const data: AgentStateFile<T> = { version: 1, savedAt: new Date().toISOString(), instances: Object.fromEntries(this.records) };
    await writeStateFile(this.file, `${JSON.stringify(data, null, 2)}\n`);
  }
}
