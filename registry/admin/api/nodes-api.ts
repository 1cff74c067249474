/**
 * Admin API: nodes, the event log and admin commands to instances. Anyone
 * logged in lists nodes; deleting one needs admin on `*`; events are listed
 * per application for those without viewer on `*`; a command needs
 * operator, and its event names the command only (arguments may be secret).
 */
import { InvalidArgumentError, PermissionDeniedError, type DeepPartial, type ServerContext } from "sgridnext";
import type {
  ListEventsReply, ListEventsRequest, ListNodesReply, NodeInfo, NodeRef, SendCommandReply, SendCommandRequest, SetNodeTagsRequest,
} from "sgridnext/gen/sgrid/registry/v1/admin";
import type { Empty } from "sgridnext/gen/sgrid/registry/v1/types";
import { hasRole } from "../auth";
import { eventToMsg, nodeToMsg } from "../mapping";
import { ADMIN_API_DEFAULTS, type AdminApiContext } from "./context";

/** Application of an event target (`App`, `App.Server`, `App.Server@node`). */
function targetApplication(prefix: string): string {
  return prefix.split(/[.@]/)[0] ?? "";
}

export class NodesApi {
  constructor(private readonly c: AdminApiContext) {}

  async listNodes(_request: Empty, call: ServerContext): Promise<DeepPartial<ListNodesReply>> {
    await this.c.user(call);
    const [nodes, instances] = await Promise.all([this.c.memory.nodes(), this.c.memory.instances()]);
    const counts = new Map<string, number>();
    for (const i of instances.value) counts.set(i.node, (counts.get(i.node) ?? 0) + 1);
    const degraded = nodes.degraded ?? instances.degraded;
    const sessions = this.c.ctx.sessions;
    return {
      nodes: nodes.value.map((n) => {
        const msg = nodeToMsg(n, counts.get(n.name) ?? 0, sessions.samples(n.name));
        // From memory: a node whose session this process holds is online now, whatever the remembered row says.
        const seen = degraded ? sessions.lastSeenAt(n.name) : undefined;
        return seen === undefined ? msg : { ...msg, online: true, lastHeartbeatAt: Math.max(seen, Number(msg.lastHeartbeatAt ?? 0)) };
      }),
      ...(degraded ? { degraded } : {}),
    };
  }

  async deleteNode(request: NodeRef, call: ServerContext): Promise<DeepPartial<Empty>> {
    const user = await this.c.user(call, { role: "admin" });
    await this.c.store.nodes.remove(request.name);
    await this.c.event(user.name, "node.delete", request.name, `node "${request.name}" deleted`);
    this.c.changed();
    return {};
  }

  /**
   * Replaces the tags people set on a node: operator (on any application)
   * or admin. People's tags win over the agent's for the same key and are
   * kept across agent restarts; `unset` hides an agent tag.
   */
  async setNodeTags(request: SetNodeTagsRequest, call: ServerContext): Promise<DeepPartial<NodeInfo>> {
    const user = await this.c.user(call);
    if (!user.roles.some((r) => r.role === "admin" || r.role === "operator")) {
      throw new PermissionDeniedError(`user "${user.name}" may not change node tags: it needs the operator or admin role`, { user: user.name });
    }
    const node = await this.c.store.nodes.setAdminTags(request.node, request.tags, request.unset);
    await this.c.event(user.name, "node.tags", node.name, `tags of node "${node.name}" set by people: ${[...request.tags, ...request.unset.map((k) => `-${k}`)].join(" ") || "(none)"}`, {
      tags: request.tags, unset: request.unset,
    });
    this.c.changed();
    const count = (await this.c.store.instances.list({ node: node.name })).length;
    return nodeToMsg(node, count, this.c.ctx.sessions.samples(node.name));
  }

  async listEvents(request: ListEventsRequest, call: ServerContext): Promise<DeepPartial<ListEventsReply>> {
    const user = await this.c.user(call);
    if (!hasRole(user, "viewer")) {
      const app = targetApplication(request.targetPrefix);
      if (!request.targetPrefix || !hasRole(user, "viewer", app)) {
        throw new PermissionDeniedError(`user "${user.name}" may list only the events of their applications: give target_prefix "<App>." of one of them`, { user: user.name });
      }
    }
    const events = await this.c.store.events.list({
      ...(request.kind ? { kind: request.kind } : {}),
      ...(request.targetPrefix ? { targetPrefix: request.targetPrefix } : {}),
      ...(request.actor ? { actor: request.actor } : {}),
      ...(request.beforeId ? { beforeId: request.beforeId } : {}),
      ...(request.afterId ? { afterId: request.afterId } : {}),
      ...(request.limit ? { limit: request.limit } : {}),
    });
    return { events: events.map(eventToMsg) };
  }

  private timeoutOf(ms: number): number {
    if (ms > ADMIN_API_DEFAULTS.maxCommandTimeoutMs) throw new InvalidArgumentError(`command timeout ${ms} ms is over the limit of ${ADMIN_API_DEFAULTS.maxCommandTimeoutMs} ms`, { kind: "timeout" });
    return ms || ADMIN_API_DEFAULTS.commandTimeoutMs;
  }

  async sendCommand(request: SendCommandRequest, call: ServerContext): Promise<DeepPartial<SendCommandReply>> {
    const user = await this.c.user(call);
    const inst = await this.c.store.instances.get(request.instanceId);
    this.c.requireApps(user, "operator", [inst.application]);
    if (!request.command || request.command.length > 128) throw new InvalidArgumentError("invalid command: expected 1 to 128 characters", { kind: "command" });
    const timeoutMs = this.timeoutOf(request.timeoutMs);
    const target = `${inst.application}.${inst.server}@${inst.node}`;
    // Arguments may carry secrets: the event names the command only.
    await this.c.event(user.name, "instance.command", target, `command "${request.command}" sent to instance ${inst.id}`, { instanceId: inst.id, command: request.command });
    const output = await this.c.ctx.sessions.sendCommand(inst.id, request.command, request.args, timeoutMs);
    return { output };
  }
}
