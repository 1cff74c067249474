/**
 * A real Forwarder that also keeps the request metadata each forwarded call
 * hands to the backend, by path: what the backend receives before its own
 * transport filters it (a Sgrid servant's ctx.metadata leaves Sgrid's error
 * keys out, so it cannot show whether the gateway forwarded them).
 */
import type { Metadata } from "sgridnext";
import { Forwarder, type ForwardCall } from "../../gateway/forwarder";

export class RecordingForwarder extends Forwarder {
  /** path -> the metadata of the last call forwarded on it. */
  readonly forwarded = new Map<string, Metadata>();

  override unary(path: string, request: Uint8Array, call: ForwardCall): Promise<Buffer> {
    this.forwarded.set(path, call.metadata);
    return super.unary(path, request, call);
  }

  override serverStream(path: string, request: Uint8Array, call: ForwardCall): AsyncIterable<Buffer> {
    this.forwarded.set(path, call.metadata);
    return super.serverStream(path, request, call);
  }

  override clientStream(path: string, requests: AsyncIterable<Uint8Array>, call: ForwardCall): Promise<Buffer> {
    this.forwarded.set(path, call.metadata);
    return super.clientStream(path, requests, call);
  }

  override bidi(path: string, requests: AsyncIterable<Uint8Array>, call: ForwardCall): AsyncIterable<Buffer> {
    this.forwarded.set(path, call.metadata);
    return super.bidi(path, requests, call);
  }
}
