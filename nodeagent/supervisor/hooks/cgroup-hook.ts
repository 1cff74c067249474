/**
 * Owns the instance's cgroup across the lifecycle.
 *
 * prestart: kill anything left in the group by an earlier run (children a
 * crashed main process left behind, or an orphan from an agent that died
 * between spawn and saving its state), so a start can never produce a
 * duplicate; then create the group with the desired limits.
 * update: new limits are written into the running group, no restart.
 * destroy: remove the group (idempotent).
 */
import type { CgroupBackend } from "../../cgroups";
import type { HookContext, LifecycleHook } from "./base";

export class CgroupHook implements LifecycleHook {
  readonly name = "cgroup";

  constructor(private readonly cgroups: CgroupBackend) {}

  async prestart(ctx: HookContext): Promise<void> {
    const leftovers = await this.cgroups.procs(ctx.instanceId);
    if (leftovers.length > 0) {
      ctx.log.warn({ instanceId: ctx.instanceId, pids: leftovers.slice(0, 20) }, "killing processes left in the instance's cgroup before starting");
      await this.cgroups.killAll(ctx.instanceId);
    }
    await this.cgroups.initialize(ctx.instanceId, ctx.desired.limits ?? {});
  }

  async update(ctx: HookContext): Promise<void> {
    if (ctx.handle) await this.cgroups.initialize(ctx.instanceId, ctx.desired.limits ?? {});
  }

  async destroy(ctx: HookContext): Promise<void> {
    await this.cgroups.cleanup(ctx.instanceId);
    this.cgroups.track(ctx.instanceId, undefined);
  }
}
