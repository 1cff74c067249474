/**
 * Nodes and the event log.
 *
 * GET    /api/nodes                    -> {nodes: NodeInfo[] (with recent samples)}
 * DELETE /api/nodes/:name
 * PUT    /api/nodes/:name/tags          {tags: ["key", "key=value"], unset: ["key"]} -> NodeInfo (people's tags; they win over the agent's)
 * GET    /api/events?kind=&targetPrefix=&actor=&beforeId=&afterId=&limit=
 */
import { z } from "zod";
import { body, check } from "../body";
import { asUser, type AdminRouter } from "../context";
import { NodeName, OptionalText, OptionalUint } from "./schemas";

export function nodeRoutes(router: AdminRouter): void {
  router.get("/api/nodes", async (ctx) => {
    ctx.body = await ctx.admin.registry.admin.listNodes({}, asUser(ctx));
  });

  router.delete("/api/nodes/:name", async (ctx) => {
    const name = check(NodeName, ctx.params.name);
    await ctx.admin.registry.admin.deleteNode({ name }, asUser(ctx));
    ctx.status = 204;
  });

  router.put("/api/nodes/:name/tags", async (ctx) => {
    const node = check(NodeName, ctx.params.name);
    const input = await body(ctx, z.object({
      tags: z.array(z.string().max(128)).max(64, "at most 64 tags").default([]),
      unset: z.array(z.string().max(64)).max(64).default([]),
    }), ctx.admin.options.maxJsonBytes);
    ctx.body = await ctx.admin.registry.admin.setNodeTags({ node, ...input }, asUser(ctx));
  });

  router.get("/api/events", async (ctx) => {
    const q = check(z.object({
      kind: OptionalText, targetPrefix: OptionalText, actor: OptionalText,
      beforeId: OptionalUint, afterId: OptionalUint, limit: OptionalUint,
    }), ctx.query);
    ctx.body = await ctx.admin.registry.admin.listEvents({
      kind: q.kind ?? "", targetPrefix: q.targetPrefix ?? "", actor: q.actor ?? "",
      beforeId: q.beforeId ?? 0, afterId: q.afterId ?? 0, limit: Math.min(q.limit ?? 100, 1000),
    }, asUser(ctx));
  });
}
