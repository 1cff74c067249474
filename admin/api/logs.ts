/**
 * An instance's log, through the agent's built-in "agent.tail_log"
 * (nodeagent/logs/log-command.ts): stdout or stderr, the last lines or the
 * last lines containing a text, and a download of the file's tail.
 *
 * GET /api/instances/:id/log?lines=200&stream=stdout|stderr&grep=  -> {output}
 * GET /api/instances/:id/log/download?stream=stdout|stderr         -> text/plain attachment (the last 10 000 lines, at most 1 MiB)
 *
 * Like any admin command, it needs the operator role on the instance's
 * application (checked by the registry).
 */
import { z } from "zod";
import { check } from "../body";
import { asUser, type AdminContext, type AdminRouter } from "../context";
import { Id, OptionalUint } from "./schemas";

/** Default lines of log shown; at most 5000 (a page; the download has more). */
const LOG_LINES_DEFAULT = 200;
const LOG_LINES_MAX = 5000;
/** Lines of a download: the agent's own cap per answer. */
const DOWNLOAD_LINES = 10_000;

const Query = z.object({
  lines: OptionalUint,
  stream: z.enum(["stdout", "stderr"], { message: "stream must be stdout or stderr" }).default("stdout"),
  grep: z.string().max(256, "search text is at most 256 characters").default(""),
});

async function tailLog(ctx: AdminContext, id: number, query: { lines: number; stream: string; grep: string }): Promise<string> {
  const reply = await ctx.admin.registry.admin.sendCommand(
    { instanceId: id, command: "agent.tail_log", args: JSON.stringify(query), timeoutMs: 5000 }, asUser(ctx, { timeoutMs: 10000 }));
  return reply.output;
}

export function logRoutes(router: AdminRouter): void {
  router.get("/api/instances/:id/log", async (ctx) => {
    const id = check(Id, ctx.params.id);
    const q = check(Query, ctx.query);
    const lines = Math.min(Math.max(q.lines ?? LOG_LINES_DEFAULT, 1), LOG_LINES_MAX);
    ctx.body = { output: await tailLog(ctx, id, { lines, stream: q.stream, grep: q.grep }), stream: q.stream };
  });

  router.get("/api/instances/:id/log/download", async (ctx) => {
    const id = check(Id, ctx.params.id);
    const q = check(Query.pick({ stream: true }), ctx.query);
    const text = await tailLog(ctx, id, { lines: DOWNLOAD_LINES, stream: q.stream, grep: "" });
    ctx.type = "text/plain; charset=utf-8";
    // Names made of the id and a fixed word only: nothing of the request reaches the header.
    ctx.set("Content-Disposition", `attachment; filename="instance-${id}.${q.stream}.log"`);
    ctx.body = text === "" ? "" : text + "\n";
  });
}
