/**
 * `sgrid gateway`: one gRPC entry point that forwards any call to the Obj
 * serving its service (gateway/). Runs alone, or deployed as an ordinary
 * Sgrid server: its address is then its `GatewayObj` adapter (SGRID_ADAPTERS,
 * or SGRID_TARGET_HOST/PORT) and its routes `gateway.yaml` from the config
 * center. Prints one line on stdout once serving:
 * `sgrid gateway serving gRPC on <host>:<port> (registry <endpoints>)`.
 * SIGHUP reloads the routes; SIGTERM / SIGINT stop and exit 0. A start
 * failure prints one line and exits 1.
 */
import type { Command } from "commander";
import { ConfigError, getLogger } from "sgridnext";
import { Gateway, GATEWAY_DEFAULTS } from "../gateway/gateway";

interface GatewayFlags {
  listen?: string;
  registry?: string;
  routes?: string;
  config?: string;
  routesPoll?: string;
  http?: string;
}

/** The address the agent gave this instance, when deployed as a Sgrid server. */
function deployedAddress(env: NodeJS.ProcessEnv): string | undefined {
  const raw = env.SGRID_ADAPTERS;
  if (raw) {
    let parsed: Record<string, string | string[]>;
    try { parsed = JSON.parse(raw) as Record<string, string | string[]>; } catch (err) {
      throw new ConfigError(`SGRID_ADAPTERS is not valid JSON: ${(err as Error).message}`);
    }
    const key = Object.keys(parsed).find((k) => k === "GatewayObj" || k.endsWith(".GatewayObj"));
    const v = key === undefined ? undefined : parsed[key];
    const first = Array.isArray(v) ? v[0] : v;
    if (first) return first.replace(/^grpc:\/\//, "");
  }
  if (env.SGRID_TARGET_PORT) return `${env.SGRID_TARGET_HOST ?? "0.0.0.0"}:${env.SGRID_TARGET_PORT}`;
  return undefined;
}

export function registerGateway(program: Command): void {
  program
    .command("gateway")
    .description("run a gRPC gateway: any call on its port goes to the Obj that serves the call's service (found through the registry)")
    .option("--listen <host:port>", `gRPC address [SGRID_GATEWAY_LISTEN] (default: the GatewayObj adapter when deployed, else ${GATEWAY_DEFAULTS.listen})`)
    .option("--http <host:port>", "also serve HTTP on this address: POST /pkg.Service/Method with JSON or gRPC-Web, GET /metrics [SGRID_GATEWAY_HTTP] (default: none)")
    .option("--registry <host:port,...>", "registry endpoints [SGRID_REGISTRY]; without one only the routes file's fixed Objs are served")
    .option("--routes <file>", "a local routes file (YAML/JSON): exposed services, auth, limits")
    .option("--config <name>", "the routes as a config-center file of this server (default when deployed: gateway.yaml)")
    .option("--routes-poll <ms>", `how often the config-center routes are read again, ms; 0: only on SIGHUP (default ${GATEWAY_DEFAULTS.routesPollMs})`)
    .action(async (flags: GatewayFlags) => {
      const env = process.env;
      const registry = flags.registry ?? env.SGRID_REGISTRY;
      const deployed = env.SGRID_APP !== undefined && env.SGRID_SERVER !== undefined;
      const poll = flags.routesPoll === undefined ? undefined : Number(flags.routesPoll);
      if (poll !== undefined && !(Number.isInteger(poll) && poll >= 0)) throw new ConfigError(`--routes-poll must be a whole number of ms >= 0, got "${flags.routesPoll}"`);
      const gateway = new Gateway({
        listen: flags.listen ?? env.SGRID_GATEWAY_LISTEN ?? deployedAddress(env) ?? GATEWAY_DEFAULTS.listen,
        registry,
        routesFile: flags.routes,
        configFile: flags.config ?? (deployed && registry && !flags.routes ? "gateway.yaml" : undefined),
        routesPollMs: poll,
        httpListen: flags.http ?? env.SGRID_GATEWAY_HTTP,
      });
      let port: number;
      try {
        port = await gateway.start();
      } catch (err) {
        await gateway.stop(0);
        throw err;
      }
      const host = (flags.listen ?? env.SGRID_GATEWAY_LISTEN ?? deployedAddress(env) ?? GATEWAY_DEFAULTS.listen).replace(/:\d+$/, "");
      process.stdout.write(`sgrid gateway serving gRPC on ${host}:${port} (registry ${registry ?? "none"})\n`);
      const httpListen = flags.http ?? env.SGRID_GATEWAY_HTTP;
      if (httpListen) process.stdout.write(`sgrid gateway serving HTTP on ${httpListen.replace(/:\d+$/, "")}:${gateway.boundHttpPort} (JSON, gRPC-Web, /metrics)\n`);
      const log = getLogger("gateway");
      process.on("SIGHUP", () => {
        gateway.reloadRoutes().then(
          (r) => log.info(r, "routes reloaded on SIGHUP"),
          (err: unknown) => log.warn({ err: (err as Error).message }, "routes not reloaded; the routes in use stay"),
        );
      });
      let stopping = false;
      const onSignal = (signal: NodeJS.Signals): void => {
        if (stopping) return;
        stopping = true;
        log.info({ signal }, "stopping on signal");
        gateway.stop().then(() => process.exit(0), () => process.exit(1));
      };
      process.on("SIGTERM", onSignal);
      process.on("SIGINT", onSignal);
    });
}
