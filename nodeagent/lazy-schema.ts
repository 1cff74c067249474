/**
 * A zod schema made the first time it checks a value, so the agent loads
 * zod (95 modules; with them about 5 MB of an idle agent's RSS) only once it
 * has something to check that needs it: an instance's desired state, a
 * launch, a package. An idle agent without instances checks only its own
 * options, and those pass `accept`: a plain check that the value is valid as
 * it stands, which never says yes to a value the schema would refuse or
 * change (a default to fill). Whatever `accept` does not take goes to the
 * schema, so refusals and their messages are zod's, as before.
 */
import type { z } from "zod";

export interface LazySchema<S extends z.ZodType> {
  safeParse(value: unknown): ReturnType<S["safeParse"]>;
  parse(value: unknown): z.output<S>;
  /** True when `accept` takes the value (zod is not asked). */
  accepts(value: unknown): boolean;
  /** The zod schema (made, and zod loaded, on the first call). */
  schema(): S;
}

/** `build` gets zod's `z` when the schema is first needed; `accept` (optional) takes values that are valid as they are without it. */
export function lazySchema<S extends z.ZodType>(build: (zod: typeof z) => S, accept?: (value: unknown) => boolean): LazySchema<S> {
  let schema: S | undefined;
  const get = (): S => (schema ??= build((require("zod") as typeof import("zod")).z));
  const accepts = (value: unknown): boolean => accept?.(value) === true;
  return {
    safeParse: (value) => (accepts(value) ? ({ success: true, data: value } as ReturnType<S["safeParse"]>) : (get().safeParse(value) as ReturnType<S["safeParse"]>)),
    parse: (value) => (accepts(value) ? (value as z.output<S>) : get().parse(value)),
    accepts,
    schema: get,
  };
}

/** zod's `prettifyError` (a schema refused a value, so zod is loaded already). */
export function prettifyError(error: z.ZodError): string {
  return (require("zod") as typeof import("zod")).z.prettifyError(error);
}
