/**
 * V8 heap settings of the `sgrid node` process, applied before the agent's
 * modules load.
 *
 * The agent is an idle daemon: between heartbeats it allocates little, and
 * what it allocates (a heartbeat, a desired state, a download chunk) dies
 * young. V8 grows the young generation from 1 MB per semi-space up to 16 MB
 * (32 MB with both halves) as soon as a few scavenges see a high allocation
 * rate, which the agent's start (loading ~400 modules) always does, and the
 * grown young generation stays resident for the life of the process: about
 * 7 MB of the idle agent's RSS. With a growth factor of 1 the young
 * generation stays at 1 MB per semi-space. The price is more frequent
 * (each cheaper) scavenges, and objects that live a little longer (a chunk
 * being written while the next one arrives) are promoted to the old
 * generation sooner; the old generation's own limit is left to V8 (a cap
 * would not shrink the idle agent, which uses ~15 MB of it, and would turn a
 * large publish into a fatal out-of-memory instead of a larger heap).
 * `npm run bench agent` measures both the idle RSS and a 50-instance
 * publish and soak.
 *
 * `--semi-space-growth-factor` is read each time V8 decides to grow the
 * young generation, so setting it at run time works (unlike
 * `--max-semi-space-size`, which V8 reads once when the heap is made). An
 * operator who starts the agent with their own young-generation flag
 * (`node --max-semi-space-size=… sgrid node`, or in NODE_OPTIONS) keeps it.
 */
import * as v8 from "node:v8";

/** The flag `sgrid node` sets, unless the operator gave a young-generation flag of their own. */
export const AGENT_V8_FLAGS: readonly string[] = Object.freeze(["--semi-space-growth-factor=1"]);

const YOUNG_GENERATION_FLAG = /--(max-|min-)?semi[-_]space[-_]/;

/** Applies AGENT_V8_FLAGS; returns the flags applied (none when the operator set the young generation). */
export function tuneAgentHeap(execArgv: readonly string[] = process.execArgv, nodeOptions: string = process.env.NODE_OPTIONS ?? ""): readonly string[] {
  if (execArgv.some((a) => YOUNG_GENERATION_FLAG.test(a)) || YOUNG_GENERATION_FLAG.test(nodeOptions)) return [];
  for (const flag of AGENT_V8_FLAGS) v8.setFlagsFromString(flag);
  return AGENT_V8_FLAGS;
}
