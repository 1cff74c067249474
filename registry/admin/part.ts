/**
 * The admin part of the registry: the Admin API servant (AdminObj), the
 * task runner and the placement reconciler (./placement-reconciler.ts), started after the store is migrated and stopped at shutdown
 * (running tasks hand their lease back and are resumed by the next start or
 * by another registry process).
 */
import type { Servant } from "sgridnext";
import type { RegistryContext } from "../server/context";
import { RegistryAdminServant } from "./admin-servant";
import { PlacementReconciler } from "./placement-reconciler";
import { TaskRunner, type TaskRunnerOptions } from "./task-runner";

/** What the part gives RegistryServer (the RegistryPart shape of server/parts.ts, spelled out so that no import cycle forms). */
export interface AdminPart {
  servants: Record<string, Servant>;
  runner: TaskRunner;
  placements: PlacementReconciler;
  start(): Promise<void>;
  drain(): Promise<void>;
  stop(): Promise<void>;
}

export function adminPart(ctx: RegistryContext, options: TaskRunnerOptions = {}): AdminPart {
  const runner = new TaskRunner(ctx, { ...(ctx.settings.taskSettleMs !== undefined ? { settleMs: ctx.settings.taskSettleMs } : {}), ...options });
  const placements = new PlacementReconciler(ctx, ctx.settings.placementGraceMs !== undefined ? { graceMs: ctx.settings.placementGraceMs } : {});
  const servant = new RegistryAdminServant(ctx, runner, placements);
  return {
    runner,
    placements,
    servants: { AdminObj: servant },
    start: async () => {
      servant.start();
      await runner.start();
      placements.start();
    },
    drain: async () => servant.drain(),
    stop: async () => {
      await placements.stop();
      await runner.stop();
      await servant.stop();
    },
  };
}
