/**
 * Resolution of symbolic links inside an unpacked release, done on paper.
 *
 * A lexical check (`path.resolve(dir, target)` stays inside) is not enough:
 * `a -> .` followed by `b -> a/..` is lexically inside but really points to
 * the parent of the release. This resolver walks a target one segment at a
 * time the way the kernel does, expanding every link it meets from the map
 * of links the package created, so a chain of individually harmless links
 * cannot escape either.
 *
 * Contract: the tree being resolved contains no links other than those in
 * `links` (true for a fresh unpack directory, and the unpacker refuses
 * entries whose path passes through a link), and keys are release-relative
 * paths with "/" separators and no "." or ".." segments.
 */

/** Most links followed while resolving one target, as Linux's MAXSYMLINKS. */
export const MAX_LINK_HOPS = 40;

export type LinkResolution =
  | { ok: true; parts: string[] }
  | { ok: false; reason: "absolute" | "outside" | "loop" };

/** Splits a relative path into segments, dropping empty and "." segments (".." is kept). */
export function splitSegments(p: string): string[] {
  return p.split("/").filter((s) => s !== "" && s !== ".");
}

/**
 * Resolves `target` as the kernel would for a link whose parent directory is
 * `fromDir` (segments relative to the release root). Returns the
 * release-relative segments of the result, or why it is not inside.
 * Never throws.
 */
export function resolveLinkTarget(fromDir: readonly string[], target: string, links: ReadonlyMap<string, string>): LinkResolution {
  if (target.startsWith("/")) return { ok: false, reason: "absolute" };
  const stack = [...fromDir];
  let queue = splitSegments(target);
  let hops = 0;
  while (queue.length > 0) {
    const seg = queue.shift() as string;
    if (seg === "..") {
      if (stack.length === 0) return { ok: false, reason: "outside" };
      stack.pop();
      continue;
    }
    stack.push(seg);
    const next = links.get(stack.join("/"));
    if (next === undefined) continue;
    if (++hops > MAX_LINK_HOPS) return { ok: false, reason: "loop" };
    if (next.startsWith("/")) return { ok: false, reason: "absolute" };
    stack.pop();
    queue = [...splitSegments(next), ...queue];
  }
  return { ok: true, parts: stack };
}
