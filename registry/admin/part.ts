/**
 * The admin part of the registry: the Admin API servant (AdminObj) and the
 * task runner, started after the store is migrated and stopped at shutdown
 * (running tasks hand their lease back and are resumed by the next start or
 * by another registry process).
 */
import type { Servant } from "sgridnext";
import type { RegistryContext } from "../server/context";
import { RegistryAdminServant } from "./admin-servant";
import { TaskRunner, type TaskRunnerOptions } from "./task-runner";

/** What the part gives RegistryServer (the RegistryPart shape of server/parts.ts, spelled out so that no import cycle forms). */
export interface AdminPart {
  servants: Record<string, Servant>;
  runner: TaskRunner;
  start(): Promise<void>;
  drain(): Promise<void>;
  stop(): Promise<void>;
}

export function adminPart(ctx: RegistryContext, options: TaskRunnerOptions = {}): AdminPart {
  const runner = new TaskRunner(ctx, { ...(ctx.settings.taskSettleMs !== undefined ? { settleMs: ctx.settings.taskSettleMs } : {}), ...options });
  const servant = new RegistryAdminServant(ctx, runner);
  return {
    runner,
    servants: { AdminObj: servant },
    start: () => {
      servant.start();
      return runner.start();
    },
    drain: async () => servant.drain(),
    stop: async () => {
      await runner.stop();
      await servant.stop();
    },
  };
}
