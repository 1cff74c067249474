/**
 * `sgrid restart <App.Server>`: a restart task over a server's instances (all
 * of them, or those on `--nodes`), batch by batch, followed to its end as
 * `sgrid publish` follows a publish. An instance that is the last serving
 * endpoint of its Obj(s) restarts with a surge beside it (the registry's
 * task runner), so callers see no failed call. Exit 1 unless the task ends
 * `success`.
 */
import type { Command } from "commander";
import { FailedPreconditionError, InvalidArgumentError } from "sgridnext";
import type { TaskInfo } from "sgridnext/gen/sgrid/registry/v1/admin";
import { RegistryClient, withClientOptions, type ClientFlags } from "./client";
import { followTask, int, list, splitName, summarize } from "./publish";

export interface RestartOptions {
  name: string;
  nodes?: string[];
  batch?: number;
  stopOnFailure?: boolean;
  batchTimeoutS?: number;
  out?: (line: string) => void;
  watchRetryS?: number;
}

/** Creates the restart task and follows it; `ok` when it ends `success`. */
export async function restart(client: RegistryClient, options: RestartOptions): Promise<{ task: TaskInfo; ok: boolean }> {
  const out = options.out ?? ((l: string) => process.stdout.write(`${l}\n`));
  const { application, server } = splitName(options.name);
  const batch = options.batch ?? 0;
  if (!Number.isInteger(batch) || batch < 0) throw new InvalidArgumentError(`--batch must be a whole number >= 0, got ${options.batch}`);
  const nodes = [...new Set((options.nodes ?? []).map((n) => n.trim()).filter(Boolean))];
  const instances = (await client.call((metadata) => client.admin.listInstances({ application, server }, { metadata }))).instances.filter((i) => !i.surgeOf);
  const missing = nodes.filter((n) => !instances.some((i) => i.node === n));
  if (missing.length > 0) throw new FailedPreconditionError(`${application}.${server} has no instance on node(s) ${missing.join(", ")}`, { nodes: missing });
  const targets = nodes.length > 0 ? instances.filter((i) => nodes.includes(i.node)) : instances;
  if (targets.length === 0) throw new FailedPreconditionError(`${application}.${server} has no instances to restart`, { server: `${application}.${server}` });
  const created = await client.call((metadata) => client.admin.createTask({
    kind: "restart", instanceIds: targets.map((i) => i.id), version: 0, batchSize: batch,
    stopOnFailure: options.stopOnFailure ?? false, batchTimeoutS: options.batchTimeoutS ?? 0,
  }, { metadata }));
  out(`task ${created.id}: restart ${targets.length} instance(s) of ${application}.${server} (${targets.map((i) => i.node).join(", ")}), batch size ${batch || "all"}`);
  const task = await followTask(client, created, out, (options.watchRetryS ?? 60) * 1000);
  summarize(task, out);
  return { task, ok: task.status === "success" };
}

export function registerRestart(program: Command): void {
  withClientOptions(program
    .command("restart")
    .description("restart a server's instances batch by batch, following the task to its end")
    .argument("<App.Server>", "server, e.g. Demo.HelloServer")
    .option("--nodes <a,b>", "nodes to restart on (repeatable or comma-separated); default: every node with an instance", list, [] as string[])
    .option("--batch <n>", "instances per batch; 0 = all at once", int("--batch"), 0)
    .option("--stop-on-failure", "do not start the next batch after a failed item")
    .option("--batch-timeout <s>", "seconds a batch may take to be active again; 0 = the registry's default (120)", int("--batch-timeout"), 0))
    .action(async (name: string, opts: ClientFlags & { nodes: string[]; batch: number; stopOnFailure?: boolean; batchTimeout: number }) => {
      const client = new RegistryClient(opts);
      try {
        const res = await restart(client, { name, nodes: opts.nodes, batch: opts.batch, stopOnFailure: opts.stopOnFailure, batchTimeoutS: opts.batchTimeout });
        if (!res.ok) process.exitCode = 1;
      } finally {
        client.close();
      }
    });
}
