/**
 * Placing servers and reading where they run:
 *
 * - `sgrid deploy <App.Server> --place "<query>" --count N --obj <Obj>`:
 *   the registry keeps N instances on nodes the query matches (tags and
 *   facts: `tags:ssd AND cpus>4`), as nodes join, leave or stay offline past
 *   the grace period. `--nodes a,b` instead deploys once on those nodes
 *   (Admin.Deploy, as `sgrid publish --deploy` does). Prints the instances
 *   made and the placement's status with the reasons instances are
 *   missing; exit 1 unless every instance is placed (the placement stays
 *   stored either way and is placed when nodes match). `--unplace` ends a
 *   placement, its instances stay.
 * - `sgrid nodes`: nodes with state, facts and tags.
 * - `sgrid servers [App]`: servers with their instance count and placement.
 * - `sgrid tag <node> [key[=value]...] [--unset key]`: sets the tags people
 *   give a node (they win over the agent's `--tag` for the same key).
 */
import type { Command } from "commander";
import { InvalidArgumentError } from "sgridnext";
import { formatBytes } from "sgridnext-tools";
import type { NodeInfo, PlacementInfo } from "sgridnext/gen/sgrid/registry/v1/admin";
import { RegistryClient, withClientOptions, type ClientFlags } from "./client";
import { int, list, splitName } from "./publish";

export interface DeployOptions {
  name: string;
  nodes?: string[];
  place?: string;
  count?: number;
  /** `Obj` or `Obj:port` (port 0 / absent: assigned per node), optionally `:sgrid` for the native transport. */
  objs: string[];
  type?: string;
  version?: number;
  start?: boolean;
  env?: string[];
  out?: (line: string) => void;
}

/** `Obj[:port][:grpc|sgrid]` -> an adapter. */
export function parseObjFlag(text: string): { obj: string; port: number; protocol: string } {
  const [obj, ...rest] = text.split(":");
  let port = 0;
  let protocol = "grpc";
  for (const r of rest) {
    if (/^\d+$/.test(r)) port = Number(r);
    else if (r === "grpc" || r === "sgrid") protocol = r;
    else throw new InvalidArgumentError(`--obj ${JSON.stringify(text)}: expected Obj, Obj:port or Obj:port:sgrid`);
  }
  if (!obj || port > 65535) throw new InvalidArgumentError(`--obj ${JSON.stringify(text)}: expected Obj, Obj:port or Obj:port:sgrid`);
  return { obj, port, protocol };
}

/** One line per fact of a placement: `placed 2 of 3 (tags:ssd): reason; reason`. */
export function describePlacement(p: PlacementInfo): string[] {
  const head = `placement ${JSON.stringify(p.query)}, count ${p.count}: ${p.placed} placed (${p.state.replace("_", " ")}); matching nodes: ${p.matching.join(", ") || "none"}`;
  return [head, ...p.reasons.map((r) => `  why: ${r}`)];
}

/** Deploys (by nodes or by placement); `ok` when every asked-for instance is placed. */
export async function deployServer(client: RegistryClient, o: DeployOptions): Promise<{ ok: boolean }> {
  const out = o.out ?? ((l: string) => process.stdout.write(`${l}\n`));
  const { application, server } = splitName(o.name);
  const nodes = [...new Set((o.nodes ?? []).map((n) => n.trim()).filter(Boolean))];
  if ((nodes.length > 0) === (o.place !== undefined)) throw new InvalidArgumentError("give either --nodes a,b or --place \"<query>\" (with --count)");
  if (o.count !== undefined && o.place === undefined) throw new InvalidArgumentError("--count goes with --place");
  if (o.objs.length === 0) throw new InvalidArgumentError("give at least one --obj <Obj> (the name proxies call)");
  const env: Record<string, string> = {};
  for (const e of o.env ?? []) {
    const eq = e.indexOf("=");
    if (eq < 1) throw new InvalidArgumentError(`--env ${JSON.stringify(e)}: expected NAME=value`);
    env[e.slice(0, eq)] = e.slice(eq + 1);
  }
  const reply = await client.call((metadata) => client.admin.deploy({
    application, server, type: o.type ?? "", nodes, adapters: o.objs.map(parseObjFlag), env,
    version: o.version ?? 0, start: o.start ?? false, place: o.place ?? "", count: o.count ?? 0,
  }, { metadata }));
  for (const i of reply.instances) {
    out(`instance ${i.id} of ${application}.${server} on ${i.node}: ${i.adapters.map((a) => `${a.obj} ${a.host}:${a.port}`).join(", ")} (desired ${i.desiredState})`);
  }
  const p = reply.server?.placement;
  if (!p) return { ok: true };
  for (const l of describePlacement(p)) out(l);
  return { ok: p.state === "placed" };
}

function nodeLine(n: NodeInfo): string {
  let facts: Record<string, any> = {};
  try {
    facts = JSON.parse(n.hostInfoJson || "{}") as Record<string, any>;
  } catch {
    // shown without facts
  }
  const cpus = facts.cpuAvailable ?? facts.cpuCount ?? "?";
  const mem = facts.memory?.totalBytes ? formatBytes(facts.memory.totalBytes) : "?";
  return [n.name, n.online ? "online" : "offline", n.address || "-", `${cpus} cpus`, mem, `${n.instanceCount} inst`, n.tags.join(",") || "-"].join("\t");
}

export function registerDeploy(program: Command): void {
  withClientOptions(program
    .command("deploy")
    .description("place a server: on --nodes once, or by --place \"<query>\" --count N kept by the registry as nodes come and go")
    .argument("<App.Server>", "server, e.g. Demo.HelloServer")
    .option("--place <query>", "placement query over node tags and facts, e.g. \"tags:ssd AND cpus>4\" (README, Placement)")
    .option("--count <n>", "with --place: instances to keep (default 1)", int("--count"))
    .option("--nodes <a,b>", "deploy once on these nodes instead (repeatable or comma-separated)", list, [] as string[])
    .option("--obj <Obj[:port]>", "an adapter: Obj name, port (0 or none: assigned per node), :sgrid for the native transport (repeatable)", list, [] as string[])
    .option("--type <type>", "node | java | binary (needed when the server does not exist)")
    .option("--version <n>", "patch version of the new instances (default: the server's default)", int("--version"))
    .option("--start", "start the instances at once (needs a version)")
    .option("--env <NAME=value>", "environment of the instances (repeatable)", (v: string, prev: string[] = []) => [...prev, v])
    .option("--unplace", "end the server's placement; its instances stay, as if deployed by hand"))
    .action(async (name: string, opts: ClientFlags & { place?: string; count?: number; nodes: string[]; obj: string[]; type?: string; version?: number; start?: boolean; env?: string[]; unplace?: boolean }) => {
      const client = new RegistryClient(opts);
      try {
        if (opts.unplace) {
          const { application, server } = splitName(name);
          await client.call((metadata) => client.admin.removePlacement({ application, server }, { metadata }));
          process.stdout.write(`placement of ${application}.${server} removed; its instances stay\n`);
          return;
        }
        const res = await deployServer(client, {
          name, nodes: opts.nodes, objs: opts.obj, env: opts.env ?? [],
          ...(opts.place !== undefined ? { place: opts.place } : {}), ...(opts.count !== undefined ? { count: opts.count } : {}),
          ...(opts.type ? { type: opts.type } : {}), ...(opts.version !== undefined ? { version: opts.version } : {}), start: opts.start ?? false,
        });
        if (!res.ok) process.exitCode = 1;
      } finally {
        client.close();
      }
    });
}

export function registerNodes(program: Command): void {
  withClientOptions(program
    .command("nodes")
    .description("list nodes: state, address, CPUs, memory, instances and tags"))
    .action(async (opts: ClientFlags) => {
      const client = new RegistryClient(opts);
      try {
        const { nodes } = await client.call((metadata) => client.admin.listNodes({}, { metadata }));
        process.stdout.write(["NODE", "STATE", "ADDRESS", "CPUS", "MEMORY", "INSTANCES", "TAGS"].join("\t") + "\n");
        for (const n of nodes) process.stdout.write(`${nodeLine(n)}\n`);
      } finally {
        client.close();
      }
    });
}

export function registerServers(program: Command): void {
  withClientOptions(program
    .command("servers")
    .description("list servers with their instance count and placement (and why instances could not be placed)")
    .argument("[App]", "only this application"))
    .action(async (app: string | undefined, opts: ClientFlags) => {
      const client = new RegistryClient(opts);
      try {
        const { servers } = await client.call((metadata) => client.admin.listServers({ application: app ?? "" }, { metadata }));
        for (const s of servers) {
          process.stdout.write(`${s.application}.${s.name}\t${s.type}\tv${s.defaultVersion || "-"}\t${s.instanceCount} instance(s)\n`);
          if (s.placement) for (const l of describePlacement(s.placement)) process.stdout.write(`  ${l}\n`);
        }
      } finally {
        client.close();
      }
    });
}

export function registerTag(program: Command): void {
  withClientOptions(program
    .command("tag")
    .description("set the tags people give a node (they win over the agent's --tag for the same key); no tags clears them")
    .argument("<node>", "node name")
    .argument("[tags...]", "key or key=value")
    .option("--unset <key>", "hide the agent's tag of this key (repeatable)", (v: string, prev: string[] = []) => [...prev, v]))
    .action(async (node: string, tags: string[], opts: ClientFlags & { unset?: string[] }) => {
      const client = new RegistryClient(opts);
      try {
        const n = await client.call((metadata) => client.admin.setNodeTags({ node, tags, unset: opts.unset ?? [] }, { metadata }));
        process.stdout.write(`${n.name}: tags ${n.tags.join(",") || "(none)"} (agent: ${n.agentTags.join(",") || "none"}; people: ${[...n.adminTags, ...n.adminUnset.map((k) => `-${k}`)].join(",") || "none"})\n`);
      } finally {
        client.close();
      }
    });
}
