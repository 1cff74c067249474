/**
 * A raw `sgrid` protocol client for tests: frames built by hand from the
 * wire format documented in framework/transport/sgrid/protocol.ts (not with
 * the transport's own writer, so the tests also check that document), sent
 * over a plain socket that can misbehave at will.
 */
import * as net from "node:net";

export const T = { HELLO: 1, REQUEST: 2, MESSAGE: 3, END: 4, RESPONSE: 5, CANCEL: 6, WINDOW: 7, PING: 8, GOAWAY: 9 } as const;
export const F = { END: 1, METHOD_DEF: 2, METADATA: 4, PAYLOAD: 8, ACK: 1 } as const;

export interface Frame {
  type: number;
  flags: number;
  id: number;
  body: Buffer;
}

export function frame(type: number, flags: number, id: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(10);
  head.writeUInt32BE(6 + body.length, 0);
  head[4] = type;
  head[5] = flags;
  head.writeUInt32BE(id, 6);
  return Buffer.concat([head, body]);
}

export function hello(maxFrame = 16 * 1024 * 1024, window = 1024 * 1024): Buffer {
  const b = Buffer.alloc(13);
  b.write("SGRD", 0, "latin1");
  b[4] = 1;
  b.writeUInt32BE(maxFrame, 5);
  b.writeUInt32BE(window, 9);
  return frame(T.HELLO, 0, 0, b);
}

function u16(n: number): Buffer { const b = Buffer.alloc(2); b.writeUInt16BE(n); return b; }
function u32(n: number): Buffer { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; }

export interface RequestSpec {
  /** Interned method id; 0 (default) sends the path every time. */
  methodId?: number;
  /** Method path; sent (defining methodId) when given. */
  path?: string;
  timeoutMs?: number;
  metadata?: Record<string, string>;
  /** The whole request (unary / server-streaming); omitted for request-streaming calls. */
  payload?: Uint8Array;
}

export function request(id: number, spec: RequestSpec): Buffer {
  let flags = spec.payload ? F.END : 0;
  const parts: Buffer[] = [u16(spec.methodId ?? 0)];
  if (spec.path !== undefined) {
    flags |= F.METHOD_DEF;
    const p = Buffer.from(spec.path);
    parts.push(u16(p.length), p);
  }
  parts.push(u32(spec.timeoutMs ?? 0));
  const md = Object.entries(spec.metadata ?? {});
  if (md.length > 0) {
    flags |= F.METADATA;
    parts.push(u16(md.length));
    for (const [k, v] of md) {
      const kb = Buffer.from(k);
      const vb = Buffer.from(v);
      parts.push(u16(kb.length), kb, u32(vb.length), vb);
    }
  }
  if (spec.payload) parts.push(Buffer.from(spec.payload));
  return frame(T.REQUEST, flags, id, Buffer.concat(parts));
}

export const message = (id: number, payload: Uint8Array): Buffer => frame(T.MESSAGE, 0, id, Buffer.from(payload));
export const end = (id: number): Buffer => frame(T.END, 0, id);
export const cancel = (id: number): Buffer => frame(T.CANCEL, 0, id);
export const windowUpdate = (id: number, inc: number): Buffer => frame(T.WINDOW, 0, id, u32(inc));
export const ping = (ack = false): Buffer => frame(T.PING, ack ? F.ACK : 0, 0, Buffer.alloc(8, 7));

/** A decoded RESPONSE body. */
export interface Response {
  status: number;
  message?: string;
  code?: string;
  payload?: Buffer;
}

export function parseResponse(f: Frame): Response {
  const status = f.body[0]!;
  if (status === 0) return { status, payload: (f.flags & F.PAYLOAD) !== 0 ? f.body.subarray(1) : undefined };
  const ml = f.body.readUInt16BE(1);
  const message = f.body.toString("utf8", 3, 3 + ml);
  const cl = f.body[3 + ml]!;
  const code = f.body.toString("utf8", 4 + ml, 4 + ml + cl);
  return { status, message, code };
}

/** A socket speaking raw frames; collects every frame the server sends. */
export class RawClient {
  readonly socket: net.Socket;
  readonly frames: Frame[] = [];
  readonly closed: Promise<void>;
  private pending = Buffer.alloc(0);
  private waiters: Array<() => void> = [];

  constructor(port: number, options: { read?: boolean } = {}) {
    this.socket = net.connect({ host: "127.0.0.1", port });
    this.socket.on("error", () => undefined);
    this.closed = new Promise((resolve) => this.socket.once("close", () => { resolve(); this.wake(); }));
    if (options.read === false) {
      this.socket.pause();
      return;
    }
    this.socket.on("data", (chunk: Buffer) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      while (this.pending.length >= 4) {
        const len = this.pending.readUInt32BE(0);
        if (this.pending.length < 4 + len) break;
        const f = this.pending.subarray(4, 4 + len);
        this.frames.push({ type: f[0]!, flags: f[1]!, id: f.readUInt32BE(2), body: Buffer.from(f.subarray(6)) });
        this.pending = this.pending.subarray(4 + len);
      }
      this.wake();
    });
  }

  connected(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!this.socket.connecting) { resolve(); return; }
      this.socket.once("connect", () => resolve());
      this.socket.once("error", reject);
    });
  }

  send(...bufs: Buffer[]): void {
    for (const b of bufs) this.socket.write(b);
  }

  isClosed(): boolean {
    return this.socket.destroyed || this.socket.readyState === "closed";
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves with the first frame matching `pred` (already received or later); rejects on timeout or close. */
  async waitFrame(pred: (f: Frame) => boolean, timeoutMs = 3000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = this.frames.find(pred);
      if (f) return f;
      if (this.isClosed()) throw new Error("connection closed before the expected frame");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("timed out waiting for a frame");
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  /** Resolves true when the server closed the connection within `timeoutMs`. */
  async waitClosed(timeoutMs = 3000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([this.closed.then(() => true), new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), timeoutMs); })]);
    clearTimeout(timer);
    return r;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
