/**
 * Where a proxy's endpoint list comes from: a fixed list (explicit endpoints)
 * or the registry (resolved by Obj name, watched for changes).
 */
import type { Endpoint } from "../endpoint";

export interface EndpointSource {
  /** Current active endpoints (may be empty before the first resolution). */
  current(): readonly Endpoint[];
  /** Resolves once a first list is known (or immediately for fixed lists). Rejects only on fatal misuse. */
  ready(): Promise<void>;
  /** Registers a change listener; returns its remover. */
  onChange(listener: (endpoints: readonly Endpoint[]) => void): () => void;
  /** Stops watching. Idempotent. */
  close(): void;
  /** A short description for errors and `sgrid.connections`. */
  describe(): string;
  /**
   * Marks a call in flight; returns its release. A source may keep its
   * background work (the registry watch) running only while it is used, so
   * that a script that has made its calls exits on its own.
   */
  use?(): () => void;
  /**
   * For a call that found no endpoint: waits, until `until` (ms since the
   * epoch) or `signal`, while the source has no answer yet (its registry
   * unreachable), so that the call fails only once its deadline allows no
   * more waiting. Resolves at once when the source knows its list.
   */
  untilAnswered?(until: number, signal?: AbortSignal): Promise<void>;
}

export class StaticEndpointSource implements EndpointSource {
  private readonly list: readonly Endpoint[];
  constructor(endpoints: readonly Endpoint[], private readonly label: string) {
    this.list = Object.freeze([...endpoints]);
  }
  current(): readonly Endpoint[] { return this.list; }
  ready(): Promise<void> { return Promise.resolve(); }
  onChange(): () => void { return () => undefined; }
  close(): void { /* nothing to stop */ }
  describe(): string { return this.label; }
}
