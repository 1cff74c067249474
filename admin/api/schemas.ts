/**
 * Shapes of the API's inputs. These catch a missing or malformed field
 * early, with the field's name (shown next to it in the page); the registry
 * still validates everything itself, and its INVALID_ARGUMENT comes back as
 * a 400 as well. Names follow the contract's grammar, as the registry's do.
 */
import { z } from "zod";
import { nameRefinement, type NameKind } from "sgridnext";

/** A name of the contract's grammar (framework/contract/names.ts), the same the registry, the agent and the CLI take. */
function contractName(kind: NameKind, required: string) {
  return z.string().trim().min(1, required).superRefine(nameRefinement(kind));
}

export const Application = contractName("application", "application is required");
export const ServerName = contractName("server", "server name is required");
export const ObjName = contractName("Obj", "Obj name is required");
export const NodeName = contractName("node", "node name is required");
export const FileName = contractName("config file", "file name is required");
export const Name = z.string().trim().min(1, "name is required").max(64)
  .regex(/^[A-Za-z0-9_.@-]+$/, "may contain only letters, digits, _, -, . and @");

/** A positive integer id in a path or query (`/api/tasks/:id`). */
export const Id = z.coerce.number().int().positive("must be a positive integer").max(Number.MAX_SAFE_INTEGER);
/** An optional non-negative integer in a query string ("" = absent). */
export const OptionalUint = z.preprocess((v) => (v === "" || v === undefined ? undefined : v), z.coerce.number().int().min(0).optional());
/** An optional string in a query string. */
export const OptionalText = z.string().max(256).optional();

export const Port = z.number().int().min(0, "port must be 0 (automatic) to 65535").max(65535, "port must be 0 (automatic) to 65535");

export const Adapter = z.object({
  obj: ObjName,
  host: z.string().trim().max(255).default(""),
  port: Port.default(0),
  protocol: z.enum(["grpc", "sgrid"], { message: "protocol must be grpc or sgrid" }).default("grpc"),
  weight: z.number().int().min(0).max(10000).default(0),
});

export const Limits = z.object({
  memoryBytes: z.number().int().min(0, "must be >= 0 (0 = unlimited)").default(0),
  cpuCores: z.number().min(0, "must be >= 0 (0 = unlimited)").max(1024).default(0),
  pids: z.number().int().min(0, "must be >= 0 (0 = unlimited)").default(0),
});

export const HealthCheck = z.object({
  kind: z.enum(["", "http", "tcp", "grpc"], { message: "health check kind must be http, tcp, grpc or empty" }).default(""),
  port: Port.default(0),
  path: z.string().max(1024).default(""),
  initialDelayMs: z.number().int().min(0).default(0),
  intervalMs: z.number().int().min(0).default(0),
  timeoutMs: z.number().int().min(0).default(0),
  failureThreshold: z.number().int().min(0).default(0),
});

export const Launch = z.object({
  args: z.array(z.string().max(4096)).default([]),
  jvmOptions: z.array(z.string().max(4096)).default([]),
  nodeOptions: z.array(z.string().max(4096)).default([]),
  entry: z.string().max(1024).default(""),
  runAsUser: z.string().max(64).default(""),
  stopSignal: z.string().max(16).default(""),
  stopGraceMs: z.number().int().min(0).default(0),
  keepaliveTimeoutMs: z.number().int().min(0).default(0),
});

/** Environment of an instance, no default (an absent env in an update must stay absent). */
export const EnvMap = z.record(
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "env names are letters, digits and _, not starting with a digit"),
  z.string().max(32768),
);
export const Env = EnvMap.default({});

/** Where a config file lives. */
export const Scope = z.discriminatedUnion("level", [
  z.object({ level: z.literal("application"), application: Application }),
  z.object({ level: z.literal("server"), application: Application, server: ServerName }),
  z.object({ level: z.literal("instance"), application: Application, server: ServerName, node: NodeName }),
], { message: "level must be application, server or instance" });
