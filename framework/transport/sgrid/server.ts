/**
 * The `sgrid` server transport: serves bound services on one TCP (or TLS)
 * address with the native framed protocol.
 *
 * Timeouts are checked by one sweep timer for all connections (not one timer
 * per connection): a connection must send its HELLO within
 * handshakeTimeoutMs, a frame must complete within frameTimeoutMs of its
 * first byte, and a connection that sends nothing for idleTimeoutMs is closed.
 *
 * Graceful shutdown: stop accepting, send GOAWAY on every connection (their
 * clients send no new call there; calls that raced it get UNAVAILABLE, so
 * they fail over), wait for the calls in flight up to the grace period, then
 * close whatever is left.
 */
import * as net from "node:net";
import * as tls from "node:tls";
import { bindErrorFrom } from "../../errors";
import { getLogger } from "../../logger";
import { PeriodicTask } from "../../primitives";
import type { BoundService, ServerTransport, ServerTransportFactory } from "../base";
import { resolveServerOptions, type ResolvedServerOptions, type SgridServerOptions } from "./options";
import type { CloseReason } from "./protocol";
import type { HandlerEntry } from "./server-call";
import { ServerConnection, type ConnectionHost } from "./server-connection";

const log = getLogger("transport.sgrid");

/** Reasons that are routine and logged at debug level only. */
const QUIET_REASONS: ReadonlySet<CloseReason> = new Set(["peer_closed", "shutdown"]);

export interface SgridServerStats {
  /** Open connections. */
  connections: number;
  /** Calls in flight. */
  inflight: number;
  /** Connections closed so far, by reason. */
  closed: Partial<Record<CloseReason, number>>;
}

export class SgridServerTransport implements ServerTransport, ConnectionHost {
  readonly protocol = "sgrid";
  readonly options: ResolvedServerOptions;
  private readonly handlers = new Map<string, HandlerEntry>();
  private readonly conns = new Set<ServerConnection>();
  private readonly closedByReason: Partial<Record<CloseReason, number>> = {};
  private server: net.Server | undefined;
  private sweeper: PeriodicTask | undefined;
  private inFlight = 0;
  private stopping: Promise<void> | undefined;
  private drained: (() => void) | undefined;
  private allClosed: (() => void) | undefined;

  constructor(options?: SgridServerOptions | Record<string, unknown>) {
    this.options = resolveServerOptions(options);
  }

  addService(service: BoundService): void {
    if (this.server) throw new TypeError("addService must be called before listen()");
    for (const [path, entry] of service.handlers) {
      if (this.handlers.has(path)) throw new TypeError(`method ${path} is already served on this adapter`);
      this.handlers.set(path, entry);
    }
  }

  listen(host: string, port: number): Promise<number> {
    if (this.server) return Promise.reject(new TypeError("listen() called twice"));
    const t = this.options.tls;
    const server = t
      ? tls.createServer({
        key: t.key, cert: t.cert, ca: t.ca,
        requestCert: t.requestCert ?? false,
        rejectUnauthorized: t.requestCert ?? false,
        handshakeTimeout: this.options.handshakeTimeoutMs,
      }, (socket) => this.accept(socket))
      : net.createServer((socket) => this.accept(socket));
    if (t) {
      server.on("tlsClientError", (err: Error, socket: tls.TLSSocket) => {
        this.count("bad_handshake");
        log.warn({ peer: `${socket.remoteAddress}:${socket.remotePort}`, reason: "bad_handshake", detail: err.message }, "closing sgrid connection");
      });
    }
    this.server = server;
    return new Promise<number>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => reject(bindErrorFrom(err, host, port));
      server.once("error", onError);
      server.listen(port, host, () => {
        server.removeListener("error", onError);
        server.on("error", (err) => log.error({ err }, "sgrid listener failed"));
        const bound = (server.address() as net.AddressInfo).port;
        const o = this.options;
        const every = Math.max(5, Math.min(1000, Math.floor(Math.min(o.handshakeTimeoutMs, o.frameTimeoutMs, o.idleTimeoutMs) / 4)));
        this.sweeper = new PeriodicTask(() => this.sweep(), { intervalMs: every }).start();
        log.debug({ host, port: bound, tls: !!t }, "sgrid adapter listening");
        resolve(bound);
      });
    });
  }

  private accept(socket: net.Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    socket.on("error", () => undefined); // reported through the connection's close
    this.conns.add(new ServerConnection(this, socket));
  }

  private sweep(): void {
    const now = Date.now();
    const o = this.options;
    for (const c of this.conns) {
      if (c.state === "handshake" && now - c.since > o.handshakeTimeoutMs) {
        c.close("handshake_timeout", `no HELLO within ${o.handshakeTimeoutMs} ms`);
      } else if (c.hasPartialFrame() && now - c.partialSince() > o.frameTimeoutMs) {
        c.close("truncated_frame", `a frame stayed incomplete for ${o.frameTimeoutMs} ms`);
      } else if (now - c.lastReadAt > o.idleTimeoutMs) {
        c.close("idle_timeout", `nothing received for ${o.idleTimeoutMs} ms`);
      }
    }
  }

  private count(reason: CloseReason): void {
    this.closedByReason[reason] = (this.closedByReason[reason] ?? 0) + 1;
  }

  // ---- ConnectionHost -------------------------------------------------------------------
  lookup(path: string): HandlerEntry | undefined {
    return this.handlers.get(path);
  }

  callStarted(): void {
    this.inFlight++;
  }

  callFinished(): void {
    this.inFlight--;
    if (this.inFlight === 0 && this.drained) this.drained();
  }

  connectionClosed(conn: ServerConnection, reason: CloseReason, detail: string): void {
    this.conns.delete(conn);
    if (this.conns.size === 0 && this.allClosed) this.allClosed();
    this.count(reason);
    if (QUIET_REASONS.has(reason)) log.debug({ peer: conn.peer, reason, detail }, "sgrid connection closed");
    else log.warn({ peer: conn.peer, reason, detail }, "closing sgrid connection");
  }

  logUnexpected(err: unknown, method: string): void {
    log.error({ err, method }, "servant method threw an unexpected error; caller gets INTERNAL");
  }

  // ---- ServerTransport --------------------------------------------------------------------
  inflight(): number {
    return this.inFlight;
  }

  connections(): Array<{ peer: string; protocol: string; since: number }> {
    return [...this.conns].map((c) => ({ peer: c.peer, protocol: "sgrid", since: c.since }));
  }

  /** Counters for `sgrid.connections` and tests. */
  stats(): SgridServerStats {
    return { connections: this.conns.size, inflight: this.inFlight, closed: { ...this.closedByReason } };
  }

  shutdown(graceMs: number): Promise<void> {
    this.stopping ??= (async () => {
      const server = this.server;
      const listenerClosed = new Promise<void>((resolve) => {
        if (!server || !server.listening) resolve();
        else server.close(() => resolve());
      });
      for (const c of [...this.conns]) c.goaway("the server is shutting down");
      if (this.inFlight > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((resolve) => { this.drained = resolve; }),
          new Promise<void>((resolve) => { timer = setTimeout(resolve, graceMs); }),
        ]);
        clearTimeout(timer);
        if (this.inFlight > 0) log.warn({ inflight: this.inFlight, graceMs }, "sgrid shutdown: grace period over, closing calls still in flight");
      }
      for (const c of [...this.conns]) {
        if (c.size() > 0) c.close("shutdown", "grace period over");
        else c.end();
      }
      void this.sweeper?.stop();
      // Ended connections close once their peer closes too (end() forces it after 2 s). The listener's
      // callback can run before the last socket's own close event, so both are awaited.
      const allClosed = this.conns.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => { this.allClosed = resolve; });
      let waitTimer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all([listenerClosed, allClosed]), new Promise<void>((resolve) => { waitTimer = setTimeout(resolve, 3000); })]);
      clearTimeout(waitTimer);
    })();
    return this.stopping;
  }
}

/** The factory registered for protocol `sgrid`; per-server options come from Application's transportOptions.sgrid. */
export function sgridServerFactory(): ServerTransportFactory {
  return { protocol: "sgrid", createServer: (options) => new SgridServerTransport(options) };
}
