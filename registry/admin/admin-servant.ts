/**
 * The registry's Admin API (Sgrid.Registry.AdminObj): everything the admin
 * app needs, over gRPC. One class per resource under ./api/ (users,
 * servers and instances, tasks, nodes/events/commands, config); this
 * servant only routes each RPC to its owner.
 *
 * Access (checked here, on the server, per application):
 * - viewer reads its applications, operator changes them, admin does
 *   everything; a grant on `*` covers every application;
 * - users (list, create, grant, revoke, delete, another user's password) and
 *   nodes (delete) need admin on `*`; anyone logged in may change their own
 *   password, list nodes and ask who they are;
 * - Login is the only call without a token.
 *
 * Every call that changes something appends an event with the user as actor.
 * Events never hold secrets: no passwords, tokens, env values, config
 * contents or command arguments (names only).
 */
import { AdminServant } from "sgridnext/gen/sgrid/registry/v1/admin.sgrid";
import type { RegistryContext } from "../server/context";
import { AdminApiContext } from "./api/context";
import { ConfigApi } from "./api/config-api";
import { NodesApi } from "./api/nodes-api";
import { ServersApi } from "./api/servers-api";
import { TasksApi } from "./api/tasks-api";
import { UsersApi } from "./api/users-api";
import { StatsApi } from "./api/stats-api";
import { TryCallApi } from "./api/try-call-api";
import type { PlacementReconciler } from "./placement-reconciler";
import type { TaskRunner } from "./task-runner";

export { ADMIN_API_DEFAULTS } from "./api/context";

export class RegistryAdminServant extends AdminServant {
  private readonly api: AdminApiContext;
  private readonly users: UsersApi;
  private readonly servers: ServersApi;
  private readonly tasks: TasksApi;
  private readonly nodes: NodesApi;
  private readonly config: ConfigApi;
  private readonly stats: StatsApi;
  private readonly tryCall: TryCallApi;

  constructor(ctx: RegistryContext, runner?: TaskRunner, placements?: PlacementReconciler) {
    super();
    this.api = new AdminApiContext(ctx, runner, placements);
    this.users = new UsersApi(this.api);
    this.servers = new ServersApi(this.api);
    this.tasks = new TasksApi(this.api);
    this.nodes = new NodesApi(this.api);
    this.config = new ConfigApi(this.api);
    this.stats = new StatsApi(this.api);
    this.tryCall = new TryCallApi(this.api);
  }

  /** Starts degraded mode's memory (./api/fleet-memory.ts). Idempotent. */
  start(): void {
    this.api.memory.start();
  }

  /** Stops the memory's background reads. Idempotent. */
  stop(): Promise<void> {
    return this.api.memory.stop();
  }

  /** Ends every WatchTask stream (they send nothing more); for shutdown. Idempotent. */
  drain(): void {
    this.api.drain();
  }

  readonly login: AdminServant["login"] = (request, call) => this.users.login(request, call);
  readonly logout: AdminServant["logout"] = (request, call) => this.users.logout(request, call);
  readonly whoAmI: AdminServant["whoAmI"] = (request, call) => this.users.whoAmI(request, call);
  readonly listUsers: AdminServant["listUsers"] = (request, call) => this.users.listUsers(request, call);
  readonly createUser: AdminServant["createUser"] = (request, call) => this.users.createUser(request, call);
  readonly setPassword: AdminServant["setPassword"] = (request, call) => this.users.setPassword(request, call);
  readonly grant: AdminServant["grant"] = (request, call) => this.users.grant(request, call);
  readonly revoke: AdminServant["revoke"] = (request, call) => this.users.revoke(request, call);
  readonly deleteUser: AdminServant["deleteUser"] = (request, call) => this.users.deleteUser(request, call);
  readonly listServers: AdminServant["listServers"] = (request, call) => this.servers.listServers(request, call);
  readonly deploy: AdminServant["deploy"] = (request, call) => this.servers.deploy(request, call);
  readonly deleteServer: AdminServant["deleteServer"] = (request, call) => this.servers.deleteServer(request, call);
  readonly removePlacement: AdminServant["removePlacement"] = (request, call) => this.servers.removePlacement(request, call);
  readonly listInstances: AdminServant["listInstances"] = (request, call) => this.servers.listInstances(request, call);
  readonly updateInstance: AdminServant["updateInstance"] = (request, call) => this.servers.updateInstance(request, call);
  readonly createTask: AdminServant["createTask"] = (request, call) => this.tasks.createTask(request, call);
  readonly getTask: AdminServant["getTask"] = (request, call) => this.tasks.getTask(request, call);
  readonly watchTask: AdminServant["watchTask"] = (request, call) => this.tasks.watchTask(request, call);
  readonly listTasks: AdminServant["listTasks"] = (request, call) => this.tasks.listTasks(request, call);
  readonly rollbackTask: AdminServant["rollbackTask"] = (request, call) => this.tasks.rollbackTask(request, call);
  readonly decideCanary: AdminServant["decideCanary"] = (request, call) => this.tasks.decideCanary(request, call);
  readonly listNodes: AdminServant["listNodes"] = (request, call) => this.nodes.listNodes(request, call);
  readonly deleteNode: AdminServant["deleteNode"] = (request, call) => this.nodes.deleteNode(request, call);
  readonly setNodeTags: AdminServant["setNodeTags"] = (request, call) => this.nodes.setNodeTags(request, call);
  readonly listEvents: AdminServant["listEvents"] = (request, call) => this.nodes.listEvents(request, call);
  readonly sendCommand: AdminServant["sendCommand"] = (request, call) => this.nodes.sendCommand(request, call);
  readonly listConfigFiles: AdminServant["listConfigFiles"] = (request, call) => this.config.listConfigFiles(request, call);
  readonly listInstanceConfigFiles: AdminServant["listInstanceConfigFiles"] = (request, call) => this.config.listInstanceConfigFiles(request, call);
  readonly loadConfig: AdminServant["loadConfig"] = (request, call) => this.config.loadConfig(request, call);
  readonly configHistory: AdminServant["configHistory"] = (request, call) => this.config.configHistory(request, call);
  readonly getConfigVersion: AdminServant["getConfigVersion"] = (request, call) => this.config.getConfigVersion(request, call);
  readonly queryCallStats: AdminServant["queryCallStats"] = (request, call) => this.stats.queryCallStats(request, call);
  readonly prepareTryCall: AdminServant["prepareTryCall"] = (request, call) => this.tryCall.prepareTryCall(request, call);
  readonly recordTryCall: AdminServant["recordTryCall"] = (request, call) => this.tryCall.recordTryCall(request, call);
  readonly putConfig: AdminServant["putConfig"] = (request, call) => this.config.putConfig(request, call);
  readonly rollbackConfig: AdminServant["rollbackConfig"] = (request, call) => this.config.rollbackConfig(request, call);
  readonly deleteConfig: AdminServant["deleteConfig"] = (request, call) => this.config.deleteConfig(request, call);
  readonly pushConfig: AdminServant["pushConfig"] = (request, call) => this.config.pushConfig(request, call);
}
