/**
 * The CA bundle clients trust for TLS endpoints (`grpcs://`, `ssl`,
 * `sgrids://`) when no `rootCerts` / `tls.ca` option is given: the PEM file
 * named by `SGRID_TLS_CA`, else the system roots. One setting serves every
 * part that dials a TLS registry or servant: servants, the node agent (which
 * passes it on to the servants it starts), the admin app and the CLI.
 */
import * as fs from "node:fs";
import { ConfigError } from "../errors";
import { ENV } from "../contract/env";

const cache = new Map<string, Buffer>();

/**
 * The PEM bundle of `SGRID_TLS_CA` (read once per path), or undefined when
 * unset. Throws ConfigError naming the file when it cannot be read or holds
 * no certificate.
 */
export function envRootCerts(env: NodeJS.ProcessEnv = process.env): Buffer | undefined {
  const file = env[ENV.TLS_CA]?.trim();
  if (!file) return undefined;
  const hit = cache.get(file);
  if (hit) return hit;
  let pem: Buffer;
  try {
    pem = fs.readFileSync(file);
  } catch (err) {
    throw new ConfigError(`SGRID_TLS_CA: cannot read the CA bundle ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { file });
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new ConfigError(`SGRID_TLS_CA: ${file} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)`, { file });
  }
  cache.set(file, pem);
  return pem;
}
