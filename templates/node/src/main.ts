/**
 * Entry point of {{app}}.{{server}}: loads its config, then hosts {{obj}}.
 *
 * Under a Sgrid node agent, the adapters come from SGRID_ADAPTERS (or
 * SGRID_TARGET_HOST / SGRID_TARGET_PORT) and the config from the registry
 * (SGRID_REGISTRY; a last good copy is kept in SGRID_CONF_DIR). Locally:
 * `SGRID_TARGET_PORT=10000 npm start` (no registry: the default greeting).
 * SIGTERM / SIGINT drain in-flight calls and exit 0.
 */
import { Application, NotFoundError, UnavailableError, getLogger, type LoadedConfig } from "sgridnext";
import { {{service}} } from "./{{serviceKebab}}";

/** The config file this server reads, e.g. `{ "greeting": "Hello" }` (set it with `sgrid config set`). */
export const CONFIG_FILE = "{{server}}.json";
/** Used while no config is available (no registry, or no such file yet). */
const DEFAULT_GREETING = "Hello";

interface ServerConfig {
  greeting?: string;
}

const log = getLogger("{{server}}");

function greetingOf(config: LoadedConfig<ServerConfig> | undefined): string {
  const g = config?.value?.greeting;
  return typeof g === "string" && g !== "" ? g : DEFAULT_GREETING;
}

async function main(): Promise<void> {
  const app = new Application({ app: process.env.SGRID_APP ?? "{{app}}", server: process.env.SGRID_SERVER ?? "{{server}}" });
  try {
    await app.config.load<ServerConfig>(CONFIG_FILE);
  } catch (err) {
    // Running without a registry, or the file does not exist yet: start with the default.
    // Anything else (a file that does not parse, no permission) stops the start.
    if (!(err instanceof NotFoundError || err instanceof UnavailableError)) throw err;
    log.warn({ file: CONFIG_FILE, reason: (err as Error).message }, "config not loaded: using the default greeting");
  }
  // Read on every call: a pushed config version (`sgrid config push`) takes effect without a restart.
  app.addServant("{{obj}}", new {{service}}(() => greetingOf(app.config.get<ServerConfig>(CONFIG_FILE))));
  await app.start();
  for (const a of app.adapters()) log.info({ obj: a.obj, host: a.endpoint.host, port: a.endpoint.port }, "serving");
}

main().catch((err: unknown) => {
  log.fatal({ err }, "cannot start");
  process.exit(1);
});
