/**
 * `sgrid publish <App.Server> <file.tgz>`: upload and publish in one step,
 * for CI/CD. `sgrid publish <App.Server> --version N` publishes a stored
 * patch version again (no upload); `sgrid rollback <task-id>` undoes a
 * publish task (each instance back to the version it ran before).
 *
 * 1. Reads the package's `sgrid.json` (when it has one) and refuses a package
 *    made for another server before anything is sent.
 * 2. Hashes the file (sha256, size) locally; the registry checks both.
 * 3. With `--deploy`: creates the server (type from the manifest or `--type`)
 *    and its instances on the `--nodes` that have none, with one adapter per
 *    `--obj` on a port the registry assigns (Admin.Deploy).
 * 4. Uploads through Patch.Upload (256 KiB chunks), with a progress line on a
 *    terminal and no progress output otherwise.
 * 5. Creates a publish task (Admin.CreateTask) for the server's instances on
 *    `--nodes` (default: all its instances), then follows it (Admin.WatchTask),
 *    printing each item's changes. If the watch stream breaks, it resumes
 *    (GetTask + WatchTask) for up to `--watch-retry-s` (default 60 s).
 * Exit code 0 only when the task ends `success`; 1 when it ends failed or
 * partial, or on any error. With no instance to publish to, the upload alone
 * is done and said so (exit 0).
 *
 * Defaults: `--batch 0` (every instance in one batch, as Tars publishes;
 * pass `--batch 1` for a rolling publish), no stop on failure, the
 * registry's batch timeout (120 s).
 */
import * as fs from "node:fs";
import type { Command } from "commander";
import { Parser, type ReadEntry } from "tar";
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, SgridError } from "sgridnext";
import type { InstanceInfo, PatchInfo } from "sgridnext/gen/sgrid/registry/v1/types";
import type { CanaryOptions, TaskInfo, TaskItem } from "sgridnext/gen/sgrid/registry/v1/admin";
import type { UploadChunk } from "sgridnext/gen/sgrid/registry/v1/patch";
import type { DeepPartial } from "sgridnext";
import { RegistryClient, withClientOptions, type ClientFlags } from "./client";
import { formatBytes, hashFile } from "sgridnext-tools";
import { checkPackage } from "../registry/services/package-check";
import { canarySettings } from "../registry/admin/canary-plan";
import { Progress } from "./progress";
import { int, list } from "./flags";

export { int, list } from "./flags";
import { canaryOptions, canaryPrinter, withCanaryOptions, type CanaryFlags } from "./canary";

/** Bytes per upload message: well under gRPC's 4 MiB message limit, few enough messages for a fast upload. */
export const UPLOAD_CHUNK_BYTES = 256 * 1024;
const FINAL = new Set(["success", "failed", "partial"]);

export interface PublishOptions {
  /** `App.Server`. */
  name: string;
  /** Package to upload; omit with `version` to publish a stored patch version again. */
  file?: string;
  /** A stored patch version to publish (no upload). */
  version?: number;
  /** Nodes to publish to; default every node with an instance. */
  nodes?: string[];
  /** Instances per batch; 0 = all at once. */
  batch?: number;
  stopOnFailure?: boolean;
  comment?: string;
  /** Seconds a batch may take; 0 = the registry's default. */
  batchTimeoutS?: number;
  /** Create the server and missing instances on `nodes`. */
  deploy?: boolean;
  /** Obj names of the adapters `--deploy` creates. */
  objs?: string[];
  /** Server type for `--deploy` when the package has no manifest. */
  type?: string;
  /** How long to keep trying to follow the task when the stream breaks, s. Default 60. */
  watchRetryS?: number;
  /** Lines of output (progress, task changes). Default stdout. */
  out?: (line: string) => void;
  /** Progress stream; default stderr (a progress line only when it is a terminal). */
  progressStream?: NodeJS.WriteStream;
  /** A canary first (./canary.ts). */
  canary?: CanaryOptions;
}

export interface PublishResult {
  patch: PatchInfo;
  task?: TaskInfo;
  ok: boolean;
}

/** The package's own `sgrid.json`, read without unpacking (undefined when it has none at its root). */
export async function readPackageManifest(file: string): Promise<Record<string, unknown> | undefined> {
  return new Promise((resolve, reject) => {
    const source = fs.createReadStream(file);
    let found: Record<string, unknown> | undefined;
    let settled = false;
    const done = (err?: unknown) => {
      if (settled) return;
      settled = true;
      source.destroy();
      if (err) reject(err instanceof SgridError ? err : new InvalidArgumentError(`${file} is not a readable .tgz package: ${(err as Error).message}`, { file }));
      else resolve(found);
    };
    const parser = new Parser({
      onReadEntry: (entry: ReadEntry) => {
        const p = entry.path.replace(/^\.\//, "");
        if (p !== "sgrid.json" || entry.type !== "File") {
          entry.resume();
          return;
        }
        const parts: Buffer[] = [];
        entry.on("data", (d: Buffer) => parts.push(d));
        entry.on("end", () => {
          try {
            found = JSON.parse(Buffer.concat(parts).toString("utf8")) as Record<string, unknown>;
            done();
          } catch (err) {
            done(new InvalidArgumentError(`sgrid.json in ${file} is not valid JSON: ${(err as Error).message}`, { file }));
          }
        });
      },
    });
    parser.on("error", done);
    parser.on("end", () => done());
    source.on("error", done);
    source.pipe(parser);
  });
}

export function splitName(name: string): { application: string; server: string } {
  const parts = name.split(".");
  if (parts.length !== 2 || !parts[0] || !parts[1]) throw new InvalidArgumentError(`server name ${JSON.stringify(name)} must be <App>.<Server>`, { name });
  return { application: parts[0], server: parts[1] };
}

function describeItem(i: TaskItem): string {
  return `${i.node} #${i.instanceId}`;
}

/** Upload + publish + watch. Throws for bad input and registry errors; `ok` says how the task ended. */
export async function publish(client: RegistryClient, options: PublishOptions): Promise<PublishResult> {
  const out = options.out ?? ((l: string) => process.stdout.write(`${l}\n`));
  const { application, server } = splitName(options.name);
  const batch = options.batch ?? 0;
  if (!Number.isInteger(batch) || batch < 0) throw new InvalidArgumentError(`--batch must be a whole number >= 0, got ${options.batch}`);
  const nodes = [...new Set((options.nodes ?? []).map((n) => n.trim()).filter(Boolean))];
  if (options.deploy && nodes.length === 0) throw new InvalidArgumentError("--deploy needs --nodes (where to create the instances)");

  if ((options.file === undefined) === (options.version === undefined)) {
    throw new InvalidArgumentError("give either a package file to upload, or --version <n> to publish a stored patch version");
  }
  let pkg: { file: string; size: number; sha256: string } | undefined;
  let manifest: Record<string, unknown> | undefined;
  if (options.file !== undefined) {
    let st: fs.Stats;
    try {
      st = fs.statSync(options.file);
    } catch {
      throw new NotFoundError(`package ${options.file} does not exist`, { file: options.file });
    }
    if (!st.isFile()) throw new InvalidArgumentError(`package ${options.file} is not a file`, { file: options.file });
    // The registry's own package check, run here first so a bad package is refused before the
    // upload, with the message the registry (and admin) would give.
    await checkPackage(fs.createReadStream(options.file), { application, server });
    manifest = await readPackageManifest(options.file);
    pkg = { file: options.file, ...(await hashFile(options.file)) };
    out(`package ${pkg.file}: ${formatBytes(pkg.size)}, sha256 ${pkg.sha256}`);
  } else if (!Number.isInteger(options.version) || options.version! < 1) {
    throw new InvalidArgumentError(`--version must be a patch version number >= 1, got ${options.version}`);
  }

  // Instances first: a missing server or node is reported before the upload.
  const listInstances = async () => (await client.call((metadata) => client.admin.listInstances({ application, server }, { metadata }))).instances;
  let instances: InstanceInfo[] = await listInstances();
  const missing = nodes.filter((n) => !instances.some((i) => i.node === n));
  // The registry's own canary check, on the instances this publish will cover, before anything is deployed or uploaded.
  if (options.canary) canarySettings(options.canary, nodes.length > 0 ? nodes.length : instances.length);
  if (missing.length > 0) {
    if (!options.deploy) {
      throw new FailedPreconditionError(
        `${application}.${server} has no instance on node(s) ${missing.join(", ")}: deploy it there first (admin, or add --deploy --obj <Obj>)`,
        { nodes: missing },
      );
    }
    const objs = options.objs ?? [];
    if (objs.length === 0) throw new InvalidArgumentError("--deploy needs at least one --obj <Obj> (the adapters of the new instances)");
    const type = options.type ?? (typeof manifest?.type === "string" ? manifest.type : undefined);
    const reply = await client.call((metadata) => client.admin.deploy({
      application, server, type: type ?? "", nodes: missing,
      adapters: objs.map((obj) => ({ obj, port: 0 })),
    }, { metadata }));
    for (const i of reply.instances) {
      out(`deployed ${application}.${server} on ${i.node} (#${i.id}): ${i.adapters.map((a) => `${a.obj} ${a.host}:${a.port}`).join(", ")}`);
    }
    instances = await listInstances();
  }
  if (instances.length === 0) {
    const servers = await client.call((metadata) => client.admin.listServers({ application }, { metadata }));
    if (!servers.servers.some((s) => s.name === server)) {
      throw new FailedPreconditionError(
        `server ${application}.${server} does not exist: create it with --deploy --nodes <a,b> --obj <Obj>, or in admin`,
        { server: `${application}.${server}` },
      );
    }
  }
  const targets = nodes.length > 0 ? instances.filter((i) => nodes.includes(i.node)) : instances;

  let patch: PatchInfo;
  if (pkg) {
    patch = await upload(client, { application, server, ...pkg, comment: options.comment ?? "", stream: options.progressStream });
    out(`uploaded ${application}.${server} version ${patch.version} (${formatBytes(Number(patch.size))})`);
  } else {
    const stored = await client.call((metadata) => client.patch.list({ application, server }, { metadata }));
    const found = stored.patches.find((p) => p.version === options.version);
    if (!found) throw new NotFoundError(`${application}.${server} has no patch version ${options.version} (stored: ${stored.patches.map((p) => p.version).sort((a, b) => a - b).join(", ") || "none"})`, { version: options.version });
    patch = found;
    out(`stored ${application}.${server} version ${patch.version} (${formatBytes(Number(patch.size))}, sha256 ${patch.sha256})`);
  }
  if (targets.length === 0) {
    out(`${application}.${server} has no instances: nothing to publish (version ${patch.version} is stored)`);
    return { patch, ok: true };
  }

  const created = await client.call((metadata) => client.admin.createTask({
    kind: "publish", instanceIds: targets.map((i) => i.id), version: patch.version, batchSize: batch,
    stopOnFailure: options.stopOnFailure ?? false, batchTimeoutS: options.batchTimeoutS ?? 0, canary: options.canary,
  }, { metadata }));
  out(`task ${created.id}: publish version ${patch.version} to ${targets.length} instance(s) (${targets.map((i) => i.node).join(", ")}), batch size ${batch || "all"}`);
  // A held canary waits for a person: say how to decide, and stop following (exit 0).
  const held = (t: TaskInfo) => t.canary?.state === "held";
  const task = await followTask(client, created, out, (options.watchRetryS ?? 60) * 1000, canaryPrinter(out), options.canary ? held : undefined);
  if (held(task)) {
    out(`task ${task.id}: the canary is held; decide with \`sgrid canary promote ${task.id}\` or \`sgrid canary rollback ${task.id}\``);
    return { patch, task, ok: true };
  }
  summarize(task, out);
  return { patch, task, ok: task.status === "success" };
}

export function summarize(task: TaskInfo, out: (l: string) => void): void {
  const count = (status: string) => task.items.filter((i) => i.status === status).length;
  out(`task ${task.id} ${task.status}: ${count("SUCCESS")} succeeded, ${count("FAILED")} failed, ${count("NOT_START")} not started`);
}

/**
 * Rolls a publish task back (Admin.RollbackTask: each instance to the version
 * it ran before) and follows the new task. `ok` when it ends `success`.
 */
export async function rollback(client: RegistryClient, taskId: number, options: { out?: (l: string) => void; watchRetryS?: number } = {}): Promise<{ task: TaskInfo; ok: boolean }> {
  const out = options.out ?? ((l: string) => process.stdout.write(`${l}\n`));
  if (!Number.isSafeInteger(taskId) || taskId < 1) throw new InvalidArgumentError(`task id must be a number >= 1, got ${taskId}`);
  const created = await client.call((metadata) => client.admin.rollbackTask({ id: taskId }, { metadata }));
  out(`task ${created.id}: roll back task ${taskId} (${created.items.length} instance(s)), batch size ${created.batchSize || "all"}`);
  const task = await followTask(client, created, out, (options.watchRetryS ?? 60) * 1000);
  summarize(task, out);
  return { task, ok: task.status === "success" };
}

async function upload(
  client: RegistryClient,
  p: { application: string; server: string; sha256: string; size: number; comment: string; file: string; stream?: NodeJS.WriteStream },
): Promise<PatchInfo> {
  const progress = new Progress(`uploading ${p.application}.${p.server}`, p.size, p.stream ?? process.stderr);
  try {
    return await client.call(async (metadata) => {
      progress.update(0);
      async function* chunks(): AsyncIterable<DeepPartial<UploadChunk>> {
        yield { kind: { $case: "header", value: { application: p.application, server: p.server, sha256: p.sha256, size: p.size, comment: p.comment } } };
        let sent = 0;
        for await (const buf of fs.createReadStream(p.file, { highWaterMark: UPLOAD_CHUNK_BYTES })) {
          sent += (buf as Buffer).length;
          progress.update(sent);
          yield { kind: { $case: "data", value: buf as Buffer } };
        }
      }
      // No deadline: a large package on a slow link takes what it takes; the registry checks size and hash.
      return client.patch.upload(chunks(), { metadata });
    });
  } finally {
    progress.done();
  }
}

/** Follows a task to its end, printing item changes; resumes after a broken stream. */
export async function followTask(
  client: RegistryClient, first: TaskInfo, out: (l: string) => void, retryMs: number,
  onTask?: (t: TaskInfo) => void, until?: (t: TaskInfo) => boolean,
): Promise<TaskInfo> {
  const seen = new Map<string, string>();
  let last = first;
  const done = (t: TaskInfo) => FINAL.has(t.status) || until?.(t) === true;
  const report = (t: TaskInfo) => {
    onTask?.(t);
    for (const i of t.items) {
      const key = String(i.id);
      const state = `${i.status}${i.reason ? `: ${i.reason}` : ""}`;
      if (seen.get(key) === state) continue;
      seen.set(key, state);
      if (i.status === "NOT_START") continue;
      out(`  [batch ${i.batch}] ${describeItem(i)} ${state}`);
    }
    last = t;
  };
  report(first);
  let brokeAt: number | undefined;
  while (!done(last)) {
    try {
      const metadata = await client.auth();
      for await (const t of client.admin.watchTask({ id: first.id }, { metadata })) {
        brokeAt = undefined;
        report(t);
        if (done(t)) break;
      }
      if (!done(last)) {
        // The stream ended early (registry shutting down): read where it is and watch again.
        report(await client.admin.getTask({ id: first.id }, { metadata }));
      }
    } catch (err) {
      if (!(err instanceof SgridError) || !err.retryable) throw err;
      brokeAt ??= Date.now();
      if (Date.now() - brokeAt > retryMs) {
        throw new SgridError(err.code, `lost the registry while following task ${first.id} (${err.message}); the task goes on: look at it in admin`, { status: err.status, retryable: true });
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  return last;
}

export function registerPublish(program: Command): void {
  withClientOptions(withCanaryOptions(program
    .command("publish")
    .description("upload a package and publish it to a server's instances, following the task to its end")
    .argument("<App.Server>", "server, e.g. Demo.HelloServer")
    .argument("[file.tgz]", "package made by `sgrid package` (or --version to publish a stored version)")
    .option("--version <n>", "publish this stored patch version instead of uploading a file", int("--version"))
    .option("--nodes <a,b>", "nodes to publish to (repeatable or comma-separated); default: every node with an instance", list, [] as string[])
    .option("--batch <n>", "instances per batch; 0 = all at once", int("--batch"), 0)
    .option("--stop-on-failure", "do not start the next batch after a failed item")
    .option("--comment <text>", "comment stored with the patch version", "")
    .option("--batch-timeout <s>", "seconds a batch may take to become active; 0 = the registry's default (120)", int("--batch-timeout"), 0)
    .option("--deploy", "create the server and its instances on --nodes where missing (needs --obj)")
    .option("--obj <name>", "Obj of the instances --deploy creates (repeatable); ports are assigned by the registry", list, [] as string[])
    .option("--type <type>", "server type for --deploy when the package has no sgrid.json: node | java | binary")))
    .action(async (name: string, file: string | undefined, opts: ClientFlags & CanaryFlags & {
      version?: number; nodes: string[]; batch: number; stopOnFailure?: boolean; comment: string; batchTimeout: number; deploy?: boolean; obj: string[]; type?: string;
    }) => {
      // Bad canary flags are refused before anything is uploaded or started.
      const canary = canaryOptions(opts);
      const client = new RegistryClient(opts);
      try {
        const res = await publish(client, {
          name, file, version: opts.version, nodes: opts.nodes, batch: opts.batch, stopOnFailure: opts.stopOnFailure, comment: opts.comment,
          batchTimeoutS: opts.batchTimeout, deploy: opts.deploy, objs: opts.obj, type: opts.type, canary,
        });
        if (!res.ok) process.exitCode = 1;
      } finally {
        client.close();
      }
    });
}

export function registerRollback(program: Command): void {
  withClientOptions(program
    .command("rollback")
    .description("roll a publish task back: each of its instances to the version it ran before; follows the new task")
    .argument("<task-id>", "id of the publish task (printed by `sgrid publish`)"))
    .action(async (id: string, opts: ClientFlags) => {
      const client = new RegistryClient(opts);
      try {
        const res = await rollback(client, int("task id")(id));
        if (!res.ok) process.exitCode = 1;
      } finally {
        client.close();
      }
    });
}
