/**
 * The NodeSession API (Sgrid.Registry.NodeObj): the agent's long-lived
 * session stream and package downloads. Both require the cluster token
 * (`ctx.auth.requireCluster`: UNAUTHENTICATED otherwise).
 *
 * Session protocol: the first message must be hello, within helloTimeoutMs
 * (INVALID_ARGUMENT for another message, DEADLINE_EXCEEDED for none); the
 * registry answers with the node's full desired state at once, then a new
 * one whenever it changes, plus admin commands. The session ends when the
 * agent closes its side or cancels, when a newer session of the same node
 * replaces it (FAILED_PRECONDITION), when the agent is silent for the
 * heartbeat timeout (DEADLINE_EXCEEDED), or at registry shutdown
 * (UNAVAILABLE). What the registry does with each message: see NodeSessionHub.
 */
import { DeadlineExceededError, InvalidArgumentError, type ServerContext, eachMessage } from "sgridnext";
import type { AgentMessage, DownloadPatchRequest, PatchChunk, RegistryMessage } from "sgridnext/gen/sgrid/registry/v1/node";
import { NodeSessionServant } from "sgridnext/gen/sgrid/registry/v1/node.sgrid";
import type { RegistryContext } from "../server/context";
import type { NodeSessionHub } from "./session-hub";

/**
 * Package bytes per PatchChunk: 512 KiB, well under gRPC's 4 MiB default message limit. Every
 * message costs each side a pass through grpc-js' layers, an encode, a decode and an await on
 * each stage of the agent's download; 64 KiB messages cost the two sides about twice the CPU of
 * 512 KiB ones for the same bytes. Below the codec's 1 MiB shared-writer limit (framework/codec.ts),
 * so encoding reuses one buffer.
 */
export const PATCH_CHUNK_BYTES = 512 * 1024;

export interface NodeSessionServantOptions {
  /** How long a new session may take to send hello, ms. Default: the heartbeat timeout (15 s by default). */
  helloTimeoutMs?: number;
}

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export class NodeSessionServantImpl extends NodeSessionServant {
  private readonly helloTimeoutMs: number;

  constructor(private readonly ctx: RegistryContext, private readonly hub: NodeSessionHub, options: NodeSessionServantOptions = {}) {
    super();
    this.helloTimeoutMs = options.helloTimeoutMs ?? ctx.settings.heartbeatTimeoutMs;
  }

  async *session(requests: AsyncIterable<AgentMessage>, call: ServerContext): AsyncIterable<RegistryMessage> {
    this.ctx.auth.requireCluster(call);
    const it = requests[Symbol.asyncIterator]();
    const first = await withTimeout(it.next(), this.helloTimeoutMs,
      () => new DeadlineExceededError(`node session from ${call.peer}: no hello within ${this.helloTimeoutMs} ms`));
    if (first.done) throw new InvalidArgumentError(`node session from ${call.peer} ended before its hello`);
    const kind = first.value.kind;
    if (kind?.$case !== "hello") {
      throw new InvalidArgumentError(`the first message of a node session must be hello, got ${kind?.$case ?? "an empty message"} (from ${call.peer})`);
    }
    const session = await this.hub.open(kind.value, call.peer);
    const onAbort = (): void => session.close();
    call.signal.addEventListener("abort", onAbort, { once: true });
    // Reads the agent's messages in order, by push (no promise per heartbeat waiting the interval
    // out on each of thousands of sessions: framework/primitives/each-message.ts); the session's
    // end stops the reading. A promise from handle() holds the next message (backpressure).
    const stopped = new Error("session closed");
    eachMessage(requests, (m) => {
      if (session.closed) throw stopped;
      return this.hub.handle(session, m);
    }).then(() => session.close(), (err: unknown) => {
      session.close(err instanceof InvalidArgumentError ? err : undefined);
    });
    try {
      yield* session.messages();
    } finally {
      call.signal.removeEventListener("abort", onAbort);
      this.hub.detach(session);
    }
  }

  async *downloadPatch(request: DownloadPatchRequest, call: ServerContext): AsyncIterable<PatchChunk> {
    this.ctx.auth.requireCluster(call);
    const patch = await this.ctx.store.patches.get(request.patchId);
    const start = request.offset;
    if (start > patch.size) {
      throw new InvalidArgumentError(`offset ${start} is past the end of patch ${patch.id} (${patch.application}.${patch.server} version ${patch.version}, ${patch.size} bytes)`, { patchId: patch.id });
    }
    const stream = await this.ctx.storage.get(patch.storageKey, start);
    let offset = start;
    let first = true;
    const chunk = (data: Buffer): PatchChunk => {
      const c: PatchChunk = { data, offset, size: first ? patch.size : 0, sha256: first ? patch.sha256 : "" };
      first = false;
      offset += data.length;
      return c;
    };
    try {
      let parts: Buffer[] = [];
      let buffered = 0;
      for await (const raw of stream) {
        if (call.signal.aborted) return;
        const b = Buffer.isBuffer(raw) ? raw : Buffer.from(raw as Uint8Array);
        parts.push(b);
        buffered += b.length;
        while (buffered >= PATCH_CHUNK_BYTES) {
          const all = parts.length === 1 ? parts[0]! : Buffer.concat(parts, buffered);
          yield chunk(all.subarray(0, PATCH_CHUNK_BYTES));
          const rest = all.subarray(PATCH_CHUNK_BYTES);
          parts = rest.length > 0 ? [rest] : [];
          buffered = rest.length;
        }
      }
      // The tail, or one empty chunk (with size and sha256) when resuming at the very end.
      if (buffered > 0 || first) yield chunk(Buffer.concat(parts, buffered));
    } finally {
      stream.destroy();
    }
  }
}
