/**
 * Tasks: publish, start, stop, restart, undeploy over instances.
 *
 * POST /api/tasks                {kind, instanceIds, version?, batchSize?, stopOnFailure?, batchTimeoutS?}
 * GET  /api/tasks?application=&server=&limit=&beforeId=
 * GET  /api/tasks/:id
 * GET  /api/tasks/:id/watch      Server-Sent Events: `data: <TaskInfo JSON>` now and on every change
 *                                (Admin.WatchTask), then `event: end` when the task is over
 * POST /api/tasks/:id/rollback   a publish task back to each instance's previous version
 * POST /api/tasks/:id/canary     {action: promote|rollback}: a person's decision on a held (or baking) canary (Admin.DecideCanary)
 * GET  /api/canary/defaults      the thresholds and times a canary uses when the form leaves them empty (the registry's own)
 *
 * A publish may carry `canary` (Admin.CreateTask's CanaryOptions, camelCase). Its ranges are the
 * registry's to check (registry/admin/canary-plan.ts); its INVALID_ARGUMENT comes back with the
 * field as `canary.<option>` (canary.percent, canary.bakeS...), shown next to that field.
 */
import { PassThrough } from "node:stream";
import { z } from "zod";
import { InvalidArgumentError, SgridError } from "sgridnext";
import { CANARY_DEFAULTS, MAX_CANARY_BAKE_S } from "../../registry/admin/canary-plan";
import { body, check } from "../body";
import { asUser, type AdminRouter } from "../context";
import { toHttpError } from "../http-errors";
import { Id, OptionalText, OptionalUint } from "./schemas";

const Num = (what: string) => z.number({ message: `${what} must be a number` });

/** The canary's options as the form sends them; 0 (or absent) = the registry's default. */
const Canary = z.object({
  percent: Num("canary share (%)").default(0),
  instances: Num("canary instances").default(0),
  bakeS: Num("bake time (s)").default(0),
  maxErrorRateDelta: Num("max error-rate delta").optional(),
  maxP99Ratio: Num("max p99 ratio").default(0),
  minCalls: Num("minimum calls").default(0),
  hold: z.boolean().default(false),
});

const CreateTask = z.object({
  kind: z.enum(["publish", "start", "stop", "restart", "undeploy"], { message: "kind must be publish, start, stop, restart or undeploy" }),
  instanceIds: z.array(Id).min(1, "choose at least one instance"),
  version: z.number().int().min(0).default(0),
  batchSize: z.number().int().min(0).default(0),
  stopOnFailure: z.boolean().default(false),
  batchTimeoutS: z.number().int().min(0).max(86400).default(0),
  comment: z.string().trim().max(1024, "comment is at most 1024 characters").default(""),
  canary: Canary.optional(),
}).refine((t) => t.kind !== "publish" || t.version > 0, { message: "choose a patch version to publish", path: ["version"] })
  .refine((t) => t.kind === "publish" || t.canary === undefined, { message: "only a publish can have a canary", path: ["canary"] });

const DecideCanary = z.object({ action: z.enum(["promote", "rollback"], { message: "action must be promote or rollback" }) });

/** The registry names a canary option in snake case (bake_s); the form's fields are canary.bakeS. */
function canaryField(err: unknown): unknown {
  if (!(err instanceof InvalidArgumentError) || err.data?.kind !== "canary" || typeof err.data.field !== "string") return err;
  const field = `canary.${err.data.field.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())}`;
  return new InvalidArgumentError(err.message, { ...err.data, field }, err);
}

/** Comment line sent on an idle SSE stream so that proxies keep it open, ms. */
const SSE_KEEPALIVE_MS = 15_000;
const DONE = new Set(["success", "failed", "partial"]);

export function taskRoutes(router: AdminRouter): void {
  router.post("/api/tasks", async (ctx) => {
    const input = await body(ctx, CreateTask, ctx.admin.options.maxJsonBytes);
    const canary = input.canary ? { ...input.canary, p99FloorMs: 0 } : undefined;
    const created = await ctx.admin.registry.admin.createTask({ ...input, canary }, asUser(ctx)).catch((err: unknown) => {
      throw canaryField(err);
    });
    ctx.status = 201;
    ctx.body = created;
  });

  router.get("/api/canary/defaults", (ctx) => {
    ctx.body = { ...CANARY_DEFAULTS, maxBakeS: MAX_CANARY_BAKE_S };
  });

  router.get("/api/tasks", async (ctx) => {
    const q = check(z.object({ application: OptionalText, server: OptionalText, limit: OptionalUint, beforeId: OptionalUint }), ctx.query);
    ctx.body = await ctx.admin.registry.admin.listTasks(
      { application: q.application ?? "", server: q.server ?? "", limit: Math.min(q.limit ?? 50, 500), beforeId: q.beforeId ?? 0 }, asUser(ctx));
  });

  router.get("/api/tasks/:id", async (ctx) => {
    ctx.body = await ctx.admin.registry.admin.getTask({ id: check(Id, ctx.params.id) }, asUser(ctx));
  });

  router.post("/api/tasks/:id/rollback", async (ctx) => {
    const id = check(Id, ctx.params.id);
    ctx.status = 201;
    ctx.body = await ctx.admin.registry.admin.rollbackTask({ id }, asUser(ctx));
  });

  router.post("/api/tasks/:id/canary", async (ctx) => {
    const id = check(Id, ctx.params.id);
    const { action } = await body(ctx, DecideCanary, ctx.admin.options.maxJsonBytes);
    ctx.body = await ctx.admin.registry.admin.decideCanary({ id, action }, asUser(ctx));
  });

  router.get("/api/tasks/:id/watch", async (ctx) => {
    const id = check(Id, ctx.params.id);
    const abort = new AbortController();
    const stream = ctx.admin.registry.admin.watchTask({ id }, asUser(ctx, { signal: abort.signal }));
    const iterator = stream[Symbol.asyncIterator]();
    // The first message decides the HTTP status (401/403/404 come back as JSON, not as a stream).
    const first = await iterator.next();
    const out = new PassThrough();
    ctx.req.socket.setTimeout(0);
    ctx.set({ "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-store", "X-Accel-Buffering": "no" });
    ctx.status = 200;
    ctx.body = out;
    const keepalive = setInterval(() => out.write(": keepalive\n\n"), SSE_KEEPALIVE_MS);
    const finish = (): void => {
      clearInterval(keepalive);
      abort.abort();
      out.end();
    };
    // The response closes when the browser goes away (the request object closes as soon as its empty body is read).
    ctx.res.on("close", finish);
    void (async () => {
      try {
        let next = first;
        while (!next.done) {
          out.write(`data: ${JSON.stringify(next.value)}\n\n`);
          if (DONE.has(next.value.status)) break;
          next = await iterator.next();
        }
        out.write("event: end\ndata: {}\n\n");
      } catch (err) {
        if (!abort.signal.aborted) {
          const e = toHttpError(err);
          if (!(err instanceof SgridError)) ctx.admin.log.error({ err }, "task watch failed");
          out.write(`event: error\ndata: ${JSON.stringify(e.body)}\n\n`);
        }
      } finally {
        finish();
      }
    })();
  });
}
