/**
 * V8 settings of a registry process, applied once at its start (before its
 * hot code runs): `sgrid registry` (cli/registry.ts), `sgrid up` (cli/up.ts,
 * the registry in one process with the other parts) and the heartbeat
 * benchmark's registry process, which stands in for it.
 *
 * No allocation-site pretenuring. V8 decides per allocation site (an object
 * or array literal) to allocate its objects straight in the old generation
 * when most of them survived the last scavenges. A connect storm (thousands
 * of hellos and observed batches waiting their turn) makes the decoder's
 * sites look long-lived; the decision sticks. Measured: in the steady state
 * every heartbeat's decoded Heartbeat, usage entries and facts string
 * survived scavenges until the next mark-compact though nothing live held
 * them (a heap snapshot finds none), so they were promoted; most likely
 * held from a tenured object born old (which site was not pinned down) (~1.8 KB
 * per heartbeat at 3,000 agents, 4x what is promoted without it). The
 * registry's long-lived state is a few maps built once; nothing in it
 * gains from pretenuring. See the heartbeat row in README's bench table.
 */
import v8 from "node:v8";

export function tuneRegistryHeap(): void {
  v8.setFlagsFromString("--no-allocation-site-pretenuring");
}
