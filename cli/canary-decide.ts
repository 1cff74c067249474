/**
 * `sgrid canary promote|rollback <task-id>`: a person's decision on a canary
 * publish that is held (or still baking), through Admin.DecideCanary; then
 * follows the task as `sgrid publish` does.
 */
import type { Command } from "commander";
import { canaryPrinter } from "./canary";
import { RegistryClient, withClientOptions, type ClientFlags } from "./client";
import { int } from "./flags";
import { followTask, summarize } from "./publish";

export function registerCanary(program: Command): void {
  const canary = program.command("canary").description("decide a canary publish that is held (or still baking): promote it, or roll it back");
  for (const [action, what] of [["promote", "promote the canary: the other instances follow in batches; follows the task to its end"], ["rollback", "roll the canary back: its instances go back to the version they ran before"]] as const) {
    withClientOptions(canary
      .command(action)
      .description(what)
      .argument("<task-id>", "id of the canary publish task (printed by `sgrid publish --canary`)"))
      .action(async (id: string, opts: ClientFlags) => {
        const client = new RegistryClient(opts);
        try {
          const taskId = int("task id")(id);
          const out = (l: string) => process.stdout.write(`${l}\n`);
          const decided = await client.call((metadata) => client.admin.decideCanary({ id: taskId, action }, { metadata }));
          out(`task ${taskId}: ${action === "promote" ? "promote" : "roll back"} the canary (it was ${decided.canary?.state ?? "?"})`);
          const print = canaryPrinter(out);
          const task = await followTask(client, decided, out, 60_000, print);
          summarize(task, out);
          if (action === "promote" && task.status !== "success") process.exitCode = 1;
        } finally {
          client.close();
        }
      });
  }
}
