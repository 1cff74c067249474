/**
 * NodeSupervisor: every instance on this node, their durable state, and the
 * one cgroup backend and process wrangler they share.
 *
 * The registry session (later) drives it: on every (re)connect it hands over
 * the full desired state (`apply`), then single changes (`setDesired`,
 * `remove`, `restart`), and forwards the 'state' events upward. Between
 * connections the node keeps supervising from the last desired state, which
 * is persisted with each instance's process handle.
 *
 * Agent restart: start() re-reads the state file and resumes every instance,
 * adopting the processes that still run (see InstanceSupervisor.resume), so
 * a `kill -9` of the agent never costs a servant a restart and never yields
 * a duplicate. shutdown() detaches without stopping anything.
 */
import { EventEmitter } from "node:events";
import * as path from "node:path";
import { getLogger } from "sgridnext";
import { type CgroupBackend, type CgroupUsage, type DetectCgroupsOptions, detectCgroups } from "../cgroups";
import { ProcessWrangler, type ProcessWranglerOptions } from "../process";
import { StateStore } from "../state";
import { InstanceNotFoundError } from "../errors";
import { type DesiredSpec, type InstanceRecord, type ObservedState, validateDesiredSpec } from "./desired-spec";
import { type SupervisorOptions, type ResolvedSupervisorOptions, resolveSupervisorOptions } from "./options";
import { InstanceSupervisor } from "./instance-supervisor";
import type { LifecycleHook } from "./hooks/base";

export interface NodeSupervisorOptions {
  /** Directory of the agent's durable state (`<data-dir>/state`). Required, absolute. */
  stateDir: string;
  /** The cgroup backend, or options to detect one at start(). Default: detect. */
  cgroups?: CgroupBackend | DetectCgroupsOptions;
  /** Process wrangler options (poll interval, shell, setpriv, kill timeout). Defaults: WRANGLER_DEFAULTS. */
  process?: Omit<ProcessWranglerOptions, "cgroups">;
  /** Supervision options shared by every instance. Defaults: SUPERVISOR_DEFAULTS and RESTART_DEFAULTS. */
  supervisor?: SupervisorOptions;
  /** Extra lifecycle hooks for each instance (e.g. log rotation), made once per instance. Default none. */
  hooks?: (instanceId: string) => LifecycleHook[];
}

function isBackend(v: unknown): v is CgroupBackend {
  return typeof v === "object" && v !== null && typeof (v as CgroupBackend).initialize === "function";
}

/** Events: "state" (ObservedState) on every change. */
export class NodeSupervisor extends EventEmitter<{ state: [ObservedState] }> {
  private readonly options: NodeSupervisorOptions;
  private readonly supervisorOptions: ResolvedSupervisorOptions;
  private readonly store: StateStore<InstanceRecord>;
  private readonly instances = new Map<string, InstanceSupervisor>();
  private readonly log = getLogger("agent.supervisor");
  private wranglerRef: ProcessWrangler | undefined;
  private started = false;

  constructor(options: NodeSupervisorOptions) {
    super();
    if (typeof options?.stateDir !== "string" || !path.isAbsolute(options.stateDir)) {
      throw new TypeError(`stateDir must be an absolute path, got ${String(options?.stateDir)}`);
    }
    this.options = Object.freeze({ ...options });
    this.supervisorOptions = resolveSupervisorOptions(options.supervisor);
    this.store = new StateStore<InstanceRecord>({ dir: options.stateDir });
  }

  /** The process wrangler (after start()). */
  get wrangler(): ProcessWrangler {
    if (!this.wranglerRef) throw new Error("NodeSupervisor.start() has not completed");
    return this.wranglerRef;
  }

  /** The cgroup backend in use (after start()). */
  get cgroups(): CgroupBackend {
    return this.wrangler.cgroups;
  }

  /**
   * Chooses the cgroup backend, loads the state file and resumes every
   * recorded instance (adopting what still runs). Resolves when each has
   * been adopted or started. Idempotent.
   */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const c = this.options.cgroups;
    const cgroups = isBackend(c) ? c : await detectCgroups(c ?? {});
    this.wranglerRef = new ProcessWrangler({ ...this.options.process, cgroups });
    const records = await this.store.load();
    await Promise.all([...records].map(async ([id, record]) => {
      try {
        await this.instance(id).resume(record);
      } catch (err) {
        this.log.error({ instanceId: id, err: (err as Error).message }, "dropping an unusable state record");
        this.instances.get(id)?.detach();
        this.instances.delete(id);
        await this.store.delete(id);
      }
    }));
    this.log.info({ instances: this.instances.size, cgroups: cgroups.name }, "node supervisor started");
  }

  /** Sets one instance's desired spec (creating it if new). Resolves when reconciled. Throws at once for a bad spec. */
  setDesired(instanceId: string, spec: DesiredSpec): Promise<void> {
    validateDesiredSpec(spec);
    return this.instance(instanceId).setDesired(spec);
  }

  /**
   * Applies the full desired state of the node: every listed instance gets
   * its spec, every instance not listed is stopped and forgotten.
   */
  async apply(desired: Record<string, DesiredSpec>): Promise<void> {
    for (const spec of Object.values(desired)) validateDesiredSpec(spec);
    const gone = [...this.instances.keys()].filter((id) => !(id in desired));
    await Promise.all([
      ...Object.entries(desired).map(([id, spec]) => this.instance(id).setDesired(spec)),
      ...gone.map((id) => this.remove(id)),
    ]);
  }

  /** Stops an instance, removes its cgroup and forgets it. Rejects with InstanceNotFoundError for an unknown id. */
  async remove(instanceId: string): Promise<void> {
    const sup = this.require(instanceId);
    const spec = sup.desiredSpec;
    if (spec) await sup.setDesired({ ...spec, state: "inactive" });
    sup.detach();
    this.instances.delete(instanceId);
    await this.store.delete(instanceId);
  }

  /** Restarts one instance (or retries it when FAILED). */
  async restart(instanceId: string, reason?: string): Promise<void> {
    await this.require(instanceId).restart(reason);
  }

  /** A keepalive from a servant; false for an unknown instance. */
  keepalive(instanceId: string): boolean {
    const sup = this.instances.get(instanceId);
    sup?.keepalive();
    return sup !== undefined;
  }

  /** The supervisor of one instance. */
  get(instanceId: string): InstanceSupervisor | undefined {
    return this.instances.get(instanceId);
  }

  /** Observed state of every instance. */
  observed(): ObservedState[] {
    return [...this.instances.values()].map((s) => s.observed());
  }

  /** Usage counters of one instance's cgroup. */
  async usage(instanceId: string): Promise<CgroupUsage> {
    return this.require(instanceId).usage();
  }

  /** Makes every instance inactive (uninstall, tests). Their records stay. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.instances.values()].map(async (s) => {
      const spec = s.desiredSpec;
      if (spec) await s.setDesired({ ...spec, state: "inactive" });
    }));
  }

  /**
   * Leaves every servant running and stops supervising (agent shutdown or
   * upgrade): the state file is flushed, timers and watches end. A new
   * agent started on the same state dir re-adopts everything.
   */
  async shutdown(): Promise<void> {
    await this.store.flush();
    for (const sup of this.instances.values()) sup.detach();
    this.wranglerRef?.close();
    this.log.info("node supervisor detached; servants keep running");
  }

  private require(instanceId: string): InstanceSupervisor {
    const sup = this.instances.get(instanceId);
    if (!sup) throw new InstanceNotFoundError(`instance ${instanceId} is not supervised on this node`, { instanceId });
    return sup;
  }

  private instance(instanceId: string): InstanceSupervisor {
    let sup = this.instances.get(instanceId);
    if (!sup) {
      sup = new InstanceSupervisor(instanceId, {
        wrangler: this.wrangler,
        store: this.store,
        options: this.supervisorOptions,
        hooks: this.options.hooks?.(instanceId),
      });
      sup.on("state", (s) => this.emit("state", s));
      this.instances.set(instanceId, sup);
    }
    return sup;
  }
}
