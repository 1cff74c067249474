/**
 * Why the registry lists an endpoint as inactive (`Endpoint.inactive_reason`
 * in FindObject / WatchObject answers), and what a proxy does with it.
 *
 * | reason | meaning | a proxy |
 * |---|---|---|
 * | `drained` | taken out of traffic on purpose (a publish about to stop it, an operator) | stops using it at once (calls in flight finish) |
 * | `stopped` | its desired state is not active (stopped, undeployed) | stops using it at once |
 * | `down` | its agent reports it not running (inactive, failed, stopping) | stops using it at once |
 * | `node_offline` | its node missed heartbeats: the agent may be away while the servant serves | keeps it as a fallback |
 * | `not_ready` | its agent has not (yet) reported it serving (starting, re-adopted) | keeps it as a fallback |
 *
 * Fallback endpoints (the "suspect" reasons: liveness guesses, not decisions)
 * are called only while no active endpoint is left, as Tars proxies keep
 * their inactive list and Envoy routes to unhealthy hosts in panic mode: a
 * guess of the control plane must never cut callers off from a servant that
 * answers. Proxies' endpoint health (failover) still sets aside a fallback
 * endpoint that does not answer.
 */
export const ENDPOINT_INACTIVE_REASONS = Object.freeze(["drained", "stopped", "down", "node_offline", "not_ready"] as const);

export type EndpointInactiveReason = (typeof ENDPOINT_INACTIVE_REASONS)[number];

/** Reasons that are liveness guesses: such endpoints stay a proxy's fallback. */
export const SUSPECT_INACTIVE_REASONS: ReadonlySet<string> = new Set<EndpointInactiveReason>(["node_offline", "not_ready"]);

/**
 * Whether a proxy keeps an inactive endpoint as a fallback. An empty reason
 * (a registry older than the reasons) counts as a guess too: only a reason
 * that says "on purpose" or "not running" takes an endpoint away.
 */
export function isSuspectReason(reason: string): boolean {
  return reason === "" || SUSPECT_INACTIVE_REASONS.has(reason);
}
