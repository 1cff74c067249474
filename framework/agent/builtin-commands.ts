/**
 * The built-in admin commands every servant answers:
 *
 * | command | reply |
 * |---|---|
 * | `sgrid.help` | every command with its help line |
 * | `sgrid.viewstatus` | per-method statistics of servants and proxies, calls in flight, uptime (JSON) |
 * | `sgrid.viewversion` | release version (SGRID_VERSION), framework and Node versions, config files in use (JSON) |
 * | `sgrid.setloglevel <level>` | sets the level of every logger of the process |
 * | `sgrid.loadconfig <file>` | fetches the file again; the app's `config` emits `change` when its version moved |
 * | `sgrid.connections` | incoming connections, outgoing channels, Obj resolution state (JSON) |
 */
import { getLogLevel, setLogLevel } from "../logger";
import type { ConfigLoader } from "../config/config-loader";
import { clientStats, serverStats } from "../stats";
import type { CommandRegistry } from "./commands";
import { frameworkVersion } from "./version";

/** What the built-ins read from the application. */
export interface AdminHost {
  readonly app: string | undefined;
  readonly server: string | undefined;
  /** SGRID_VERSION: the release being run. */
  readonly release: string | undefined;
  readonly config: ConfigLoader;
  inflight(): number;
  adapters(): ReadonlyArray<{ obj: string; endpoint: { host: string; port: number; protocol: string } }>;
  connections(): unknown;
}

const startedAt = Date.now();

export function registerBuiltinCommands(registry: CommandRegistry, host: AdminHost): void {
  registry.register("sgrid.help", () => registry.list().map((c) => `${c.name}${c.help ? `  ${c.help}` : ""}`).join("\n"), "this list", true);

  registry.register("sgrid.viewstatus", () => ({
    app: host.app, server: host.server, pid: process.pid,
    uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
    inflight: host.inflight(),
    logLevel: getLogLevel(),
    adapters: host.adapters().map((a) => ({ obj: a.obj, protocol: a.endpoint.protocol, address: `${a.endpoint.host}:${a.endpoint.port}` })),
    servants: serverStats.toJSON(),
    proxies: clientStats.toJSON(),
  }), "per-method call statistics (servants and proxies)", true);

  registry.register("sgrid.viewversion", () => ({
    app: host.app, server: host.server,
    release: host.release ?? "",
    framework: frameworkVersion(),
    node: process.version,
    configs: host.config.files(),
  }), "release, framework and config versions", true);

  registry.register("sgrid.setloglevel", (args) => {
    const level = args.trim();
    if (!level) throw new Error(`needs a level (fatal, error, warn, info, debug, trace, silent); now ${getLogLevel()}`);
    const before = getLogLevel();
    setLogLevel(level);
    return `log level ${before} -> ${getLogLevel()}`;
  }, "<level>: change the log level of every logger", true);

  registry.register("sgrid.loadconfig", async (args) => {
    const file = args.trim();
    if (!file) throw new Error("needs a config file name");
    const { changed, previous, current } = await host.config.reload(file);
    const from = previous ? previous.version || "(unversioned)" : "(not loaded before)";
    return changed ? `${file}: ${from} -> ${current.version} (${current.source})` : `${file}: ${current.version} (unchanged)`;
  }, "<file>: fetch a config file again and apply it", true);

  registry.register("sgrid.connections", () => host.connections(), "incoming connections, outgoing channels, Obj resolution", true);
}
