#!/usr/bin/env node
/**
 * The `sgrid` command line. Each sub-command reads flags, then `SGRID_*`
 * env, then an optional config file, in that order of precedence.
 *
 * Sub-commands are loaded lazily: `sgrid <command> ...` loads that one
 * command's module (so `sgrid gen`, `sgrid create` and `sgrid --help` never
 * load knex, koa or SQLite); `sgrid --help` lists them from the table below
 * without loading any. With SGRID_AGENT_BUNDLE=1 `sgrid node` runs from the agent's bundle, one file
 * with what it loads (cli/agent-bundle.ts); so this module loads commander
 * and the rest only once it is not handing over to the bundle.
 */
import type { Command } from "commander";

// `sgrid node`: the agent's V8 settings before anything else runs (cli/agent-v8.ts). Even loading commander is
// enough for V8 to optimize Node's path normalization, and with it to bring its optimizing compiler into memory.
if (require.main === module && requestedCommand(process.argv) === "node") (require("./agent-v8") as typeof import("./agent-v8")).tuneAgentV8();

const pkg = require("../../package.json") as { version: string };

type Register = (program: Command) => void;

interface CommandEntry {
  /** How the command is listed in `sgrid --help`. */
  term: string;
  description: string;
  /** Loads the module and returns its register functions (one module may define several commands). */
  load: () => Register[];
}

/** Every sub-command, in help order. */
export const COMMANDS: Readonly<Record<string, CommandEntry>> = {
  gen: {
    term: "gen [options] <inputs...>", description: "generate typed servants, proxies and messages from .proto files",
    load: () => [require("sgridnext-tools/commands").registerGen],
  },
  node: {
    term: "node [options]", description: "run the node agent: install and supervise the instances the registry places on this machine",
    // The agent's V8 settings first: they matter while its modules load (cli/agent-v8.ts; applied at the top of this
    // file already when run as `sgrid node`; again here, at no cost, for main() called by a program).
    load: () => {
      (require("./agent-v8") as typeof import("./agent-v8")).tuneAgentV8();
      return [require("./node").registerNode];
    },
  },
  demo: {
    term: "demo [options]", description: "serve a demo Hello servant and call it through a generated proxy",
    load: () => [require("./demo").registerDemo],
  },
  create: {
    term: "create [options] <App.Server>", description: "scaffold a new service project from a template",
    load: () => [require("./create").registerCreate],
  },
  package: {
    term: "package [options]", description: "build <App>.<Server>-<version>.tgz (manifest + program) for upload",
    load: () => [require("sgridnext-tools/commands").registerPackage],
  },
  publish: {
    term: "publish [options] <App.Server> [file.tgz]", description: "upload a package and publish it to a server's instances, following the task to its end",
    load: () => [require("./publish").registerPublish],
  },
  rollback: {
    term: "rollback [options] <task-id>", description: "roll a publish task back: each of its instances to the version it ran before; follows the new task",
    load: () => [require("./publish").registerRollback],
  },
  deploy: {
    term: "deploy [options] <App.Server>", description: "place a server: on --nodes once, or by --place \"<query>\" --count N, kept by the registry as nodes come and go",
    load: () => [require("./deploy").registerDeploy],
  },
  servers: {
    term: "servers [options] [App]", description: "list servers with their instance count and placement (and why instances could not be placed)",
    load: () => [require("./deploy").registerServers],
  },
  nodes: {
    term: "nodes [options]", description: "list nodes: state, address, CPUs, memory, instances and tags",
    load: () => [require("./deploy").registerNodes],
  },
  tag: {
    term: "tag [options] <node> [tags...]", description: "set the tags people give a node (they win over the agent's --tag for the same key)",
    load: () => [require("./deploy").registerTag],
  },
  canary: {
    term: "canary", description: "decide a canary publish: promote or rollback <task-id>",
    load: () => [require("./canary-decide").registerCanary],
  },
  restart: {
    term: "restart [options] <App.Server>", description: "restart a server's instances batch by batch, following the task to its end",
    load: () => [require("./restart").registerRestart],
  },
  config: {
    term: "config", description: "config files in the registry: list, get, set, history, push, rollback",
    load: () => [require("./config").registerConfig],
  },
  login: {
    term: "login [options]", description: "log in to the registry and cache the token in ~/.sgrid/tokens.json (0600)",
    load: () => [require("./client").registerLogin],
  },
  logout: {
    term: "logout [options]", description: "forget the cached token and end its session on the registry",
    load: () => [require("./client").registerLogout],
  },
  registry: {
    term: "registry [options]", description: "run a registry: the database owner that agents, proxies and the admin app talk to",
    load: () => [require("./registry").registerRegistry],
  },
  admin: {
    term: "admin [options]", description: "run the admin web app (publish, patch versions, config, nodes, tasks) in front of a registry",
    load: () => [require("./admin").registerAdmin],
  },
  gateway: {
    term: "gateway [options]", description: "run a gRPC gateway: any call on its port goes to the Obj that serves the call's service",
    load: () => [require("./gateway").registerGateway],
  },
  up: {
    term: "up [options]", description: "run an all-in-one local cluster: registry (SQLite), one node agent and the admin app, data in one folder",
    load: () => [require("./up").registerUp],
  },
};

/** The sub-command argv names (the first argument that is not an option; after `help`, the one it asks about). */
function requestedCommand(argv: readonly string[]): string | undefined {
  const args = argv.slice(2);
  const first = args.find((a) => !a.startsWith("-"));
  if (first === "help") return args[args.indexOf("help") + 1];
  return first;
}

/**
 * The program, with `only` (a sub-command name) loaded for real and the
 * others as help entries; every command loaded when `only` is undefined.
 */
export function buildProgram(only?: string): Command {
  const program = new (require("commander") as typeof import("commander")).Command();
  program.name("sgrid").description("Sgrid: run gRPC services on a fleet of machines").version(pkg.version);
  program.exitOverride();
  // Program options (-V, -h) only before the sub-command, so sub-commands may have their own --version (sgrid package).
  program.enablePositionalOptions();
  const loaded = new Set<Register>();
  const stubTerms = new Map<string, string>();
  for (const [name, entry] of Object.entries(COMMANDS)) {
    if (only === undefined || only === name) {
      for (const register of entry.load()) {
        if (loaded.has(register)) continue;
        loaded.add(register);
        register(program);
      }
    } else if (!program.commands.some((c) => c.name() === name)) {
      program.command(name).description(entry.description).allowUnknownOption().allowExcessArguments();
      stubTerms.set(name, entry.term);
    }
  }
  program.configureHelp({ subcommandTerm: (cmd) => stubTerms.get(cmd.name()) ?? defaultTerm(cmd) });
  return program;
}

function defaultTerm(cmd: Command): string {
  const args = cmd.registeredArguments.map((a) => (a.required ? `<${a.name()}${a.variadic ? "..." : ""}>` : `[${a.name()}${a.variadic ? "..." : ""}]`)).join(" ");
  return `${cmd.name()}${cmd.options.length > 0 ? " [options]" : ""}${args ? ` ${args}` : ""}`;
}

/**
 * grpc-js sets the TLS server name to the host even when it is an IP address
 * (`grpcs://10.0.0.5:9500`), and Node then prints DEP0123 on every command.
 * The certificate is still checked against the IP (its subjectAltName); the
 * warning says nothing an operator can act on, so the command line drops
 * that one warning and passes every other on.
 */
function quietIpServerNameWarning(): void {
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const opts = rest[0];
    const code = typeof opts === "object" && opts !== null ? (opts as { code?: string }).code : rest[1];
    if (code === "DEP0123") return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}

/**
 * Runs the command line on `argv` (process.argv's form: node, script, args):
 * what `sgrid` does. For programs that are a `sgrid` command, e.g. the
 * `main.js` of a package deploying the gateway:
 * `require("sgridnext-platform/dist/cli/main.js").main([process.argv[0], "sgrid", "gateway"])`.
 */
export function main(argv: readonly string[] = process.argv): Promise<void> {
  quietIpServerNameWarning();
  const name = requestedCommand(argv);
  const { runCommand } = require("sgridnext-tools/commands") as typeof import("sgridnext-tools/commands");
  return runCommand(buildProgram(name !== undefined && name in COMMANDS ? name : "-"), [...argv]);
}

if (require.main === module) {
  // `sgrid node` from its bundle when asked and current (cli/agent-bundle.ts); the bundle holds this module too, where this branch does not run.
  const bundle = requestedCommand(process.argv) === "node" ? (require("./agent-bundle") as typeof import("./agent-bundle")).agentBundle() : undefined;
  void (bundle === undefined ? main() : (require(bundle) as { main: typeof main }).main());
}
