/**
 * A registry process's node part, in-process: a RegistryContext built from
 * the real store (on the given database), the real change feed, the real
 * NodeSessionHub and local package storage, with a small cluster-token
 * Authenticator; the NodeObj served over real gRPC on a loopback port.
 * Several harnesses on one MySQL database behave as several registry
 * processes (each its own pool, feed, hub and process id).
 *
 * And FakeAgent: the agent's side of a node session, driven by the test.
 */
import { Application, AsyncQueue, Communicator, getLogger, UnauthenticatedError, type ServerContext } from "sgridnext";
import type { AgentMessage, DesiredState, InstanceCommand, RegistryMessage } from "sgridnext/gen/sgrid/registry/v1/node";
import { NodeSessionProxy } from "sgridnext/gen/sgrid/registry/v1/node.sgrid";
import { NodeSessionHub, nodePart, type NodeSessionHubOptions } from "../../../registry/node";
import { PollingChangeFeed } from "../../../registry/server/change-feed";
import type { AuthUser, Authenticator, RegistryContext, RegistrySettings } from "../../../registry/server/context";
import { DatabaseStorage } from "../../../registry/services/storage";
import { type KnexStore, openStore } from "../../../registry/store";
import { pollUntil, type Check } from "../../helpers/wait";

export const CLUSTER_TOKEN = "cluster-secret-token";

/** Cluster token only: what the node part needs. */
class ClusterAuth implements Authenticator {
  async requireUser(): Promise<AuthUser> {
    throw new UnauthenticatedError("no users in this test");
  }
  requireCluster(ctx: ServerContext): void {
    if (ctx.metadata["authorization"] !== `Bearer ${CLUSTER_TOKEN}`) throw new UnauthenticatedError("missing or wrong cluster token");
  }
  requireQuery(): void {}
}

export interface NodeRegistry {
  store: KnexStore;
  hub: NodeSessionHub;
  ctx: RegistryContext;
  storage: DatabaseStorage;
  /** `127.0.0.1:<port>` of the NodeObj. */
  address: string;
  close(): Promise<void>;
}

export async function startNodeRegistry(dbUrl: string, opts: {
  processId?: string;
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  hub?: NodeSessionHubOptions;
} = {}): Promise<NodeRegistry> {
  const store = await openStore(dbUrl);
  const log = getLogger("registry.test");
  const changes = new PollingChangeFeed(store, { intervalMs: 50, log });
  await changes.start();
  const settings: RegistrySettings = {
    advertise: "127.0.0.1:9500",
    heartbeatIntervalMs: opts.heartbeatIntervalMs ?? 5000,
    heartbeatTimeoutMs: opts.heartbeatTimeoutMs ?? 15000,
    maxPatchBytes: 64 * 1024 * 1024,
    batchTimeoutMs: 120000,
    processId: opts.processId ?? "test-registry",
  };
  const hub = new NodeSessionHub({ store, changes, settings, log, options: opts.hub });
  const storage = new DatabaseStorage(store);
  const ctx: RegistryContext = { store, settings, changes, sessions: hub, storage, auth: new ClusterAuth(), log };
  const part = nodePart(ctx);
  await part.start?.();
  const app = new Application({ handleSignals: false, app: "Sgrid", server: "Registry", adapters: { NodeObj: "127.0.0.1:0" } });
  for (const [obj, servant] of Object.entries(part.servants ?? {})) app.addServant(obj, servant);
  await app.start();
  const port = app.adapters()[0]!.endpoint.port;
  return {
    store, hub, ctx, storage,
    address: `127.0.0.1:${port}`,
    async close() {
      await part.drain?.();
      await app.stop(0);
      await part.stop?.();
      await changes.stop();
      await store.close();
    },
  };
}

/** Polls `check` until it returns a truthy value; fails naming `what` after `timeoutMs`. */
export function waitFor<T>(what: string, check: Check<T>, timeoutMs = 20_000): Promise<T> {
  return pollUntil(what, check, { timeoutMs, everyMs: 25 });
}

/**
 * The agent's end of a session: sends what the test says, records what the
 * registry sends, answers commands with `onCommand` (default: echo).
 */
export class FakeAgent {
  readonly received: RegistryMessage[] = [];
  /** The call's outcome: undefined while open, null = ended OK, or the error. */
  outcome: Error | null | undefined;
  onCommand: (cmd: InstanceCommand) => { ok: boolean; output?: string; error?: string } | undefined = (cmd) => ({ ok: true, output: `echo ${cmd.command} ${cmd.args}` });
  /** What the fake agent sends, in order; closing it ends the request side. */
  private readonly queue = new AsyncQueue<AgentMessage>();
  private readonly comm = new Communicator();
  private readonly abort = new AbortController();
  readonly done: Promise<void>;

  /** `agentId`: the hello's agent identity; default one per node name (fake agents of one name are one agent, reconnecting). */
  constructor(address: string, readonly node: string, opts: { token?: string; first?: AgentMessage | null; agentId?: string; tags?: string[]; hostInfo?: Record<string, unknown> } = {}) {
    const proxy = this.comm.stringToProxy(NodeSessionProxy, address);
    const hello = {
      node, address: "127.0.0.1", agentVersion: "test", hostInfoJson: JSON.stringify(opts.hostInfo ?? { cpuCount: 2 }),
      agentId: opts.agentId ?? `fake-agent-${node}`, tags: opts.tags ?? [],
    };
    const first = opts.first === undefined ? { kind: { $case: "hello" as const, value: hello } } : opts.first;
    if (first) this.queue.push(first);
    const token = opts.token ?? CLUSTER_TOKEN;
    const stream = proxy.session(this.queue, { metadata: { authorization: `Bearer ${token}` }, signal: this.abort.signal });
    this.done = (async () => {
      try {
        for await (const msg of stream) {
          this.received.push(msg);
          if (msg.kind?.$case === "command") {
            const cmd = msg.kind.value;
            const r = this.onCommand(cmd);
            if (r) this.send({ kind: { $case: "reply", value: { requestId: cmd.requestId, ok: r.ok, output: r.output ?? "", error: r.error ?? "" } } });
          }
        }
        this.outcome = null;
      } catch (err) {
        this.outcome = err as Error;
      }
    })();
  }

  send(msg: AgentMessage): void {
    this.queue.push(msg);
  }

  heartbeat(usage: Array<{ instanceId: number; memoryBytes: number; cpuCoresUsed: number }> = [], facts: Record<string, unknown> = { cpuCount: 2, memory: { totalBytes: 1000, availableBytes: 400 } }): void {
    this.send({ kind: { $case: "heartbeat", value: { load1: 0.5, factsJson: JSON.stringify(facts), usage, sample: undefined } } });
  }

  desiredStates(): DesiredState[] {
    return this.received.flatMap((m) => (m.kind?.$case === "desired" ? [m.kind.value] : []));
  }

  lastDesired(): DesiredState | undefined {
    return this.desiredStates().at(-1);
  }

  /** Ends the request side (a clean goodbye). */
  end(): void {
    this.queue.close();
  }

  /** Cancels the call (a vanished agent) and closes the channel. */
  async close(): Promise<void> {
    this.abort.abort();
    this.end();
    await this.done;
    this.comm.close();
  }
}
