/**
 * Servers and instances.
 *
 * GET    /api/servers?application=           -> {servers, applications}
 * POST   /api/servers                         deploy (DeployRequest fields, camelCase)
 * DELETE /api/servers/:application/:server
 * DELETE /api/servers/:application/:server/placement   ends the placement; instances stay
 * GET    /api/instances?application=&server=&node=
 * PATCH  /api/instances/:id                   {adapters?, env?, limits?, healthCheck?, launch?}: the fields given replace
 * POST   /api/instances/:id/command           {command, args?, timeoutMs?} -> {output}
 * (The log routes are in logs.ts.)
 */
import { z } from "zod";
import { body, check } from "../body";
import { asUser, type AdminRouter } from "../context";
import { Adapter, Application, Env, EnvMap, HealthCheck, Id, Launch, Limits, NodeName, OptionalText, ServerName } from "./schemas";

const Deploy = z.object({
  application: Application,
  server: ServerName,
  type: z.enum(["node", "java", "binary"], { message: "type must be node, java or binary" }),
  // Nodes, or a placement query (place) with a count: the registry keeps count instances on matching nodes.
  nodes: z.array(NodeName).default([]),
  place: z.string().trim().max(1024, "the placement query is longer than 1024 characters").default(""),
  count: z.number().int().min(0).max(1000, "count must be at most 1000").default(0),
  // At least one Obj: without one, the instance runs but no proxy can find it.
  adapters: z.array(Adapter).min(1, "give at least one Obj (the name proxies call, e.g. GreeterObj)"),
  env: Env,
  limits: Limits.default({ memoryBytes: 0, cpuCores: 0, pids: 0 }),
  healthCheck: HealthCheck.optional(),
  launch: Launch.optional(),
  version: z.number().int().min(0).default(0),
  start: z.boolean().default(false),
}).refine((v) => v.nodes.length > 0 || v.place !== "", { message: "choose at least one node, or give a placement query", path: ["nodes"] });

const UpdateInstance = z.object({
  adapters: z.array(Adapter).optional(),
  env: EnvMap.optional(),
  limits: Limits.optional(),
  healthCheck: HealthCheck.optional(),
  launch: Launch.optional(),
}).refine((v) => Object.values(v).some((x) => x !== undefined), "give at least one of adapters, env, limits, healthCheck, launch");

const Command = z.object({
  command: z.string().trim().min(1, "command is required").max(256),
  args: z.string().max(65536).default(""),
  timeoutMs: z.number().int().min(0).max(120_000).default(0),
});

export function serverRoutes(router: AdminRouter): void {
  router.get("/api/servers", async (ctx) => {
    const q = check(z.object({ application: OptionalText }), ctx.query);
    ctx.body = await ctx.admin.registry.admin.listServers({ application: q.application ?? "" }, asUser(ctx));
  });

  router.post("/api/servers", async (ctx) => {
    const input = await body(ctx, Deploy, ctx.admin.options.maxJsonBytes);
    ctx.status = 201;
    ctx.body = await ctx.admin.registry.admin.deploy(input, asUser(ctx));
  });

  router.delete("/api/servers/:application/:server", async (ctx) => {
    const p = check(z.object({ application: Application, server: ServerName }), ctx.params);
    await ctx.admin.registry.admin.deleteServer(p, asUser(ctx));
    ctx.status = 204;
  });

  router.delete("/api/servers/:application/:server/placement", async (ctx) => {
    const p = check(z.object({ application: Application, server: ServerName }), ctx.params);
    await ctx.admin.registry.admin.removePlacement(p, asUser(ctx));
    ctx.status = 204;
  });

  router.get("/api/instances", async (ctx) => {
    const q = check(z.object({ application: OptionalText, server: OptionalText, node: OptionalText }), ctx.query);
    ctx.body = await ctx.admin.registry.admin.listInstances(
      { application: q.application ?? "", server: q.server ?? "", node: q.node ?? "" }, asUser(ctx));
  });

  router.patch("/api/instances/:id", async (ctx) => {
    const id = check(Id, ctx.params.id);
    const input = await body(ctx, UpdateInstance, ctx.admin.options.maxJsonBytes);
    const updateMask = (["adapters", "env", "limits", "healthCheck", "launch"] as const)
      .filter((k) => input[k] !== undefined)
      .map((k) => (k === "healthCheck" ? "health_check" : k));
    ctx.body = await ctx.admin.registry.admin.updateInstance({ instanceId: id, updateMask, ...input }, asUser(ctx));
  });

  router.post("/api/instances/:id/command", async (ctx) => {
    const id = check(Id, ctx.params.id);
    const input = await body(ctx, Command, ctx.admin.options.maxJsonBytes);
    // The registry waits up to timeoutMs (0 = 5000) for the servant; give the call that long and a margin.
    const wait = (input.timeoutMs || 5000) + 5000;
    ctx.body = await ctx.admin.registry.admin.sendCommand({ instanceId: id, ...input }, asUser(ctx, { timeoutMs: wait }));
  });
}
