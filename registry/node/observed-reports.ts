/**
 * Observed-state reports of the sessions held here: each batch is checked
 * and resolved entry by entry (reads), written in one transaction (one
 * commit and one `observed` revision bump per batch, not per instance),
 * then its classified events are logged as `instance.<event>`. When the
 * transaction fails (an instance undeployed meanwhile), entries are written
 * one by one so that the others still land. An entry equal to what the
 * store already has (a reconnect's full batch) is not written again.
 */
import { InvalidArgumentError, NotFoundError, type Logger } from "sgridnext";
import type { InstanceObserved, ObservedBatch } from "sgridnext/gen/sgrid/registry/v1/node";
import { PortConflicts } from "./port-conflicts";
import { OBSERVED_STATES, type ObservedReport, type ObservedState, type RegistryStore } from "../store";
import type { ChangeFeed } from "../server/context";
import type { HeartbeatSamples } from "./heartbeat-samples";
import type { AppendEvent, HubStats } from "./hub-stats";
import type { NodeSession } from "./node-session";

/** Observed events that are logged, as `instance.<event>`. */
const INSTANCE_EVENTS = new Set(["crash", "oom", "failed", "keepalive", "install_failed", "port_in_use", "pids_limit", "cpu_throttled"]);

/** Equal for equal observed states (what reportObserved would write, minus the time). */
export function observedKey(r: { state?: string; observedState?: string; pid?: number | null; patchId?: number | null; observedPatchId?: number | null; restarts?: number; lastExitReason?: string | null }): string {
  return JSON.stringify([r.state ?? r.observedState, r.pid ?? null, r.patchId ?? r.observedPatchId ?? null, r.restarts ?? 0, r.lastExitReason ?? null]);
}

interface ReadyReport {
  o: InstanceObserved;
  info: { application: string; server: string };
  report: ObservedReport;
}

export interface ObservedDeps {
  store: RegistryStore;
  /** Kicked after each batch written (batched by the hub: ./open-gate.ts). */
  changes: Pick<ChangeFeed, "kick">;
  samples: HeartbeatSamples;
  stats: HubStats;
  log: Logger;
  appendEvent: AppendEvent;
}

export class ObservedRecorder {
  /** `App.Server#version` -> patch id (patch versions never change meaning). */
  private readonly patchIds = new Map<string, number>();

  /** Moves ports agents report taken on their node (./port-conflicts.ts). */
  private readonly ports: PortConflicts;

  constructor(private readonly d: ObservedDeps) {
    this.ports = new PortConflicts(d.store, d.log);
  }

  /** Records a batch; never throws for one bad entry (it is logged and skipped). */
  async record(session: NodeSession, batch: ObservedBatch): Promise<void> {
    const { store, log } = this.d;
    const ready: ReadyReport[] = [];
    for (const o of batch.instances) {
      try {
        const r = await this.prepare(session, o);
        if (r) ready.push(r);
      } catch (err) {
        log.warn({ node: session.node, instanceId: o.instanceId, err: (err as Error)?.message }, "could not record an observed state");
      }
    }
    if (ready.length === 0) return;
    let written = ready;
    try {
      await store.transaction(async (tx) => {
        for (const r of ready) await tx.instances.recordObserved(r.o.instanceId, r.report);
      });
      for (const r of ready) session.observedKeys.set(r.o.instanceId, observedKey(r.report));
    } catch {
      written = [];
      for (const r of ready) {
        try {
          await store.instances.recordObserved(r.o.instanceId, r.report);
          session.observedKeys.set(r.o.instanceId, observedKey(r.report));
          written.push(r);
        } catch (err) {
          log.warn({ node: session.node, instanceId: r.o.instanceId, err: (err as Error)?.message }, "could not record an observed state");
        }
      }
    }
    this.d.stats.observedReports += written.length;
    if (written.length > 0) this.d.changes.kick();
    for (const { o, info } of written) {
      if (o.startedAt > 0) this.d.samples.setStartedAt(o.instanceId, o.startedAt);
      if (o.event !== "") await this.logEvent(session.node, o, info);
      if (o.portsInUse.length > 0) await this.ports.reported(session.node, o.instanceId, o.portsInUse);
    }
  }

  /** Checks one observed entry and turns it into a store report; undefined (logged) when it is to be ignored. */
  private async prepare(session: NodeSession, o: InstanceObserved): Promise<ReadyReport | undefined> {
    const { store, log } = this.d;
    const node = session.node;
    if (!(OBSERVED_STATES as readonly string[]).includes(o.state)) {
      log.warn({ node, instanceId: o.instanceId, state: o.state }, "ignored an observed state with an unknown state");
      return undefined;
    }
    let info = session.instanceInfo.get(o.instanceId);
    if (!info) {
      // Not in the last desired state sent: check the store (placed a moment ago), refuse another node's.
      const inst = await store.instances.get(o.instanceId).catch((err) => {
        if (err instanceof NotFoundError || err instanceof InvalidArgumentError) return undefined;
        throw err;
      });
      if (!inst || inst.node !== node) {
        log.warn({ node, instanceId: o.instanceId }, "ignored an observed state for an instance not placed on this node");
        return undefined;
      }
      info = { application: inst.application, server: inst.server };
    }
    const patchId = o.version > 0 ? await this.patchIdOf(info.application, info.server, o.version) : null;
    const report: ObservedReport = {
      state: o.state as ObservedState,
      pid: o.pid > 0 ? o.pid : null,
      patchId,
      restarts: o.restarts,
      lastExitReason: o.lastExitReason === "" ? null : o.lastExitReason.slice(0, 4096),
    };
    // Unchanged since the store last had it (a reconnect's full batch): nothing to write.
    if (o.event === "" && session.observedKeys.get(o.instanceId) === observedKey(report)) return undefined;
    return { o, info, report };
  }

  /**
   * Logs `instance.<event>` for a classified event: pid, restarts, version and
   * the exit reason (or the event's own detail, e.g. how many forks the pids
   * limit refused) only, never env or args.
   */
  private async logEvent(node: string, o: InstanceObserved, info: { application: string; server: string }): Promise<void> {
    if (!INSTANCE_EVENTS.has(o.event)) {
      this.d.log.warn({ node, instanceId: o.instanceId, event: o.event }, "ignored an unknown instance event");
      return;
    }
    const target = `${info.application}.${info.server}@${node}`;
    const reason = (o.eventDetail !== "" ? o.eventDetail : o.lastExitReason).slice(0, 500);
    await this.d.appendEvent({
      actor: `node:${node}`, kind: `instance.${o.event}`, target,
      message: `${target} (instance ${o.instanceId}): ${o.event}${reason ? `: ${reason}` : ""}`,
      data: { instanceId: o.instanceId, state: o.state, pid: o.pid, restarts: o.restarts, version: o.version, reason },
    });
  }

  /** Patch id of a version number; null (with a warning) for a version the registry does not know. */
  private async patchIdOf(application: string, server: string, version: number): Promise<number | null> {
    const key = `${application}.${server}#${version}`;
    const hit = this.patchIds.get(key);
    if (hit !== undefined) return hit;
    try {
      const p = await this.d.store.patches.getByVersion(application, server, version);
      if (this.patchIds.size > 100_000) this.patchIds.clear();
      this.patchIds.set(key, p.id);
      return p.id;
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      this.d.log.warn({ application, server, version }, "an agent reports a patch version the registry does not know");
      return null;
    }
  }
}
