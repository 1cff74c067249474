/**
 * The start phase: turns the desired spec into a launch spec and launches
 * the process through the wrangler (into its cgroup, before it runs).
 */
import type { ProcessHandle, ProcessWrangler } from "../../process";
import type { HookContext, LifecycleHook } from "./base";

export class LaunchHook implements LifecycleHook {
  readonly name = "launch";

  constructor(private readonly wrangler: ProcessWrangler) {}

  async start(ctx: HookContext): Promise<ProcessHandle> {
    return this.wrangler.launch({ ...ctx.desired.launch, instanceId: ctx.instanceId, limits: ctx.desired.limits ?? {} });
  }
}
