/**
 * Admin API: servers and instances (list, deploy, delete, edit an
 * instance's spec). Viewers read their applications, operators change them.
 */
import { InvalidArgumentError, type DeepPartial, type ServerContext } from "sgridnext";
import type {
  DeployReply, DeployRequest, ListInstancesReply, ListInstancesRequest, ListServersReply, ListServersRequest, ServerRef, UpdateInstanceRequest,
} from "sgridnext/gen/sgrid/registry/v1/admin";
import type { Empty, InstanceInfo } from "sgridnext/gen/sgrid/registry/v1/types";
import type { InstanceSpecUpdate } from "../../store";
import { hasRole } from "../auth";
import { adaptersFromMsg, healthFromMsg, launchFromMsg, limitsFromMsg, serverToMsg } from "../mapping";
import { assignPorts, deploy, nodeHost, place } from "../placement";
import { parsePlacementQuery } from "../placement-query";
import type { AdminApiContext } from "./context";

const UPDATE_MASK_FIELDS = ["adapters", "env", "limits", "health_check", "launch"] as const;

export class ServersApi {
  constructor(private readonly c: AdminApiContext) {}

  async listServers(request: ListServersRequest, call: ServerContext): Promise<DeepPartial<ListServersReply>> {
    const user = await this.c.user(call);
    if (request.application) this.c.requireApps(user, "viewer", [request.application]);
    const [lists, instances] = await Promise.all([
      this.c.memory.servers(request.application),
      this.c.memory.instances(request.application ? { application: request.application } : {}),
    ]);
    const degraded = lists.degraded ?? instances.degraded;
    const servers = lists.value.servers.filter((s) => hasRole(user, "viewer", s.application));
    const counts = new Map<string, number>();
    for (const i of instances.value) {
      const k = `${i.application}.${i.server}`;
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    const versions = this.c.versions(degraded !== undefined);
    // Placements are not in degraded mode's memory: without the database, servers are listed without them.
    const placements = new Map((degraded ? [] : await this.c.store.placements.list().catch(() => [])).map((p) => [`${p.application}.${p.server}`, p]));
    const out = [];
    for (const s of servers) {
      if (s.defaultPatchId !== null) await versions.load(s.application, s.name);
      out.push(serverToMsg(s, versions.lookup, counts.get(s.fullName) ?? 0, placements.get(s.fullName)));
    }
    const applications = lists.value.applications.filter((a) => hasRole(user, "viewer", a));
    return { servers: out, applications, ...(degraded ? { degraded } : {}) };
  }

  async deploy(request: DeployRequest, call: ServerContext): Promise<DeepPartial<DeployReply>> {
    const user = await this.c.user(call, { role: "operator", application: request.application });
    const spec = {
      application: request.application, server: request.server, type: request.type,
      adapters: adaptersFromMsg(request.adapters), env: { ...request.env }, limits: limitsFromMsg(request.limits),
      healthCheck: healthFromMsg(request.healthCheck), launch: launchFromMsg(request.launch), version: request.version,
      start: request.start, actor: user.name,
    };
    if (request.place.trim() !== "") return this.deployPlaced(request, spec);
    if (request.count) throw new InvalidArgumentError("count goes with a placement query (place): give nodes, or place and count", { kind: "count" });
    const result = await deploy(this.c.store, { ...spec, nodes: request.nodes });
    this.c.changed();
    const versions = this.c.versions();
    await versions.load(request.application, request.server);
    return { server: serverToMsg(result.server, versions.lookup, (await this.c.store.instances.list({ application: request.application, server: request.server })).length), instances: await this.c.instancesToMsg(result.instances) };
  }

  /**
   * Deploy by a placement query: the query is parsed first (INVALID_ARGUMENT
   * with its column), the placement stored, and reconciled at once, so the
   * reply carries the instances made and the placement's status (why some
   * could not be placed). A query that matches no node stores the placement
   * and makes nothing; it is placed when a matching node joins.
   */
  private async deployPlaced(request: DeployRequest, spec: Omit<Parameters<typeof deploy>[1], "nodes">): Promise<DeepPartial<DeployReply>> {
    if (request.nodes.length > 0) throw new InvalidArgumentError("give nodes or a placement query (place), not both", { kind: "place" });
    const query = request.place.trim();
    parsePlacementQuery(query);
    const { placement } = await place(this.c.store, { ...spec, query, count: request.count || 1 });
    this.c.changed();
    await this.c.placements.reconcile(placement.id);
    const stored = await this.c.store.placements.find(request.application, request.server);
    const instances = await this.c.store.instances.list({ application: request.application, server: request.server });
    const server = await this.c.store.servers.get(request.application, request.server);
    const versions = this.c.versions();
    await versions.load(request.application, request.server);
    return { server: serverToMsg(server, versions.lookup, instances.length, stored), instances: await this.c.instancesToMsg(instances) };
  }

  async removePlacement(request: ServerRef, call: ServerContext): Promise<DeepPartial<Empty>> {
    const user = await this.c.user(call, { role: "operator", application: request.application });
    await this.c.store.placements.remove(request.application, request.server);
    const full = `${request.application}.${request.server}`;
    await this.c.event(user.name, "server.unplace", full, `placement of ${full} removed; its instances stay`);
    this.c.changed();
    return {};
  }

  async deleteServer(request: ServerRef, call: ServerContext): Promise<DeepPartial<Empty>> {
    const user = await this.c.user(call, { role: "operator", application: request.application });
    const full = `${request.application}.${request.server}`;
    const { orphanedStorageKeys } = await this.c.store.servers.remove(request.application, request.server);
    this.c.forgetServerType(full);
    for (const key of orphanedStorageKeys) {
      await this.c.ctx.storage.removeUnused(key, () => this.c.store.patches.storageKeyInUse(key))
        .catch((err) => this.c.ctx.log.warn({ err, key }, "removing the package of a deleted server failed"));
    }
    await this.c.event(user.name, "server.delete", full, `server ${full} deleted`, { packagesRemoved: orphanedStorageKeys.length });
    this.c.changed();
    return {};
  }

  async listInstances(request: ListInstancesRequest, call: ServerContext): Promise<DeepPartial<ListInstancesReply>> {
    const user = await this.c.user(call);
    if (request.application) this.c.requireApps(user, "viewer", [request.application]);
    const filter: { application?: string; server?: string; node?: string } = {};
    if (request.application) filter.application = request.application;
    if (request.server) filter.server = request.server;
    if (request.node) filter.node = request.node;
    const { value, degraded } = await this.c.memory.instances(filter);
    const list = value.filter((i) => hasRole(user, "viewer", i.application));
    return { instances: await this.c.instancesToMsg(list, degraded !== undefined), ...(degraded ? { degraded } : {}) };
  }

  async updateInstance(request: UpdateInstanceRequest, call: ServerContext): Promise<DeepPartial<InstanceInfo>> {
    const user = await this.c.user(call);
    const current = await this.c.store.instances.get(request.instanceId);
    this.c.requireApps(user, "operator", [current.application]);
    if (request.updateMask.length === 0) throw new InvalidArgumentError(`nothing to update: update_mask is empty (expected some of ${UPDATE_MASK_FIELDS.join(", ")})`, { kind: "update_mask" });
    const update: InstanceSpecUpdate = {};
    for (const field of new Set(request.updateMask)) {
      switch (field) {
        case "adapters": {
          const node = await this.c.store.nodes.get(current.node);
          const mine = new Set(current.adapters.map((a) => a.port));
          const taken = new Set((await this.c.store.instances.usedPorts(current.node)).filter((p) => !mine.has(p)));
          update.adapters = assignPorts(adaptersFromMsg(request.adapters), taken, nodeHost(node.address), current.node);
          break;
        }
        case "env": update.env = { ...request.env }; break;
        case "limits": update.limits = limitsFromMsg(request.limits); break;
        case "health_check": update.healthCheck = healthFromMsg(request.healthCheck); break;
        case "launch": update.launch = launchFromMsg(request.launch); break;
        default:
          throw new InvalidArgumentError(`invalid update_mask entry "${field}": expected some of ${UPDATE_MASK_FIELDS.join(", ")}`, { kind: "update_mask" });
      }
    }
    const updated = await this.c.store.instances.updateSpec(current.id, update);
    const target = `${current.application}.${current.server}@${current.node}`;
    await this.c.event(user.name, "instance.update", target, `instance ${current.id} updated: ${[...new Set(request.updateMask)].join(", ")}`, {
      instanceId: current.id, fields: [...new Set(request.updateMask)],
      ...(update.env ? { envNames: Object.keys(update.env) } : {}),
    });
    this.c.changed();
    return (await this.c.instancesToMsg([updated]))[0]!;
  }
}
