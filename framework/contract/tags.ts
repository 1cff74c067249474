/**
 * Node tags, written once: the agent takes them from `--tag` and its config
 * file, the registry stores them, the admin app and the CLI take them from
 * people, and placement queries (`tags:ssd`, `tags:zone=a`) match them.
 *
 * A tag is `key` or `key=value`:
 *
 * | part | grammar |
 * |---|---|
 * | key | a letter or digit, then letters, digits, `_`, `-`, `.`, `/`; at most 63 |
 * | value | letters, digits, `_`, `-`, `.`, `/`, `:`; at most 63 (may be empty: `key` alone) |
 *
 * (Kubernetes label keys and values, without the prefix rules.) A node has
 * at most {@link MAX_NODE_TAGS} tags; a key appears once. Tags travel as
 * their text (`ssd`, `zone=a`) and are held as a map key -> value ("" for
 * a plain tag).
 */
import { InvalidArgumentError } from "../errors";

export const TAG_KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_./-]{0,62}$/;
export const TAG_VALUE_PATTERN = /^[A-Za-z0-9_./:-]{0,63}$/;
export const MAX_NODE_TAGS = 64;

/** Tags as a map: key -> value ("" for a plain tag). */
export type TagMap = Record<string, string>;

function show(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

/** Checks one tag key; returns it or throws InvalidArgumentError naming it. */
export function checkTagKey(key: string): string {
  if (!TAG_KEY_PATTERN.test(key)) {
    throw new InvalidArgumentError(`invalid tag key ${show(key)}: expected a letter or digit, then letters, digits, "_", "-", ".", "/" (at most 63)`, { kind: "tags", field: "tags" });
  }
  return key;
}

/** Splits `key` / `key=value` into [key, value], checking both. */
export function parseTag(text: string): [string, string] {
  if (typeof text !== "string") throw new InvalidArgumentError("invalid tag: expected text (key or key=value)", { kind: "tags", field: "tags" });
  const t = text.trim();
  const eq = t.indexOf("=");
  const key = checkTagKey(eq < 0 ? t : t.slice(0, eq));
  const value = eq < 0 ? "" : t.slice(eq + 1);
  if (!TAG_VALUE_PATTERN.test(value)) {
    throw new InvalidArgumentError(`invalid value ${show(value)} of tag "${key}": expected letters, digits, "_", "-", ".", "/", ":" (at most 63)`, { kind: "tags", field: "tags" });
  }
  return [key, value];
}

/** Parses a list of tags into a map; a key given twice or more than MAX_NODE_TAGS tags is refused. */
export function parseTags(list: readonly string[]): TagMap {
  if (list.length > MAX_NODE_TAGS) throw new InvalidArgumentError(`too many tags: ${list.length} (at most ${MAX_NODE_TAGS})`, { kind: "tags", field: "tags" });
  const out: TagMap = {};
  for (const text of list) {
    const [k, v] = parseTag(text);
    if (k in out) throw new InvalidArgumentError(`tag "${k}" is given twice`, { kind: "tags", field: "tags" });
    out[k] = v;
  }
  return out;
}

/** A map back to its texts, sorted by key: `ssd`, `zone=a`. */
export function formatTags(tags: Readonly<TagMap>): string[] {
  return Object.keys(tags).sort().map((k) => (tags[k] ? `${k}=${tags[k]}` : k));
}
