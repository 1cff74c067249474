/**
 * Desired-state pushes to the sessions held here: on a change of the
 * topics a desired state depends on, every local node's desired state is
 * rebuilt and sent when it differs from the last one sent. Rebuilds are
 * coalesced (one in flight, one more queued).
 *
 * Desired state can change only with the `instances` (desired state, spec,
 * placement), `servers` or `patches` topics. Agents' observed-state reports,
 * by far the most frequent instance writes, bump the separate `observed`
 * topic, so they never cause a refresh (a read of every instance of every
 * local node). An earlier version counted the hub's own writes instead,
 * which raced with the change feed's poll and could skip a real change.
 */
import type { Logger } from "sgridnext";
import type { RegistryStore, Topic } from "../store";
import type { ChangeFeed } from "../server/context";
import type { DesiredStateBuilder } from "./desired-state";
import type { HubStats } from "./hub-stats";
import type { NodeSession } from "./node-session";

/** Desired states depend on these topics. */
const DESIRED_TOPICS: readonly Topic[] = ["instances", "servers", "patches"];
/** Up to this many local nodes, a refresh reads each node's instances; above, all instances at once. */
const PER_NODE_REFRESH_MAX = 8;

export interface DesiredPushDeps {
  store: RegistryStore;
  changes: ChangeFeed;
  builder: DesiredStateBuilder;
  sessions: ReadonlyMap<string, NodeSession>;
  stats: HubStats;
  log: Logger;
}

export class DesiredPusher {
  private refreshing: Promise<void> | undefined;
  private refreshAgain = false;
  private stopped = true;

  private readonly onChange = (topics: Set<Topic>): void => {
    if (topics.has("patches")) this.d.builder.forgetPatches();
    if (topics.has("servers")) this.d.builder.forgetServers();
    if (DESIRED_TOPICS.some((t) => topics.has(t))) this.refresh();
  };

  constructor(private readonly d: DesiredPushDeps) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.d.changes.on("change", this.onChange);
  }

  /** No more pushes; resolves once a rebuild in flight has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.d.changes.off("change", this.onChange);
    await this.refreshing;
  }

  /** Rebuilds the desired state of every local node and sends the changed ones. Coalesced. */
  refresh(): void {
    if (this.stopped) return;
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    this.refreshing = this.refreshNow()
      .catch((err) => this.d.log.warn({ err: (err as Error)?.message }, "could not refresh desired states (retried on the next change)"))
      .finally(() => {
        this.refreshing = undefined;
        if (this.refreshAgain) {
          this.refreshAgain = false;
          this.refresh();
        }
      });
  }

  private async refreshNow(): Promise<void> {
    const nodes = new Set(this.d.sessions.keys());
    if (nodes.size === 0) return;
    const all = nodes.size > PER_NODE_REFRESH_MAX ? await this.d.store.instances.list() : undefined;
    const states = await this.d.builder.forNodes(nodes, all);
    for (const [node, state] of states) {
      const s = this.d.sessions.get(node);
      if (s && s.sendDesired(state)) this.d.stats.desiredSent++;
    }
  }
}
