/**
 * Layered config files (application < server < instance).
 *
 * A scope is `level` (application | server | instance) + `application`
 * [+ `server` [+ `node`]], in the query string for reads and in the body for writes.
 *
 * GET    /api/configs/files?<scope>                         files of one level (Admin.ListConfigFiles)
 * GET    /api/configs/instance-files?application&server&node files an instance sees (Admin.ListInstanceConfigFiles)
 * GET    /api/configs/file?<scope>&fileName&version=0        one version (0 = current)
 * GET    /api/configs/history?<scope>&fileName&limit
 * GET    /api/configs/merged?application&server&node&fileName the merged view an instance loads (Admin.LoadConfig)
 *
 * Reads go through the Admin API (role viewer on the application), never
 * through Config, which is the servants' API behind the query token.
 * PUT    /api/configs/file        {scope, fileName, content, comment}
 * POST   /api/configs/rollback    {scope, fileName, version, comment}
 * DELETE /api/configs/file?<scope>&fileName
 * POST   /api/configs/push        {fileName, instanceIds: [] = every instance that sees it}
 */
import { z } from "zod";
import { CONFIG_FILE_MAX_BYTES } from "sgridnext";
import { body, check } from "../body";
import { asUser, type AdminRouter } from "../context";
import { Application, FileName, Id, NodeName, OptionalUint, Scope, ServerName } from "./schemas";

/**
 * Body limit of a config write: room for the contract's largest file
 * (CONFIG_FILE_MAX_BYTES) JSON-escaped. The size itself is the registry's to
 * refuse, so a file over it gets the same answer here as from sgrid config set.
 */
const CONFIG_BODY_BYTES = 4 * CONFIG_FILE_MAX_BYTES;

/** A scope in a query string (other keys are ignored). */
const ScopeQuery = Scope;

const Instance = z.object({ application: Application, server: ServerName, node: NodeName });

const Put = z.object({
  scope: Scope,
  fileName: FileName,
  content: z.string(),
  comment: z.string().max(1024).default(""),
});
const Rollback = z.object({ scope: Scope, fileName: FileName, version: Id, comment: z.string().max(1024).default("") });
const Push = z.object({ fileName: FileName, instanceIds: z.array(Id).default([]) });

/** Fills the proto's ConfigScope (every field a string). */
function wire(scope: z.infer<typeof Scope>): { level: string; application: string; server: string; node: string } {
  return {
    level: scope.level,
    application: scope.application,
    server: "server" in scope ? scope.server : "",
    node: "node" in scope ? scope.node : "",
  };
}

export function configRoutes(router: AdminRouter): void {
  router.get("/api/configs/files", async (ctx) => {
    const scope = check(ScopeQuery, ctx.query);
    ctx.body = await ctx.admin.registry.admin.listConfigFiles({ scope: wire(scope) }, asUser(ctx));
  });

  router.get("/api/configs/instance-files", async (ctx) => {
    const instance = check(Instance, ctx.query);
    ctx.body = await ctx.admin.registry.admin.listInstanceConfigFiles({ instance }, asUser(ctx));
  });

  router.get("/api/configs/file", async (ctx) => {
    const scope = check(ScopeQuery, ctx.query);
    const q = check(z.object({ fileName: FileName, version: OptionalUint }), ctx.query);
    ctx.body = await ctx.admin.registry.admin.getConfigVersion({ scope: wire(scope), fileName: q.fileName, version: q.version ?? 0 }, asUser(ctx));
  });

  router.get("/api/configs/history", async (ctx) => {
    const scope = check(ScopeQuery, ctx.query);
    const q = check(z.object({ fileName: FileName, limit: OptionalUint }), ctx.query);
    ctx.body = await ctx.admin.registry.admin.configHistory({ scope: wire(scope), fileName: q.fileName, limit: Math.min(q.limit ?? 100, 1000) }, asUser(ctx));
  });

  router.get("/api/configs/merged", async (ctx) => {
    const instance = check(Instance, ctx.query);
    const { fileName } = check(z.object({ fileName: FileName }), ctx.query);
    ctx.body = await ctx.admin.registry.admin.loadConfig({ instance, fileName }, asUser(ctx));
  });

  router.put("/api/configs/file", async (ctx) => {
    const input = await body(ctx, Put, Math.max(CONFIG_BODY_BYTES, ctx.admin.options.maxJsonBytes));
    ctx.body = await ctx.admin.registry.admin.putConfig({ ...input, scope: wire(input.scope) }, asUser(ctx));
  });

  router.post("/api/configs/rollback", async (ctx) => {
    const input = await body(ctx, Rollback, ctx.admin.options.maxJsonBytes);
    ctx.body = await ctx.admin.registry.admin.rollbackConfig({ ...input, scope: wire(input.scope) }, asUser(ctx));
  });

  router.delete("/api/configs/file", async (ctx) => {
    const scope = check(ScopeQuery, ctx.query);
    const { fileName } = check(z.object({ fileName: FileName }), ctx.query);
    await ctx.admin.registry.admin.deleteConfig({ scope: wire(scope), fileName }, asUser(ctx));
    ctx.status = 204;
  });

  router.post("/api/configs/push", async (ctx) => {
    const input = await body(ctx, Push, ctx.admin.options.maxJsonBytes);
    ctx.body = await ctx.admin.registry.admin.pushConfig(input, asUser(ctx, { timeoutMs: 30_000 }));
  });
}
