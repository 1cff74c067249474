/**
 * A minimal registry stand-in for the agent benchmark: serves the node
 * session (desired state for the instances the benchmark sets, package
 * downloads) on a loopback port and records what the agent reports.
 * Kept apart from the tests' stand-in so the benchmark has no test imports.
 */
import * as crypto from "node:crypto";
import { Application, AsyncQueue, type DeepPartial, type ServerContext } from "sgridnext";
import { NodeSessionServant } from "sgridnext/gen/sgrid/registry/v1/node.sgrid";
import type { AgentMessage, DownloadPatchRequest, InstanceDesired, InstanceObserved, PatchChunk, RegistryMessage } from "sgridnext/gen/sgrid/registry/v1/node";

export class StandInRegistry extends NodeSessionServant {
  readonly observed = new Map<number, InstanceObserved>();
  /** Every observed report, in arrival order, with the time it arrived (ms since the epoch). */
  readonly reports: Array<{ at: number; o: InstanceObserved }> = [];
  hellos = 0;
  private instances: InstanceDesired[] = [];
  private readonly sessions = new Set<AsyncQueue<DeepPartial<RegistryMessage>>>();
  private readonly patches = new Map<number, Buffer>();
  private app: Application | undefined;
  address = "";

  async start(): Promise<string> {
    const app = new Application({ app: "Bench", server: "Registry", adapters: { NodeObj: "127.0.0.1:0" }, handleSignals: false, env: {} });
    app.addServant("NodeObj", this);
    await app.start();
    this.app = app;
    this.address = `127.0.0.1:${app.adapters()[0]!.endpoint.port}`;
    return this.address;
  }

  async stop(): Promise<void> {
    for (const s of this.sessions) s.close();
    await this.app?.stop(0);
  }

  addPatch(id: number, data: Buffer): { id: number; sha256: string; size: number } {
    this.patches.set(id, data);
    return { id, sha256: crypto.createHash("sha256").update(data).digest("hex"), size: data.length };
  }

  setInstances(instances: InstanceDesired[]): void {
    this.instances = instances;
    for (const s of this.sessions) s.push(this.desired());
  }

  private desired(): DeepPartial<RegistryMessage> {
    return { kind: { $case: "desired", value: { instances: this.instances, registry: this.address, heartbeatIntervalMs: 5000 } } };
  }

  session(requests: AsyncIterable<AgentMessage>, ctx: ServerContext): AsyncIterable<DeepPartial<RegistryMessage>> {
    const out = new AsyncQueue<DeepPartial<RegistryMessage>>();
    void (async () => {
      try {
        for await (const m of requests) {
          if (m.kind?.$case === "hello") {
            this.hellos++;
            this.sessions.add(out);
            out.push(this.desired());
          } else if (m.kind?.$case === "observed") {
            const at = Date.now();
            for (const o of m.kind.value.instances) {
              this.observed.set(o.instanceId, o);
              this.reports.push({ at, o });
            }
          }
        }
      } catch {
        // the agent went away
      } finally {
        this.sessions.delete(out);
        out.close();
      }
    })();
    ctx.signal.addEventListener("abort", () => out.close(), { once: true });
    return out;
  }

  async *downloadPatch(req: DownloadPatchRequest): AsyncIterable<DeepPartial<PatchChunk>> {
    const data = this.patches.get(req.patchId);
    if (!data) throw new Error(`no patch ${req.patchId}`);
    for (let off = req.offset; off < data.length; off += 64 * 1024) yield { data: data.subarray(off, off + 64 * 1024), offset: off };
  }
}
