/**
 * `sgrid admin`: the web app and JSON API for people.
 *
 * Settings: flags, then env (SGRID_REGISTRY, SGRID_ADMIN_LISTEN,
 * SGRID_ADMIN_TLS_CERT, SGRID_ADMIN_TLS_KEY, SGRID_ADMIN_ALLOWED_HOSTS; the
 * admin app token only from SGRID_ADMIN_APP_TOKEN), then defaults. Prints one line
 * on stdout once serving: `sgrid admin serving on <url> (registry <endpoints>)`;
 * logs go to stderr. SIGTERM / SIGINT stop and exit 0. A start failure (port
 * in use, bad option, unreadable certificate) prints one line and exits 1.
 */
import * as fs from "node:fs";
import type { Command } from "commander";
import { ADMIN_APP_METADATA, ConfigError, getLogger } from "sgridnext";
import { ADMIN_DEFAULTS, AdminServer } from "../admin";

/** Registry endpoints when neither --registry nor SGRID_REGISTRY is given: a registry on this machine's default port. */
const DEFAULT_REGISTRY = "127.0.0.1:9500";

interface AdminFlags {
  registry?: string;
  listen?: string;
  tlsCert?: string;
  tlsKey?: string;
  trustProxy?: boolean;
  maxUploadSize?: string;
  allowedHosts?: string;
}

function readPem(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new ConfigError(`cannot read TLS ${what} ${file}: ${(err as Error).message}`);
  }
}

/** `512M`, `1G`, `1048576` -> bytes. */
function parseSize(text: string): number {
  const m = /^(\d+)([KMG]?)i?B?$/i.exec(text.trim());
  if (!m) throw new ConfigError(`--max-upload-size "${text}" is not a size (e.g. 512M)`);
  const mult = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2]!.toUpperCase() as "" | "K" | "M" | "G"];
  return Number(m[1]) * mult;
}

export function registerAdmin(program: Command): void {
  program
    .command("admin")
    .description("run the admin web app (publish, patch versions, config, nodes, tasks) in front of a registry")
    .option("--registry <host:port,...>", `registry endpoints [SGRID_REGISTRY] (default: ${DEFAULT_REGISTRY})`)
    .option("--listen <host:port>", `address of the web app [SGRID_ADMIN_LISTEN] (default: ${ADMIN_DEFAULTS.listen}: loopback until you choose otherwise)`)
    .option("--tls-cert <file>", "PEM certificate: serve HTTPS (cookies then Secure) [SGRID_ADMIN_TLS_CERT]")
    .option("--tls-key <file>", "PEM private key of --tls-cert [SGRID_ADMIN_TLS_KEY]")
    .option("--trust-proxy", "behind a TLS-terminating reverse proxy: trust X-Forwarded-For/-Proto")
    .option("--max-upload-size <size>", "largest package accepted, e.g. 512M (default: 512M)")
    .option("--allowed-hosts <names>", "comma-separated host names people open the app by, besides IP addresses, localhost and this machine's name [SGRID_ADMIN_ALLOWED_HOSTS]")
    .addHelpText("after", `\nLog in with a registry user (the first admin's password comes from the registry's SGRID_ADMIN_PASSWORD).\nGive the registry and this app the same ${ADMIN_APP_METADATA.ENV} so that the registry limits logins per browser address.`)
    .action(async (flags: AdminFlags) => {
      const env = process.env;
      const certFile = flags.tlsCert ?? env.SGRID_ADMIN_TLS_CERT;
      const keyFile = flags.tlsKey ?? env.SGRID_ADMIN_TLS_KEY;
      if ((certFile === undefined) !== (keyFile === undefined)) throw new ConfigError("--tls-cert and --tls-key go together");
      const server = new AdminServer({
        registry: flags.registry ?? env.SGRID_REGISTRY ?? DEFAULT_REGISTRY,
        listen: flags.listen ?? env.SGRID_ADMIN_LISTEN ?? ADMIN_DEFAULTS.listen,
        tls: certFile && keyFile ? { cert: readPem(certFile, "certificate"), key: readPem(keyFile, "key") } : undefined,
        trustProxy: flags.trustProxy ?? false,
        maxUploadBytes: flags.maxUploadSize ? parseSize(flags.maxUploadSize) : undefined,
        appToken: env[ADMIN_APP_METADATA.ENV] || undefined,
        allowedHosts: (flags.allowedHosts ?? env.SGRID_ADMIN_ALLOWED_HOSTS ?? "").split(",").map((h) => h.trim()).filter((h) => h !== ""),
      });
      let url: string;
      try {
        ({ url } = await server.start());
      } catch (err) {
        await server.stop();
        throw err;
      }
      process.stdout.write(`sgrid admin serving on ${url} (registry ${server.admin.services.options.registry})\n`);
      const log = getLogger("admin");
      if (!server.admin.services.options.appToken) {
        log.warn(`no ${ADMIN_APP_METADATA.ENV} set: the registry counts every login through this app as coming from this host (failed logins of one person can delay others'); give the registry and this app the same token`);
      }
      let stopping = false;
      const onSignal = (signal: NodeJS.Signals): void => {
        if (stopping) return;
        stopping = true;
        log.info({ signal }, "stopping on signal");
        server.stop().then(() => process.exit(0), () => process.exit(1));
      };
      process.on("SIGTERM", onSignal);
      process.on("SIGINT", onSignal);
    });
}
