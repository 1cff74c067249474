/**
 * Request bodies and query strings, read and validated once per route.
 *
 * JSON bodies must say `Content-Type: application/json`: a cross-site form
 * cannot send that without a CORS preflight, which this app never answers
 * (defence in depth behind SameSite cookies and CSRF tokens).
 */
import type { Context } from "koa";
import type { z } from "zod";
import { InvalidArgumentError, ResourceExhaustedError } from "sgridnext";

/** Reads a JSON body of at most `maxBytes`; INVALID_ARGUMENT when absent, not JSON or not declared as JSON. */
export async function readJson(ctx: Context, maxBytes: number): Promise<unknown> {
  if (!ctx.is("application/json")) {
    throw new InvalidArgumentError("request body must be JSON (Content-Type: application/json)");
  }
  const declared = Number(ctx.get("content-length") || "0");
  if (declared > maxBytes) throw new ResourceExhaustedError(`request body is larger than ${maxBytes} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new ResourceExhaustedError(`request body is larger than ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new InvalidArgumentError("request body is not valid JSON");
  }
}

/**
 * Validates `value`; INVALID_ARGUMENT naming the first bad field (in
 * `data.field`, which the page shows next to that field) otherwise.
 */
export function check<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const field = issue.path.map(String).join(".");
  const message = field ? `${field}: ${issue.message}` : issue.message;
  throw new InvalidArgumentError(message, field ? { field } : undefined);
}

/** Reads and validates a JSON body in one step. */
export async function body<S extends z.ZodType>(ctx: Context, schema: S, maxBytes: number): Promise<z.infer<S>> {
  return check(schema, await readJson(ctx, maxBytes));
}
