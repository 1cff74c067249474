/**
 * The "bare framed-TCP echo" stack: what the wire costs with no framework at
 * all, the ceiling the native transport is measured against.
 *
 * Frames are u32 length (of what follows) | u32 call id | payload, over one
 * TCP connection with Nagle off. The client writes the ~100-byte text as its
 * payload and resolves each call with the reply decoded back to a string;
 * the server echoes every frame with the same id. Both sides do what a
 * careful hand-written echo would: parse frames in place from each socket
 * chunk (a frame cut across chunks is gathered), gather the frames written
 * in one tick into one write, and keep calls in flight in an array by id.
 * No deadlines, metadata, errors, flow control or codecs.
 */
import * as net from "node:net";

const HEAD = 8;

/** Splits a byte stream into frames; calls `onFrame(id, buf, start, end)` for each payload. */
class Frames {
  private rest: Buffer | undefined;

  constructor(private readonly onFrame: (id: number, buf: Buffer, start: number, end: number) => void) {}

  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.rest !== undefined) {
      buf = Buffer.concat([this.rest, chunk]);
      this.rest = undefined;
    }
    let off = 0;
    while (buf.length - off >= 4) {
      const len = buf.readUInt32BE(off);
      if (buf.length - off - 4 < len) break;
      this.onFrame(buf.readUInt32BE(off + 4), buf, off + HEAD, off + 4 + len);
      off += 4 + len;
    }
    if (off < buf.length) this.rest = buf.subarray(off);
  }
}

/** Frames written in one tick, handed to the socket in one write. */
class Batch {
  private buf = Buffer.allocUnsafe(64 * 1024);
  private pos = 0;
  private scheduled = false;
  private readonly flushFn = (): void => this.flush();

  constructor(private readonly socket: net.Socket) {}

  frame(id: number, text: string | undefined, src: Buffer | undefined, start = 0, end = 0): void {
    const n = text !== undefined ? Buffer.byteLength(text) : end - start;
    if (this.pos + HEAD + n > this.buf.length) {
      this.flush();
      if (HEAD + n > this.buf.length) this.buf = Buffer.allocUnsafe(HEAD + n);
    }
    const b = this.buf;
    b.writeUInt32BE(4 + n, this.pos);
    b.writeUInt32BE(id, this.pos + 4);
    if (text !== undefined) b.write(text, this.pos + HEAD, "latin1");
    else src!.copy(b, this.pos + HEAD, start, end);
    this.pos += HEAD + n;
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(this.flushFn);
    }
  }

  private flush(): void {
    this.scheduled = false;
    if (this.pos === 0) return;
    // The socket keeps the written region; later frames go to a fresh buffer.
    this.socket.write(this.buf.subarray(0, this.pos));
    this.buf = Buffer.allocUnsafe(this.buf.length);
    this.pos = 0;
  }
}

export function startBareServer(host: string): Promise<number> {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    const out = new Batch(socket);
    const frames = new Frames((id, buf, start, end) => out.frame(id, undefined, buf, start, end));
    socket.on("data", (chunk: Buffer) => frames.push(chunk));
    socket.on("error", () => socket.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => resolve((server.address() as net.AddressInfo).port));
  });
}

export interface BareClient {
  call(text: string): Promise<string>;
  close(): void;
}

export function bareClient(host: string, port: number): Promise<BareClient> {
  const socket = net.connect({ host, port });
  socket.setNoDelay(true);
  const out = new Batch(socket);
  let waiting: Array<((s: string) => void) | undefined> = new Array(1024).fill(undefined);
  let nextId = 0;
  const frames = new Frames((id, buf, start, end) => {
    const resolve = waiting[id];
    waiting[id] = undefined;
    resolve?.(buf.toString("latin1", start, end));
  });
  socket.on("data", (chunk: Buffer) => frames.push(chunk));
  const free = (): number => {
    for (let i = 0; i < waiting.length; i++) {
      const id = (nextId + i) % waiting.length;
      if (waiting[id] === undefined) {
        nextId = id + 1;
        return id;
      }
    }
    const id = waiting.length;
    waiting = waiting.concat(new Array(waiting.length).fill(undefined));
    nextId = id + 1;
    return id;
  };
  return new Promise((resolve, reject) => {
    socket.once("error", reject);
    socket.once("connect", () => resolve({
      call: (text) => new Promise<string>((res) => {
        const id = free();
        waiting[id] = res;
        out.frame(id, text, undefined);
      }),
      close: () => socket.destroy(),
    }));
  });
}
