/**
 * The HTTP/2 connections of one gRPC channel, and how many calls each holds.
 *
 * Node's HTTP/2 (nghttp2) closes a whole connection with GOAWAY
 * INTERNAL_ERROR when a peer resets more than 1,000 streams in a burst (the
 * "rapid reset" guard; Node 20 cannot raise it), so 2,000 watches on one
 * connection, cancelled together, took every call on it down. A connection
 * here carries at most `maxCallsPerConnection` calls in flight (900: below
 * that burst, and below the 1,000 concurrent streams a Sgrid server allows);
 * the next call opens another connection to the same endpoint, up to
 * `maxConnections`. Past that a call is refused at once with
 * RESOURCE_EXHAUSTED, and the calls in flight go on undisturbed. Idle
 * extra connections are closed.
 */
import * as grpc from "@grpc/grpc-js";
import { ResourceExhaustedError } from "../../errors";

export interface ConnectionLimits {
  /** Calls in flight on one connection. Default 900. */
  maxCallsPerConnection?: number;
  /** Connections to one endpoint (per compression setting). Default 8. */
  maxConnections?: number;
}

export const CONNECTION_LIMITS_DEFAULTS = Object.freeze({ maxCallsPerConnection: 900, maxConnections: 8 });

/** One connection and the calls it holds (take / give: the unary path's hold, no object per call). */
export interface Slot {
  readonly client: grpc.Client;
  calls: number;
}

/** A call's hold on its connection: release it when the call has ended (idempotent). */
export interface Lease {
  readonly client: grpc.Client;
  release(): void;
}

export class ConnectionPool {
  private readonly slots: Slot[] = [];
  private readonly perConnection: number;
  private readonly maxConnections: number;

  /** `open(i)` makes the i-th connection's client (each must own its connection: a local subchannel pool). */
  constructor(private readonly open: (index: number) => grpc.Client, private readonly label: string, limits: ConnectionLimits = {}) {
    for (const k of ["maxCallsPerConnection", "maxConnections"] as const) {
      const v = limits[k];
      if (v !== undefined && !(Number.isInteger(v) && v > 0)) throw new TypeError(`${k} must be a positive integer, got ${v}`);
    }
    this.perConnection = limits.maxCallsPerConnection ?? CONNECTION_LIMITS_DEFAULTS.maxCallsPerConnection;
    this.maxConnections = limits.maxConnections ?? CONNECTION_LIMITS_DEFAULTS.maxConnections;
  }

  /** The first connection's client (made if needed), for connectivity state. */
  first(): grpc.Client {
    return (this.slots[0] ??= { client: this.open(0), calls: 0 }).client;
  }

  /** A connection with room for one more call, counted until give(slot). Throws ResourceExhaustedError when every allowed connection is full. */
  take(): Slot {
    const slots = this.slots;
    let slot: Slot | undefined;
    for (let i = 0; i < slots.length; i++) {
      if (slots[i]!.calls < this.perConnection) { slot = slots[i]; break; }
    }
    if (slot === undefined) {
      if (slots.length >= this.maxConnections) {
        throw new ResourceExhaustedError(`${this.label}: ${slots.length * this.perConnection} calls already in flight on ${slots.length} connection(s) (at most ${this.perConnection} each); call refused`);
      }
      slot = { client: this.open(slots.length), calls: 0 };
      slots.push(slot);
    }
    slot.calls++;
    return slot;
  }

  /** Ends a call's hold taken with take() (exactly once per take). */
  give(slot: Slot): void {
    slot.calls--;
    if (this.slots.length > 1) this.closeIdleExtras();
  }

  /** take() as a Lease whose release is idempotent (the streaming calls'). */
  acquire(): Lease {
    const held = this.take();
    let released = false;
    return {
      client: held.client,
      release: () => {
        if (released) return;
        released = true;
        this.give(held);
      },
    };
  }

  /** Closes extra connections (all but the first) that no call uses any more. */
  private closeIdleExtras(): void {
    for (let i = this.slots.length - 1; i > 0; i--) {
      const s = this.slots[i]!;
      if (s.calls > 0) break;
      s.client.close();
      this.slots.pop();
    }
  }

  /** Calls in flight per connection (for tests and `sgrid.connections`). */
  callsPerConnection(): number[] {
    return this.slots.map((s) => s.calls);
  }

  close(): void {
    for (const s of this.slots.splice(0)) s.client.close();
  }
}
