/**
 * V8 settings of the `sgrid node` process, applied before the agent's
 * modules load. The agent is an idle daemon: it spends its life waiting for
 * a heartbeat tick, a desired state or a child's exit, and its busy moments
 * (a package's download and unpack) are seconds in a day. Two of V8's
 * defaults are made for the opposite, and each would keep megabytes
 * resident for the life of the process; neither reaches the servants
 * (flags set here are the agent's own: its children get neither its
 * execArgv nor these).
 *
 * Young generation (`--semi-space-growth-factor=1`). V8 grows it from 1 MB
 * per semi-space up to 16 MB (32 MB with both halves) as soon as a few
 * scavenges see a high allocation rate, which the agent's start (loading
 * ~400 modules) always does, and the grown young generation stays: about
 * 7 MB of the idle agent's RSS. With a growth factor of 1 it stays at 1 MB
 * per semi-space. The price is more frequent (each cheaper) scavenges, and
 * objects that live a little longer (a chunk being written while the next
 * one arrives) are promoted sooner. The old generation's limit is left to
 * V8 (a cap would not shrink the idle agent, which uses ~15 MB of it, and
 * would turn a large publish into a fatal out-of-memory instead of a larger
 * heap). The flag is read each time V8 decides to grow the young
 * generation, so setting it at run time works (unlike
 * `--max-semi-space-size`, which V8 reads once when the heap is made).
 *
 * Optimizing compiler (`--max-opt=1`: Ignition and Sparkplug, no
 * TurboFan). The first function V8 optimizes (at start: Node's module
 * resolution; later anything the heartbeat runs often enough) brings
 * TurboFan's ~3.7 MB of the node binary's code into memory, where it stays,
 * for work that is not the agent's bottleneck. Measured with callgrind
 * (instructions, all threads): unpacking a 24 MB, 2,000-file package in a
 * fresh process costs the same either way (TurboFan's own compiling eats
 * what its code saves), and a third unpack in the same process 1.29x the
 * instructions without it; the agent bench's 50-instance start, soak CPU
 * and the fan-out bench's agent CPU are given beside it. The tier is read
 * whenever V8 considers optimizing a function, so setting it at run time
 * works too.
 *
 * An operator's own flag wins: a young-generation flag on the command line
 * or in NODE_OPTIONS (`node --max-semi-space-size=8 $(command -v sgrid)
 * node`), a tier flag on the command line (`node --max-opt=999 …` gives
 * TurboFan back; Node refuses tier flags in NODE_OPTIONS).
 * `npm run bench agent` measures the idle RSS with and without each.
 */
import * as v8 from "node:v8";

const YOUNG_GENERATION_FLAG = /--(max-|min-)?semi[-_]space[-_]/;
/** Flags that choose V8's compiler tiers. */
const TIER_FLAG = /^--(no-)?(max[-_]opt|opt|turbofan|maglev|sparkplug|jitless|always[-_]sparkplug)(=|$)/;

/** The young-generation setting `sgrid node` applies unless the operator gave their own. */
export const AGENT_YOUNG_GENERATION_FLAG = "--semi-space-growth-factor=1";
/** The compiler tier `sgrid node` applies unless the operator chose their own. */
export const AGENT_TIER_FLAG = "--max-opt=1";

/** The flags `sgrid node` applies for this command line and NODE_OPTIONS: its own, less those the operator set themselves. */
export function agentV8Flags(execArgv: readonly string[] = process.execArgv, nodeOptions: string = process.env.NODE_OPTIONS ?? ""): string[] {
  const operator = [...execArgv, ...nodeOptions.split(/\s+/).filter(Boolean)];
  const flags: string[] = [];
  if (!operator.some((a) => YOUNG_GENERATION_FLAG.test(a))) flags.push(AGENT_YOUNG_GENERATION_FLAG);
  if (!operator.some((a) => TIER_FLAG.test(a))) flags.push(AGENT_TIER_FLAG);
  return flags;
}

/** Applies agentV8Flags() to this process; returns them. */
export function tuneAgentV8(): readonly string[] {
  const flags = agentV8Flags();
  for (const flag of flags) v8.setFlagsFromString(flag);
  return flags;
}
