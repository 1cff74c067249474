/**
 * `sgrid node`: the node agent. Connects to the registry, installs and
 * supervises the instances placed on this machine, and keeps them running
 * when the registry (or the agent itself) goes away.
 *
 * Settings, highest precedence first: flags, then env, then the config
 * file (`--config`, YAML or JSON with the NodeAgentOptions keys), then
 * defaults:
 *
 * | flag | env | default |
 * |---|---|---|
 * | --registry host:port[,host:port] | SGRID_REGISTRY | (required); `grpcs://host:port` for a registry serving TLS; `sgrid://host:port` (`sgrids://` with TLS) for its native port |
 * | --tls-ca <file> | SGRID_TLS_CA | system roots: the CA that signed the registry's certificate (also passed to servants) |
 * | --name | SGRID_NODE_NAME | the host name |
 * | --data-dir | SGRID_DATA_DIR | ./sgrid-data/node (made absolute) |
 * | --token | SGRID_CLUSTER_TOKEN | none |
 * | --address | SGRID_NODE_ADDRESS | first non-internal IPv4, else 127.0.0.1 |
 * | --agent-listen | SGRID_AGENT_LISTEN | 127.0.0.1:0 (port picked once, then kept) |
 * | --cgroups auto/v2/v1/none | SGRID_CGROUPS | auto |
 * | --cgroup-group | SGRID_CGROUP_GROUP | sgrid |
 * | --tag key[=value] (repeatable) | SGRID_NODE_TAGS (comma-separated) | none; the config file's `tags` list when neither is given |
 *
 * Prefer the env (or a root-only config file) for the token: flags show in `ps`.
 * SIGTERM / SIGINT stop the agent and leave every servant running.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Command } from "commander";
import { ConfigError, parseTags } from "sgridnext";
import { NodeAgent, printSystemdUnit, type NodeAgentOptions, type DetectCgroupsOptions } from "../nodeagent";

export interface NodeCliFlags {
  registry?: string;
  tlsCa?: string;
  name?: string;
  dataDir?: string;
  token?: string;
  address?: string;
  agentListen?: string;
  cgroups?: string;
  cgroupGroup?: string;
  tag?: string[];
  config?: string;
  printSystemdUnit?: boolean;
  systemdExec?: string;
}

/** Default data directory, relative to the working directory. */
export const NODE_CLI_DEFAULTS = Object.freeze({ dataDir: "./sgrid-data/node", cgroups: "auto", cgroupGroup: "sgrid" });

function readConfigFile(file: string): Partial<NodeAgentOptions> & { cgroups?: unknown } {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = (require("yaml") as typeof import("yaml")).parse(text); // only with --config: the agent does not load the parser otherwise
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid YAML or JSON: ${(err as Error).message}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== "object" || Array.isArray(parsed)) throw new ConfigError(`config file ${file} must hold a mapping of option names to values`);
  return parsed as Partial<NodeAgentOptions>;
}

/**
 * Resolves flags > env > config file > defaults into NodeAgentOptions.
 * Throws ConfigError naming the setting that is missing or wrong.
 */
export function resolveNodeCliOptions(flags: NodeCliFlags, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): NodeAgentOptions {
  const file = flags.config ? readConfigFile(path.resolve(cwd, flags.config)) : {};
  const pick = (flag: string | undefined, envName: string): string | undefined => {
    if (flag !== undefined && flag !== "") return flag;
    const v = env[envName];
    return v !== undefined && v !== "" ? v : undefined;
  };
  const registryText = pick(flags.registry, "SGRID_REGISTRY");
  const registry = registryText !== undefined ? registryText.split(",").map((s) => s.trim()).filter(Boolean) : file.registry;
  if (!registry || registry.length === 0) throw new ConfigError("no registry given: pass --registry host:port[,host:port] (grpcs://host:port for TLS, sgrid://host:port for the registry's native port) or set SGRID_REGISTRY");
  const dataDir = path.resolve(cwd, pick(flags.dataDir, "SGRID_DATA_DIR") ?? file.dataDir ?? NODE_CLI_DEFAULTS.dataDir);
  const cgroupMode = pick(flags.cgroups, "SGRID_CGROUPS") ?? NODE_CLI_DEFAULTS.cgroups;
  if (!["auto", "v2", "v1", "none"].includes(cgroupMode)) throw new ConfigError(`--cgroups must be auto, v2, v1 or none, got ${cgroupMode}`);
  const fileCgroups = (typeof file.cgroups === "object" && file.cgroups !== null ? file.cgroups : {}) as DetectCgroupsOptions;
  const cgroups: DetectCgroupsOptions = {
    ...fileCgroups,
    groupName: pick(flags.cgroupGroup, "SGRID_CGROUP_GROUP") ?? fileCgroups.groupName ?? NODE_CLI_DEFAULTS.cgroupGroup,
  };
  if (cgroupMode !== "auto") cgroups.prefer = cgroupMode as "v2" | "v1" | "none";
  const options: NodeAgentOptions = {
    ...file,
    registry,
    name: pick(flags.name, "SGRID_NODE_NAME") ?? file.name ?? os.hostname(),
    dataDir,
    cgroups,
  };
  const token = pick(flags.token, "SGRID_CLUSTER_TOKEN") ?? file.token;
  if (token !== undefined) options.token = token;
  const address = pick(flags.address, "SGRID_NODE_ADDRESS") ?? file.address;
  if (address !== undefined) options.address = address;
  const tagsEnv = env.SGRID_NODE_TAGS;
  const tags = flags.tag && flags.tag.length > 0 ? flags.tag : tagsEnv ? tagsEnv.split(",").map((t) => t.trim()).filter(Boolean) : file.tags;
  if (tags !== undefined) {
    if (!Array.isArray(tags)) throw new ConfigError("tags in the config file must be a list (ssd, zone=a)");
    try {
      parseTags(tags);
    } catch (err) {
      throw new ConfigError(`invalid node tags: ${(err as Error).message}`);
    }
    options.tags = tags;
  }
  const agentListen = pick(flags.agentListen, "SGRID_AGENT_LISTEN") ?? file.agentListen;
  if (agentListen !== undefined) options.agentListen = agentListen;
  return options;
}

/** The systemd unit for this agent's settings (never the token: it would show in `ps`; put it in the EnvironmentFile). */
export function systemdUnitFor(flags: NodeCliFlags, env: NodeJS.ProcessEnv = process.env): string {
  const args: string[] = [];
  const registry = flags.registry ?? env.SGRID_REGISTRY;
  if (registry) args.push("--registry", registry);
  const tlsCa = flags.tlsCa ?? env.SGRID_TLS_CA;
  if (tlsCa) args.push("--tls-ca", path.resolve(tlsCa));
  const name = flags.name ?? env.SGRID_NODE_NAME;
  if (name) args.push("--name", name);
  if (flags.address) args.push("--address", flags.address);
  if (flags.agentListen) args.push("--agent-listen", flags.agentListen);
  for (const t of flags.tag ?? []) args.push("--tag", t);
  const dataDir = flags.dataDir ?? env.SGRID_DATA_DIR;
  return printSystemdUnit({
    args,
    ...(dataDir && path.isAbsolute(dataDir) ? { dataDir } : {}),
    ...(flags.systemdExec ? { execPath: flags.systemdExec } : {}),
  });
}

export function registerNode(program: Command): void {
  program
    .command("node")
    .description("run the node agent: install and supervise the instances the registry places on this machine")
    .option("--registry <endpoints>", "registry endpoints, host:port[,host:port] (env SGRID_REGISTRY)")
    .option("--tls-ca <file>", "PEM CA bundle that signed a TLS registry's certificate, for grpcs:// registries (env SGRID_TLS_CA; default: system roots)")
    .option("--name <name>", "this node's name (env SGRID_NODE_NAME; default: the host name)")
    .option("--data-dir <dir>", `data directory: servers/, cache/, state/ (env SGRID_DATA_DIR; default ${NODE_CLI_DEFAULTS.dataDir})`)
    .option("--token <token>", "cluster token (env SGRID_CLUSTER_TOKEN; prefer the env: flags show in ps)")
    .option("--address <host>", "address advertised for adapters (env SGRID_NODE_ADDRESS; default: first non-internal IPv4)")
    .option("--agent-listen <host:port>", "local servant channel (env SGRID_AGENT_LISTEN; default 127.0.0.1:0, port kept across restarts)")
    .option("--cgroups <mode>", "cgroup backend: auto, v2, v1 or none (env SGRID_CGROUPS; default auto)")
    .option("--cgroup-group <name>", "top-level cgroup folder of the instances (env SGRID_CGROUP_GROUP; default sgrid)")
    .option("--tag <key[=value]>", "a node tag placement queries match (tags:ssd), repeatable (env SGRID_NODE_TAGS, comma-separated); tags set in admin win for the same key", (v: string, prev: string[] = []) => [...prev, v])
    .option("--config <file>", "YAML or JSON file with further agent options (supervisor, logRotation, keepReleases, ...)")
    .option("--print-systemd-unit", "print a systemd unit for this agent (servants survive `systemctl stop`) and exit")
    .option("--systemd-exec <path>", "with --print-systemd-unit: absolute path of the sgrid executable (default /usr/local/bin/sgrid)")
    .action(async (flags: NodeCliFlags) => {
      if (flags.printSystemdUnit) {
        process.stdout.write(systemdUnitFor(flags));
        return;
      }
      // The CA is read where channels are made (framework/transport/tls-ca), and servants inherit it.
      if (flags.tlsCa) process.env.SGRID_TLS_CA = path.resolve(flags.tlsCa);
      const agent = new NodeAgent(resolveNodeCliOptions(flags));
      await agent.start();
      let lastRefusal = "";
      agent.session.on("refused", (reason) => {
        if (reason !== lastRefusal) process.stderr.write(`sgrid node: the registry refused this agent: ${reason}\n`);
        lastRefusal = reason;
      });
      let stopping = false;
      const stop = (signal: NodeJS.Signals) => {
        if (stopping) return;
        stopping = true;
        process.stderr.write(`sgrid node: ${signal}: stopping the agent; servants keep running\n`);
        agent.shutdown().then(() => process.exit(0), (err: unknown) => {
          process.stderr.write(`sgrid node: shutdown failed: ${(err as Error)?.message}\n`);
          process.exit(1);
        });
      };
      process.on("SIGTERM", stop);
      process.on("SIGINT", stop);
      process.stdout.write(`sgrid node: started node=${agent.options.name}${agent.options.tags.length ? ` tags=${agent.options.tags.join(",")}` : ""} agent=${agent.channel.address} cgroups=${agent.supervisor.cgroups.name} data-dir=${agent.options.dataDir} registry=${agent.options.registry.join(",")}\n`);
    });
}
