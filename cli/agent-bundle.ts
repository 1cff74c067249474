/**
 * `sgrid node` can run from one file: dist/cli/agent.bundle.js, made at build
 * time by esbuild (scripts/bundle-agent.js) from the agent's ~280 modules.
 *
 * Why: loading the modules one by one resolves each path (Node's module
 * resolution: `path.resolve`, `Module._nodeModulePaths`, a stat per try),
 * often enough that V8 optimizes those functions with TurboFan while the
 * agent starts. The idle agent then has the optimizing compiler's code
 * pages of the node binary resident, ~3.6 MB of file-backed RSS it would
 * not otherwise touch; from one file nothing is hot at idle, the compiler
 * stays on for real work (an unpack), and the start costs less CPU. What
 * the agent loads only on demand (zod, yaml, tar, prom-client, the other
 * sub-commands) stays outside the bundle, loaded as before when needed.
 *
 * Opt-in for now (`SGRID_AGENT_BUNDLE=1`): measured, an idle bundled agent
 * is ~58.5 MB instead of ~64 MB for its first ~5 minutes, until the
 * heartbeat's own work (parsing /proc/mounts) gets hot enough for TurboFan
 * anyway (~61 MB); and over an 8-10 minute soak with 50 instances its
 * anonymous RSS grew ~9 MB (+47 MB/h, two runs) where the unbundled agent
 * stayed flat (-12 MB/h in the same run), unless glibc's malloc arenas are
 * capped (MALLOC_ARENA_MAX=2: +17, -5.5 MB/h over the second half).
 *
 * The bundle is used only when it is current: none of the inputs listed
 * beside it (agent.bundle.inputs.json, relative paths) is newer than it, so
 * a `tsc --watch` rebuild runs the new code from dist/ rather than a stale
 * bundle; inputs not found (an installed package lays its dependencies out
 * elsewhere) are not compared.
 */
import * as fs from "node:fs";

export const AGENT_BUNDLE = "agent.bundle.js";
export const AGENT_BUNDLE_INPUTS = "agent.bundle.inputs.json";

/** True when `dir` has no bundle, or one of its listed inputs is newer than it. */
export function bundleIsStale(dir: string): boolean {
  let built: number;
  let inputs: unknown;
  try {
    built = fs.statSync(`${dir}/${AGENT_BUNDLE}`).mtimeMs;
    inputs = JSON.parse(fs.readFileSync(`${dir}/${AGENT_BUNDLE_INPUTS}`, "utf8"));
  } catch {
    return true;
  }
  if (!Array.isArray(inputs)) return true;
  for (const input of inputs) {
    // String concatenation, not path.join: this runs before anything else of the agent, and is meant to stay cheap.
    const stat = fs.statSync(`${dir}/${String(input)}`, { throwIfNoEntry: false });
    if (stat && stat.mtimeMs > built) return true;
  }
  return false;
}

/** The bundle's path when `sgrid node` should run from it (SGRID_AGENT_BUNDLE=1 and the bundle current), else undefined. */
export function agentBundle(dir: string = __dirname, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.SGRID_AGENT_BUNDLE !== "1") return undefined;
  return bundleIsStale(dir) ? undefined : `${dir}/${AGENT_BUNDLE}`;
}
