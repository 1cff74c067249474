/**
 * A node-agent stand-in for framework tests: serves the generated Agent
 * service (the local channel) on a real loopback port, records hellos,
 * AdaptersReady and keepalives per connection, and sends commands to a
 * connected servant by instance id, waiting for its CommandResult.
 */
import { EventEmitter } from "node:events";
import { Application, type DeepPartial, type ServerContext } from "sgridnext";
import { AgentServant } from "sgridnext/gen/sgrid/agent/v1/agent.sgrid";
import type { AgentMessage, CommandResult, ServantHello, ServantMessage } from "sgridnext/gen/sgrid/agent/v1/agent";

/** A minimal push-fed async iterable (the outgoing side of the stream). */
class Outbox implements AsyncIterable<DeepPartial<AgentMessage>> {
  private readonly items: Array<DeepPartial<AgentMessage>> = [];
  private wake: (() => void) | undefined;
  private ended = false;
  push(m: DeepPartial<AgentMessage>): void { this.items.push(m); this.wake?.(); }
  end(): void { this.ended = true; this.wake?.(); }
  async *[Symbol.asyncIterator](): AsyncIterator<DeepPartial<AgentMessage>> {
    while (true) {
      const m = this.items.shift();
      if (m) { yield m; continue; }
      if (this.ended) return;
      await new Promise<void>((r) => { this.wake = r; });
      this.wake = undefined;
    }
  }
}

export interface ServantConnection {
  hello: ServantHello;
  ready: string[][];
  keepalives: number;
  outbox: Outbox;
  open: boolean;
}

export class StandInAgent extends AgentServant {
  readonly connections: ServantConnection[] = [];
  readonly events = new EventEmitter();
  /** Accepted token per instance id; a hello with another token is refused (the stream ends). */
  readonly tokens = new Map<string, string>();
  keepaliveIntervalMs = 100;
  /** Hellos refused for a wrong token, by instance id. */
  readonly refused = new Map<string, number>();
  private nextId = 1;
  private readonly pending = new Map<number, (r: CommandResult) => void>();
  private app: Application | undefined;
  port = 0;

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const app = new Application({ app: "Sgrid", server: "Agent", handleSignals: false, agent: "", registry: "", adapters: { AgentObj: `127.0.0.1:${this.port}` } });
    app.addServant("AgentObj", this);
    await app.start();
    this.port = app.adapters()[0]!.endpoint.port;
    this.app = app;
  }

  async stop(): Promise<void> {
    for (const c of this.connections) c.outbox.end();
    await this.app?.stop(100);
    this.app = undefined;
  }

  /** The open connection of an instance. */
  connection(instanceId: string): ServantConnection | undefined {
    return [...this.connections].reverse().find((c) => c.open && c.hello.instanceId === instanceId);
  }

  /** Sends a command to an instance and waits for its result. */
  send(instanceId: string, command: string, args = ""): Promise<CommandResult> {
    const conn = this.connection(instanceId);
    if (!conn) throw new Error(`instance ${instanceId} is not connected`);
    const requestId = this.nextId++;
    const result = new Promise<CommandResult>((resolve) => this.pending.set(requestId, resolve));
    conn.outbox.push({ kind: { $case: "command", value: { requestId, command, args } } });
    return result;
  }

  channel(requests: AsyncIterable<ServantMessage>, ctx: ServerContext): AsyncIterable<DeepPartial<AgentMessage>> {
    const outbox = new Outbox();
    let conn: ServantConnection | undefined;
    void (async () => {
      try {
        for await (const m of requests) {
          const kind = m.kind;
          if (!kind) continue;
          if (kind.$case === "hello") {
            const want = this.tokens.get(kind.value.instanceId);
            if (want !== undefined && want !== kind.value.token) {
              this.refused.set(kind.value.instanceId, (this.refused.get(kind.value.instanceId) ?? 0) + 1);
              outbox.end();
              return;
            }
            conn = { hello: kind.value, ready: [], keepalives: 0, outbox, open: true };
            this.connections.push(conn);
            outbox.push({ kind: { $case: "settings", value: { intervalMs: this.keepaliveIntervalMs } } });
            this.events.emit("hello", conn);
          } else if (kind.$case === "ready" && conn) {
            conn.ready.push(kind.value.objs);
          } else if (kind.$case === "keepalive" && conn) {
            conn.keepalives++;
          } else if (kind.$case === "result") {
            this.pending.get(kind.value.requestId)?.(kind.value);
            this.pending.delete(kind.value.requestId);
          }
        }
      } catch {
        // the servant went away
      } finally {
        if (conn) conn.open = false;
        outbox.end();
      }
    })();
    ctx.signal.addEventListener("abort", () => outbox.end(), { once: true });
    return outbox;
  }
}
