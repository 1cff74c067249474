/**
 * `sgrid config list|get|set|history|push|rollback`: layered config files
 * through the registry.
 *
 * Scope flags pick the level: `--app A` = application level, `--app A
 * --server S` = server level, `--app A --server S --node N` = instance level.
 * `get --merged` shows what an instance loads (application < server <
 * instance merged, needs all three).
 *
 * Reads (`get`, `history`) use the Config API, open unless the registry has a
 * query token (then set SGRID_QUERY_TOKEN); writes (`set`, `push`,
 * `rollback`) and `list` use the Admin API with a login (see client.ts).
 *
 * `set` reads the content from `--from <file>`, or from stdin when it is not
 * a terminal (`sgrid config set app.json --app Demo < app.json`); the content
 * is never echoed. `push` tells every instance of the scope that sees the file
 * to reload it; exit code 1 when any instance did not confirm.
 */
import * as fs from "node:fs";
import type { Command } from "commander";
import { ConfigError, InvalidArgumentError } from "sgridnext";
import type { ConfigScope, ConfigVersion } from "sgridnext/gen/sgrid/registry/v1/config";
import { RegistryClient, withClientOptions, type ClientFlags } from "./client";

export interface ScopeFlags {
  app?: string;
  server?: string;
  node?: string;
}

/** The most specific level the flags name. Throws ConfigError for an incomplete scope. */
export function scopeOf(flags: ScopeFlags): ConfigScope {
  if (!flags.app) throw new ConfigError("--app is required (add --server for the server level, and --node for one instance)");
  if (flags.node && !flags.server) throw new ConfigError("--node needs --server (instance level: --app, --server and --node)");
  if (flags.node) return { level: "instance", application: flags.app, server: flags.server!, node: flags.node };
  if (flags.server) return { level: "server", application: flags.app, server: flags.server, node: "" };
  return { level: "application", application: flags.app, server: "", node: "" };
}

export function describeScope(s: ConfigScope): string {
  return s.level === "instance" ? `${s.application}.${s.server}@${s.node}` : s.level === "server" ? `${s.application}.${s.server}` : s.application;
}

function when(ms: number): string {
  return ms > 0 ? new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : "-";
}

/** Content for `set`: --from file, else stdin when piped. */
async function readContent(from: string | undefined): Promise<string> {
  if (from !== undefined) {
    try {
      return fs.readFileSync(from, "utf8");
    } catch (err) {
      throw new ConfigError(`cannot read --from ${from}: ${(err as Error).message}`);
    }
  }
  if (process.stdin.isTTY) throw new ConfigError("no content: pass --from <file>, or pipe the content on stdin");
  const parts: Buffer[] = [];
  for await (const chunk of process.stdin) parts.push(chunk as Buffer);
  return Buffer.concat(parts).toString("utf8");
}

function scopeOptions(cmd: Command): Command {
  return withClientOptions(cmd
    .option("--app <name>", "application (application level)")
    .option("--server <name>", "server (server level)")
    .option("--node <name>", "node (instance level, with --server)"));
}

type Flags = ClientFlags & ScopeFlags;

async function run(flags: ClientFlags, fn: (client: RegistryClient) => Promise<void>): Promise<void> {
  const client = new RegistryClient(flags);
  try {
    await fn(client);
  } finally {
    client.close();
  }
}

const out = (s: string) => process.stdout.write(s);

export function registerConfig(program: Command): void {
  const config = program.command("config").description("config files in the registry: list, get, set, history, push, rollback");

  scopeOptions(config.command("list").description("config files at one level"))
    .action((flags: Flags) => run(flags, async (client) => {
      const scope = scopeOf(flags);
      const reply = await client.call((metadata) => client.admin.listConfigFiles({ scope }, { metadata }));
      if (reply.files.length === 0) out(`no config files at ${scope.level} ${describeScope(scope)}\n`);
      for (const f of reply.files) out(`${f.fileName}\tversion ${f.currentVersion}\t${when(f.updatedAt)}\n`);
    }));

  scopeOptions(config.command("get").description("print a config file (one level, or --merged as an instance loads it)"))
    .argument("<file>", "file name, e.g. HelloServer.json")
    .option("--version <n>", "a past version (default: current)")
    .option("--merged", "the merged view an instance loads (needs --app, --server, --node)")
    .action((file: string, flags: Flags & { version?: string; merged?: boolean }) => run(flags, async (client) => {
      const metadata = client.queryMetadata();
      if (flags.merged) {
        if (!flags.app || !flags.server || !flags.node) throw new ConfigError("--merged needs --app, --server and --node");
        if (flags.version !== undefined) throw new ConfigError("--merged shows the current versions only; drop --version");
        const reply = await client.config.load({ instance: { application: flags.app, server: flags.server, node: flags.node }, fileName: file }, { metadata });
        out(reply.content);
        process.stderr.write(`(${file} for ${flags.app}.${flags.server}@${flags.node}: ${reply.layers.map((l) => `${l.scope?.level} v${l.version}`).join(" < ") || "no layers"})\n`);
        return;
      }
      const version = flags.version === undefined ? 0 : Number(flags.version);
      if (!Number.isInteger(version) || version < 1 && flags.version !== undefined) throw new ConfigError(`--version must be a version number >= 1, got ${JSON.stringify(flags.version)}`);
      const v = await client.config.getVersion({ scope: scopeOf(flags), fileName: file, version }, { metadata });
      out(v.content);
    }));

  scopeOptions(config.command("set").description("store a new version of a config file (content from --from or stdin)"))
    .argument("<file>", "file name, e.g. HelloServer.json")
    .option("--from <path>", "read the content from this file (default: stdin)")
    .option("--comment <text>", "why it changed", "")
    .action((file: string, flags: Flags & { from?: string; comment: string }) => run(flags, async (client) => {
      const scope = scopeOf(flags);
      const content = await readContent(flags.from);
      const v = await client.call((metadata) => client.admin.putConfig({ scope, fileName: file, content, comment: flags.comment }, { metadata }));
      out(`${file} at ${scope.level} ${describeScope(scope)}: version ${v.version}\n`);
    }));

  scopeOptions(config.command("history").description("versions of a config file at one level, newest first"))
    .argument("<file>", "file name")
    .option("--limit <n>", "how many (default: the registry's, 100)")
    .action((file: string, flags: Flags & { limit?: string }) => run(flags, async (client) => {
      const limit = flags.limit === undefined ? 0 : Number(flags.limit);
      if (!Number.isInteger(limit) || limit < 0) throw new ConfigError(`--limit must be a whole number, got ${JSON.stringify(flags.limit)}`);
      const reply = await client.config.history({ scope: scopeOf(flags), fileName: file, limit }, { metadata: client.queryMetadata() });
      for (const v of reply.versions) out(`${historyLine(v)}\n`);
    }));

  scopeOptions(config.command("rollback").description("make an old version current again (as a new version)"))
    .argument("<file>", "file name")
    .requiredOption("--to <n>", "version to return to")
    .option("--comment <text>", "why", "")
    .action((file: string, flags: Flags & { to: string; comment: string }) => run(flags, async (client) => {
      const scope = scopeOf(flags);
      const version = Number(flags.to);
      if (!Number.isInteger(version) || version < 1) throw new ConfigError(`--to must be a version number >= 1, got ${JSON.stringify(flags.to)}`);
      const v = await client.call((metadata) => client.admin.rollbackConfig({ scope, fileName: file, version, comment: flags.comment }, { metadata }));
      out(`${file} at ${scope.level} ${describeScope(scope)}: version ${v.version} (content of version ${version})\n`);
    }));

  scopeOptions(config.command("push").description("tell running instances to reload a config file"))
    .argument("<file>", "file name")
    .action((file: string, flags: Flags) => run(flags, async (client) => {
      if (!flags.app) throw new ConfigError("--app is required (with --server and --node to narrow the instances)");
      const list = await client.call((metadata) => client.admin.listInstances({ application: flags.app, server: flags.server ?? "", node: flags.node ?? "" }, { metadata }));
      if (list.instances.length === 0) throw new InvalidArgumentError(`no instances of ${[flags.app, flags.server].filter(Boolean).join(".")}${flags.node ? ` on ${flags.node}` : ""}`);
      const reply = await client.call((metadata) => client.admin.pushConfig({ fileName: file, instanceIds: list.instances.map((i) => i.id) }, { metadata }));
      const byId = new Map(list.instances.map((i) => [i.id, i]));
      let failed = 0;
      for (const r of reply.results) {
        const i = byId.get(r.instanceId);
        const where = i ? `${i.application}.${i.server}@${i.node} #${i.id}` : `#${r.instanceId}`;
        if (!r.ok) failed++;
        out(`${where}: ${r.ok ? "ok" : "FAILED"}${r.message ? ` (${r.message})` : ""}\n`);
      }
      if (failed > 0) process.exitCode = 1;
    }));
}

function historyLine(v: ConfigVersion): string {
  const rb = v.rolledBackFrom ? ` (copy of v${v.rolledBackFrom})` : "";
  return `v${v.version}\t${when(v.createdAt)}\t${v.author || "-"}\t${v.comment || ""}${rb}`;
}
