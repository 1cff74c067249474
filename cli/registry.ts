/**
 * `sgrid registry`: runs one registry process.
 *
 * Settings: flags, then `SGRID_*` environment (REGISTRY_ENV), then defaults
 * (REGISTRY_DEFAULTS). Prints one line on stdout once serving:
 * `sgrid registry serving on <host:port>[ and sgrid://<host:port>] (advertised <addr>, database <url without password>)`;
 * logs go to stderr. SIGTERM / SIGINT stop gracefully and exit 0. A start
 * failure (database unreachable, port in use, bad option) prints one line on
 * stderr naming the cause (a database URL without its password) and exits 1.
 * Tokens and passwords are never printed; prefer the environment for them
 * (flags are visible to other users in `ps`).
 */
import type { Command } from "commander";
import { getLogger } from "sgridnext";
import { tuneRegistryHeap } from "../registry/server/heap-tuning";
import { RegistryServer, type RegistryAddress } from "../registry/server/registry-server";
import { REGISTRY_DEFAULTS, REGISTRY_ENV, optionsFromText, textSettingsFromEnv, type RegistryTextSettings } from "../registry/server/options";

/** The flags are the text settings, except the admin password (env only: a flag would show in `ps`). */
type RegistryFlags = Omit<RegistryTextSettings, "adminPassword">;

export function registerRegistry(program: Command): void {
  program
    .command("registry")
    .description("run a registry: the database owner that agents, proxies and the admin app talk to")
    .option("--db <url>", `database: sqlite:<path> or mysql://user:pass@host:port/db [${REGISTRY_ENV.db}] (default: sqlite:<data-dir>/registry.db)`)
    .option("--listen <host:port>", `address of the gRPC port [${REGISTRY_ENV.listen}] (default: ${REGISTRY_DEFAULTS.listen})`)
    .option("--native-listen <host:port>", `also serve a native (sgrid://) port here; agents listed as sgrid://host:port hold their session on it for a fraction of the registry CPU [${REGISTRY_ENV.nativeListen}] (default: none)`)
    .option("--data-dir <dir>", `directory for the embedded database and packages [${REGISTRY_ENV.dataDir}] (default: ${REGISTRY_DEFAULTS.dataDir})`)
    .option("--advertise <host:port>", `address agents and servants are told to use [${REGISTRY_ENV.advertise}] (default: the listen address on this host's IP)`)
    .option("--cluster-token <token>", `token agents must present [${REGISTRY_ENV.clusterToken}; prefer the env: flags show in ps]`)
    .option("--query-token <token>", `token Query and Config callers must present [${REGISTRY_ENV.queryToken}] (default: open)`)
    .option("--admin-app-token <token>", `token of the admin app, whose forwarded browser addresses are then trusted for login limits [${REGISTRY_ENV.adminAppToken}; give sgrid admin the same]`)
    .option("--heartbeat-interval <duration>", `agents' heartbeat interval, e.g. 5s [${REGISTRY_ENV.heartbeatIntervalMs}] (default: ${REGISTRY_DEFAULTS.heartbeatIntervalMs}ms)`)
    .option("--heartbeat-timeout <duration>", `a node silent this long is offline, e.g. 15s [${REGISTRY_ENV.heartbeatTimeoutMs}] (default: ${REGISTRY_DEFAULTS.heartbeatTimeoutMs}ms)`)
    .option("--placement-grace <duration>", `a node offline this long is lost: placed servers move its instances to other matching nodes, e.g. 1m [${REGISTRY_ENV.placementGraceMs}] (default: ${REGISTRY_DEFAULTS.placementGraceMs}ms)`)
    .option("--max-patch-size <size>", `largest package accepted, e.g. 512M [${REGISTRY_ENV.maxPatchBytes}] (default: 512M)`)
    .option("--tls-cert <file>", `PEM certificate: serve TLS [${REGISTRY_ENV.tlsCert}]`)
    .option("--tls-key <file>", `PEM private key of --tls-cert [${REGISTRY_ENV.tlsKey}]`)
    .addHelpText("after", `\nThe first admin user's password comes from ${REGISTRY_ENV.adminPassword}; without it one is generated and printed once.`)
    .action(async (flags: RegistryFlags) => {
      tuneRegistryHeap();
      const fromFlags: RegistryTextSettings = { ...flags };
      const server = new RegistryServer(optionsFromText(fromFlags, textSettingsFromEnv(process.env)));
      const log = getLogger("registry");
      // Handlers go in before anything is printed: whoever reads the line may signal at once.
      let starting: Promise<RegistryAddress> | undefined;
      let stopping = false;
      const onSignal = (signal: NodeJS.Signals) => {
        if (stopping) return;
        stopping = true;
        log.info({ signal }, "stopping on signal");
        // A signal during start: let start finish, then stop (a failed start is reported by main, exit 1).
        Promise.resolve(starting).then(
          () => server.stop().then(() => process.exit(0), () => process.exit(1)),
          () => undefined,
        );
      };
      process.on("SIGTERM", onSignal);
      process.on("SIGINT", onSignal);
      try {
        starting = server.start();
        const addr = await starting;
        if (!stopping) process.stdout.write(`sgrid registry serving on ${addr.tls ? "grpcs://" : ""}${addr.address}${addr.native ? ` and ${addr.native}` : ""} (advertised ${addr.advertise}, database ${server.store.safeUrl})\n`);
      } catch (err) {
        process.removeListener("SIGTERM", onSignal);
        process.removeListener("SIGINT", onSignal);
        throw err;
      }
    });
}
