/**
 * Plain checks for the `accept` side of a lazy schema (lazy-schema.ts):
 * each says yes only to a value its zod counterpart takes unchanged, and
 * says no to anything it is unsure of (the schema then decides). A key
 * present with the value undefined is left to the schema too.
 */

/** An object literal (or Object.create(null)): not an array, a class instance or a boxed value, and without symbol keys. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return (proto === Object.prototype || proto === null) && Object.getOwnPropertySymbols(v).length === 0;
}

/**
 * A plain object whose keys all have a check here, each present key passing
 * it (`z.object({...})` with those keys, every one optional; missing keys
 * are fine, a key with the value undefined is not taken here).
 */
export function hasOnly(v: unknown, checks: Readonly<Record<string, (value: unknown) => boolean>>): v is Record<string, unknown> {
  if (!isPlainObject(v)) return false;
  for (const key of Object.keys(v)) {
    const check = Object.prototype.hasOwnProperty.call(checks, key) ? checks[key] : undefined;
    if (check === undefined || v[key] === undefined || !check(v[key])) return false;
  }
  return true;
}

/** `hasOnly`, and every key of `required` present. */
export function hasExactly(v: unknown, checks: Readonly<Record<string, (value: unknown) => boolean>>, required: readonly string[]): v is Record<string, unknown> {
  return hasOnly(v, checks) && required.every((k) => Object.prototype.hasOwnProperty.call(v, k));
}

/** `z.number().int()` with bounds (a safe integer). */
export function isInt(v: unknown, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): v is number {
  return Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
}

/** `z.number()` with bounds (finite). */
export function isNumber(v: unknown, min = -Infinity, max = Infinity): v is number {
  return typeof v === "number" && Number.isFinite(v) && v >= min && v <= max;
}

/** `z.string()`, optionally with a minimum length and a pattern. */
export function isString(v: unknown, minLength = 0, pattern?: RegExp): v is string {
  return typeof v === "string" && v.length >= minLength && (pattern === undefined || pattern.test(v));
}

/** `z.array(item)`: an array without holes whose every element passes. */
export function isArrayOf(v: unknown, item: (value: unknown) => boolean, minLength = 0): v is unknown[] {
  if (!Array.isArray(v) || v.length < minLength) return false;
  for (let i = 0; i < v.length; i++) if (!(i in v) || !item(v[i])) return false;
  return true;
}

/** `z.record(z.string(), z.number())`. */
export function isNumberRecord(v: unknown): v is Record<string, number> {
  return isPlainObject(v) && Object.values(v).every((x) => isNumber(x));
}
