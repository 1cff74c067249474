/**
 * A registry stand-in for the node agent's tests: a real gRPC server
 * serving the generated NodeSessionServant on a loopback port, holding the
 * desired state a test sets, recording what agents send (hello, observed,
 * heartbeats, replies), and serving packages by patch id (resumable from an
 * offset; it can be told to cut a download short once).
 *
 * It speaks the node.proto contract as the real registry does: hello
 * first, then the full desired state, resent on every change.
 */
import * as crypto from "node:crypto";
import { Application, AsyncQueue, UnauthenticatedError, type DeepPartial, type ServerContext } from "sgridnext";
import { NodeSessionServant } from "sgridnext/gen/sgrid/registry/v1/node.sgrid";
import type {
  AgentMessage, CommandReply, DownloadPatchRequest, Heartbeat, InstanceDesired, InstanceObserved, NodeHello, PatchChunk, RegistryMessage,
} from "sgridnext/gen/sgrid/registry/v1/node";
import { waitFor } from "./agent-test-env";

export interface FakePatch {
  id: number;
  version: number;
  data: Buffer;
  /** Announced sha256; default: the real one. */
  sha256?: string;
}

class Servant extends NodeSessionServant {
  constructor(private readonly reg: FakeRegistry) {
    super();
  }

  session(requests: AsyncIterable<AgentMessage>, ctx: ServerContext): AsyncIterable<DeepPartial<RegistryMessage>> {
    return this.reg.serveSession(requests, ctx);
  }

  downloadPatch(request: DownloadPatchRequest, ctx: ServerContext): AsyncIterable<DeepPartial<PatchChunk>> {
    return this.reg.serveDownload(request, ctx);
  }
}

export class FakeRegistry {
  readonly hellos: NodeHello[] = [];
  readonly observed: InstanceObserved[] = [];
  readonly batches: Array<{ full: boolean; instances: InstanceObserved[] }> = [];
  readonly heartbeats: Heartbeat[] = [];
  readonly replies: CommandReply[] = [];
  readonly downloads: DownloadPatchRequest[] = [];
  readonly patches = new Map<number, FakePatch>();
  instances: InstanceDesired[] = [];
  heartbeatIntervalMs = 300;
  /** The desired state's facts_interval_ms (0: facts with every heartbeat, as registries before HostSample). */
  factsIntervalMs = 0;
  /** Cut the next download after this many bytes (once). */
  cutNextDownloadAfter: number | undefined;
  /** Bytes after which the next download stops sending without ending (a registry that hangs). */
  stallNextDownloadAfter: number | undefined;
  private readonly sessions = new Set<AsyncQueue<DeepPartial<RegistryMessage>>>();
  private app: Application | undefined;
  port = 0;

  constructor(readonly token = "cluster-secret") {}

  async start(port = this.port): Promise<number> {
    const app = new Application({ app: "Sgrid", server: "FakeRegistry", adapters: { NodeObj: `127.0.0.1:${port}` }, handleSignals: false, env: {} });
    app.addServant("NodeObj", new Servant(this));
    await app.start();
    this.app = app;
    this.port = app.adapters()[0]!.endpoint.port;
    return this.port;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Stops serving (streams are cut, as when the registry process dies). */
  async stop(): Promise<void> {
    for (const s of this.sessions) s.fail(new Error("registry stopping"));
    this.sessions.clear();
    await this.app?.stop(0);
    this.app = undefined;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  addPatch(p: FakePatch): FakePatch & { sha256: string; size: number } {
    const full = { ...p, sha256: p.sha256 ?? crypto.createHash("sha256").update(p.data).digest("hex"), size: p.data.length };
    this.patches.set(p.id, full);
    return full;
  }

  /** Replaces the desired state and pushes it to every connected agent. */
  setInstances(instances: InstanceDesired[]): void {
    this.instances = instances;
    for (const s of this.sessions) s.push(this.desiredMessage());
  }

  /** Sends an admin command to every connected agent. */
  sendCommand(cmd: { requestId: number; instanceId: number; command: string; args?: string; timeoutMs?: number }): void {
    for (const s of this.sessions) s.push({ kind: { $case: "command", value: { args: "", timeoutMs: 0, ...cmd } } });
  }

  /** Latest observed state of an instance. */
  latest(instanceId: number): InstanceObserved | undefined {
    for (let i = this.observed.length - 1; i >= 0; i--) if (this.observed[i]!.instanceId === instanceId) return this.observed[i];
    return undefined;
  }

  waitObserved(what: string, pred: (o: InstanceObserved) => boolean, timeoutMs = 20_000, from = 0): Promise<InstanceObserved> {
    return waitFor(what, () => this.observed.slice(from).find(pred), timeoutMs);
  }

  waitReply(requestId: number, timeoutMs = 15_000): Promise<CommandReply> {
    return waitFor(`reply ${requestId}`, () => this.replies.find((r) => r.requestId === requestId), timeoutMs);
  }

  private desiredMessage(): DeepPartial<RegistryMessage> {
    return { kind: { $case: "desired", value: { instances: this.instances, registry: this.address, heartbeatIntervalMs: this.heartbeatIntervalMs, factsIntervalMs: this.factsIntervalMs } } };
  }

  serveSession(requests: AsyncIterable<AgentMessage>, ctx: ServerContext): AsyncIterable<DeepPartial<RegistryMessage>> {
    if (this.token && ctx.metadata.authorization !== `Bearer ${this.token}`) {
      const q = new AsyncQueue<DeepPartial<RegistryMessage>>();
      q.fail(new UnauthenticatedError("bad cluster token"));
      return q;
    }
    const out = new AsyncQueue<DeepPartial<RegistryMessage>>();
    let helloSeen = false;
    void (async () => {
      try {
        for await (const m of requests) {
          const k = m.kind;
          if (k?.$case === "hello") {
            this.hellos.push(k.value);
            helloSeen = true;
            this.sessions.add(out);
            out.push(this.desiredMessage());
          } else if (!helloSeen) {
            throw new Error("hello must come first");
          } else if (k?.$case === "observed") {
            this.batches.push(k.value);
            this.observed.push(...k.value.instances);
          } else if (k?.$case === "heartbeat") {
            this.heartbeats.push(k.value);
          } else if (k?.$case === "reply") {
            this.replies.push(k.value);
          }
        }
        out.close();
      } catch (err) {
        out.fail(err);
      } finally {
        this.sessions.delete(out);
      }
    })();
    ctx.signal.addEventListener("abort", () => {
      this.sessions.delete(out);
      out.close();
    }, { once: true });
    return out;
  }

  async *serveDownload(req: DownloadPatchRequest, ctx: ServerContext): AsyncIterable<DeepPartial<PatchChunk>> {
    this.downloads.push(req);
    const p = this.patches.get(req.patchId);
    if (!p) throw new Error(`no patch ${req.patchId}`);
    const sha256 = p.sha256 ?? "";
    const cut = this.cutNextDownloadAfter;
    this.cutNextDownloadAfter = undefined;
    const stall = this.stallNextDownloadAfter;
    this.stallNextDownloadAfter = undefined;
    const CHUNK = 16 * 1024;
    let first = true;
    for (let off = req.offset; off < p.data.length; off += CHUNK) {
      const data = p.data.subarray(off, Math.min(off + CHUNK, p.data.length));
      if (cut !== undefined && off - req.offset >= cut) throw new Error("download cut on purpose");
      if (stall !== undefined && off - req.offset >= stall) {
        await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
        return;
      }
      yield { data, offset: off, ...(first ? { size: p.data.length, sha256 } : {}) };
      first = false;
    }
  }
}

/** An InstanceDesired with the proto's defaults filled. */
export function desiredInstance(partial: Partial<InstanceDesired> & Pick<InstanceDesired, "instanceId" | "application" | "server">): InstanceDesired {
  return {
    type: "binary",
    adapters: [],
    env: {},
    limits: undefined,
    healthCheck: undefined,
    launch: undefined,
    state: "active",
    patch: undefined,
    ...partial,
  };
}
