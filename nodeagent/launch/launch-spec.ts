/**
 * From a release and an instance's config to the exact process to spawn:
 * `{command, args, cwd, env}`, never a shell string.
 *
 * - `node`:   `<node> [--enable-source-maps] [nodeOptions] <release>/<entry> [args]`
 *             (node = the agent's own `process.execPath` unless
 *             `context.nodePath`; `--enable-source-maps` when the manifest
 *             says `sourceMaps`, as `sgrid package` does for a bundle, and
 *             the instance's options do not set source maps themselves)
 * - `java`:   `java [jvmOptions] -jar <release>/<entry> [args]`
 * - `binary`: `<release>/<entry> [args]`; the entry must resolve inside the
 *             release and be an executable regular file.
 * The working directory is the release directory; the environment is the
 * contract of ./env.ts. Every argument is passed as one argv element, so
 * nothing in the config is ever interpreted by a shell.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { lazySchema, prettifyError } from "../lazy-schema";
import { getLogger, PROTOCOLS } from "sgridnext";
import { checkEntry, SERVER_TYPES, type PackageManifest, type ServerType } from "../install";
import { LaunchConfigError } from "./errors";
import { buildServantEnv, type AdapterSpec } from "./env";

const log = getLogger("agent.launch");

/** The parts of an instance's config that shape its process. */
export interface InstanceLaunchConfig {
  /** Adapters; the first is the target (SGRID_TARGET_HOST/PORT). Default none. */
  adapters?: AdapterSpec[];
  /** The instance's own env; contract keys in it are ignored (see env.ts). Default none. */
  env?: Record<string, string>;
  /** JVM options before `-jar`, java only. Default none. */
  jvmOptions?: string[];
  /** Node options before the entry (e.g. `--max-old-space-size=512`), node only. Default none. */
  nodeOptions?: string[];
  /** Program arguments after the entry. Default none. */
  args?: string[];
}

/** What the node knows that the servant must be told. */
export interface NodeContext {
  /** This node's name. */
  node: string;
  /** Registry endpoints (SGRID_REGISTRY). */
  registry: string;
  /** Local agent endpoint (SGRID_AGENT). */
  agent: string;
  /** The server's conf/, logs/ and data/ directories. */
  confDir: string;
  logDir: string;
  dataDir: string;
  /** Node executable for `node` servers. Default process.execPath (the agent's own Node). */
  nodePath?: string;
  /** Java launcher for `java` servers. Default "java", looked up in the servant's PATH. */
  javaPath?: string;
  /** Agent env names passed on to servants. Default DEFAULT_INHERITED_ENV. */
  inheritEnv?: string[];
}

export interface LaunchInput {
  manifest: PackageManifest;
  /** The unpacked release (becomes the working directory). */
  releaseDir: string;
  /** The release version (SGRID_VERSION). */
  version: string;
  /** The server's type as the registry knows it; must equal the manifest's when given. */
  type?: ServerType;
  instance: InstanceLaunchConfig;
  context: NodeContext;
}

/** Everything needed to spawn the servant without a shell. */
export interface LaunchSpec {
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** Instance env keys dropped because they belong to the contract. */
  ignoredEnv: string[];
}

const instanceSchema = lazySchema((z) => {
  const argString = z.string().refine((s) => !s.includes("\0"), { message: "must not contain NUL" });

  return z.object({
    adapters: z.array(z.object({
      obj: z.string().regex(/^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z][A-Za-z0-9_-]*){0,2}$/),
      host: z.string().min(1).max(255).refine((h) => !/[\s/\0]/.test(h), { message: "invalid host" }),
      port: z.number().int().min(1).max(65535),
      protocol: z.enum(PROTOCOLS),
    })).default([]),
    env: z.record(z.string(), z.string()).default({}),
    jvmOptions: z.array(argString).default([]),
    nodeOptions: z.array(argString).default([]),
    args: z.array(argString).default([]),
});
});

/** `--enable-source-maps` for a release that asks for it, unless the instance's own node options decide. */
function sourceMapOptions(manifest: PackageManifest, nodeOptions: readonly string[]): string[] {
  if (manifest.sourceMaps !== true || nodeOptions.some((o) => o.includes("source-maps"))) return [];
  return ["--enable-source-maps"];
}

/**
 * Builds the launch spec. Rejects with LaunchConfigError when the config is
 * invalid or the entry is missing, outside the release or not executable.
 */
export async function buildLaunchSpec(input: LaunchInput): Promise<LaunchSpec> {
  const { manifest, context } = input;
  const parsed = instanceSchema.safeParse(input.instance);
  if (!parsed.success) {
    throw new LaunchConfigError(`invalid instance config: ${prettifyError(parsed.error).replace(/\n/g, "; ")}`, {});
  }
  const instance = parsed.data;
  const type = manifest.type;
  if (!(SERVER_TYPES as readonly string[]).includes(type)) throw new LaunchConfigError(`unknown server type ${String(type)}`, { type });
  if (input.type !== undefined && input.type !== type) {
    throw new LaunchConfigError(`release is of type ${type}, but the server is of type ${input.type}`, { type });
  }
  const cwd = path.resolve(input.releaseDir);
  const entry = path.join(cwd, manifest.entry);
  try {
    await checkEntry(cwd, manifest);
  } catch (err) {
    throw new LaunchConfigError(`cannot start ${manifest.app}.${manifest.server}: ${(err as Error).message}`, { entry: manifest.entry });
  }
  const { env, ignored } = buildServantEnv({
    app: manifest.app, server: manifest.server, node: context.node, version: input.version,
    adapters: instance.adapters, registry: context.registry, agent: context.agent,
    confDir: context.confDir, logDir: context.logDir, dataDir: context.dataDir,
    env: instance.env, inherit: context.inheritEnv,
  });

  if (ignored.length > 0) {
    log.warn({ app: manifest.app, server: manifest.server, ignored }, "instance env tried to set contract keys; ignored");
  }

  let command: string;
  let args: string[];
  switch (type) {
    case "node":
      command = context.nodePath ?? process.execPath;
      args = [...sourceMapOptions(manifest, instance.nodeOptions), ...instance.nodeOptions, entry, ...instance.args];
      break;
    case "java":
      command = context.javaPath ?? "java";
      args = [...instance.jvmOptions, "-jar", entry, ...instance.args];
      break;
    case "binary":
      try {
        await fs.promises.access(entry, fs.constants.X_OK);
      } catch {
        throw new LaunchConfigError(`cannot start ${manifest.app}.${manifest.server}: entry "${manifest.entry}" is not executable`, { entry: manifest.entry });
      }
      command = entry;
      args = [...instance.args];
      break;
  }
  return { command, args, cwd, env, ignoredEnv: ignored };
}
