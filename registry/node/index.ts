/**
 * The registry's node part: the NodeSession API (Obj `NodeObj`), the session
 * hub behind it, and the hub's background work (offline sweeper, desired
 * state pushes, command relay), started and stopped with the registry.
 */
import type { RegistryPart, RegistryPartFactory } from "../server/context";
import { NodeSessionServantImpl } from "./node-session-servant";
import { NodeSessionHub } from "./session-hub";

export { NodeSessionHub, NODE_SESSION_DEFAULTS, type NodeSessionHubOptions, type NodeSessionHubDeps } from "./session-hub";
export { NodeSessionServantImpl, PATCH_CHUNK_BYTES, type NodeSessionServantOptions } from "./node-session-servant";
export { DesiredStateBuilder, instanceDesired, desiredKey } from "./desired-state";
export { CommandFailedError, NodeNameInUseError } from "./errors";
export { SAMPLES_PER_NODE } from "./heartbeat-samples";

/**
 * Registry part "node". Uses the context's session hub, which RegistryServer
 * makes a NodeSessionHub; given another one (a stand-in), it builds its own
 * hub so that sessions still work, and says so (commands sent through the
 * context's hub then do not reach these sessions).
 */
export const nodePart: RegistryPartFactory = (ctx): RegistryPart => {
  let hub: NodeSessionHub;
  if (ctx.sessions instanceof NodeSessionHub) hub = ctx.sessions;
  else {
    ctx.log.warn("ctx.sessions is not a NodeSessionHub: the node part uses its own (admin commands will not reach its sessions)");
    hub = new NodeSessionHub({ store: ctx.store, changes: ctx.changes, settings: ctx.settings, log: ctx.log.child({ part: "node" }) });
  }
  return {
    servants: { NodeObj: new NodeSessionServantImpl(ctx, hub) },
    async start() {
      hub.start();
    },
    // End the long-lived session streams before the port closes; agents reconnect elsewhere.
    async drain() {
      await hub.close();
    },
    async stop() {
      await hub.close();
    },
  };
};
