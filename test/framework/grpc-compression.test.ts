/**
 * gzip on the gRPC transport: a proxy compresses request messages when asked
 * (per proxy, per call), as a raw HTTP/2 peer sees on the wire; a Sgrid
 * servant accepts compressed requests; a compressed message that does not
 * inflate is a clear error and the connection keeps serving. (Compressed
 * responses decompressed by a proxy: the interop suite's
 * server_compressed_unary against Python grpcio.)
 */
import { expect } from "chai";
import * as http2 from "node:http2";
import * as zlib from "node:zlib";
import { Application, Communicator, errorFromWire, InternalError } from "sgridnext";
import { EchoProxy } from "../gen/demo/echo.sgrid";
import { EchoReply, EchoRequest } from "../gen/demo/echo";
import { EchoImpl } from "../helpers/echo-servant";

interface Seen {
  encoding: string | undefined;
  compressedFlag: number;
  request: EchoRequest;
}

function frame(flag: number, body: Buffer): Buffer {
  const out = Buffer.alloc(5 + body.length);
  out[0] = flag;
  out.writeUInt32BE(body.length, 1);
  body.copy(out, 5);
  return out;
}

/** A bare HTTP/2 gRPC server that records the encoding header and the message's compressed flag, and answers Say. */
async function rawServer(): Promise<{ port: number; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => {
      const all = Buffer.concat(chunks);
      const flag = all[0]!;
      const body = all.subarray(5, 5 + all.readUInt32BE(1));
      const encoding = headers["grpc-encoding"] as string | undefined;
      const plain = flag === 1 ? zlib.gunzipSync(body) : body;
      const request = EchoRequest.decode(plain);
      seen.push({ encoding, compressedFlag: flag, request });
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(frame(0, Buffer.from(EchoReply.encode(EchoReply.fromPartial({ text: request.text })).finish())));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return { port, seen, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe("framework gzip compression on gRPC", function () {
  this.timeout(30_000);

  it("compresses request messages per proxy and per call, and not otherwise", async () => {
    const raw = await rawServer();
    const comm = new Communicator();
    try {
      const text = "compress me ".repeat(200);
      const plain = comm.stringToProxy(EchoProxy, `127.0.0.1:${raw.port}`);
      const gzipped = comm.stringToProxy(EchoProxy, `127.0.0.1:${raw.port}`, { compression: "gzip" });
      expect((await plain.say({ text })).text).to.equal(text);
      expect((await gzipped.say({ text })).text).to.equal(text);
      expect((await plain.say({ text }, { compression: "gzip" })).text).to.equal(text);
      expect((await gzipped.say({ text }, { compression: "identity" })).text).to.equal(text);
      expect(raw.seen.map((s) => [s.encoding ?? "identity", s.compressedFlag])).to.deep.equal([["identity", 0], ["gzip", 1], ["gzip", 1], ["identity", 0]]);
      for (const s of raw.seen) expect(s.request.text).to.equal(text);
      expect(() => comm.stringToProxy(EchoProxy, `127.0.0.1:${raw.port}`, { compression: "brotli" as never })).to.throw(/compression must be/);
    } finally {
      comm.close();
      await raw.close();
    }
  });

  it("a Sgrid servant accepts compressed requests on every call kind", async () => {
    const app = new Application({ handleSignals: false, app: "Test", server: "Gz", adapters: { EchoObj: "127.0.0.1:0" } });
    app.addServant("EchoObj", new EchoImpl());
    await app.start();
    const comm = new Communicator();
    try {
      const proxy = comm.stringToProxy(EchoProxy, `127.0.0.1:${app.adapters()[0]!.endpoint.port}`, { compression: "gzip" });
      const text = "z".repeat(50_000);
      expect((await proxy.say({ text })).text).to.equal(text);
      async function* reqs() { for (let i = 1; i <= 3; i++) yield { text, count: i }; }
      expect(Number((await proxy.sum(reqs())).total)).to.equal(6);
      const echoed: string[] = [];
      for await (const r of proxy.chat(reqs())) echoed.push(r.text);
      expect(echoed).to.deep.equal([text, text, text]);
    } finally {
      comm.close();
      await app.stop(500);
    }
  });

  it("a compressed message that does not inflate gets a clear INTERNAL error, and the connection keeps serving", async () => {
    const app = new Application({ handleSignals: false, app: "Test", server: "GzBad", adapters: { EchoObj: "127.0.0.1:0" } });
    app.addServant("EchoObj", new EchoImpl());
    await app.start();
    const port = app.adapters()[0]!.endpoint.port;
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const call = (flag: number, body: Buffer) => new Promise<{ status: number; message: string; reply?: EchoReply }>((resolve, reject) => {
        const req = session.request({ ":method": "POST", ":path": "/demo.echo.v1.Echo/Say", "content-type": "application/grpc", te: "trailers", "grpc-encoding": "gzip" });
        const chunks: Buffer[] = [];
        let status = -1;
        let message = "";
        const take = (h: http2.IncomingHttpHeaders) => {
          if (h["grpc-status"] !== undefined) { status = Number(h["grpc-status"]); message = decodeURIComponent(String(h["grpc-message"] ?? "")); }
        };
        req.on("response", take);
        req.on("trailers", take);
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("error", reject);
        req.on("end", () => {
          const all = Buffer.concat(chunks);
          resolve({ status, message, reply: all.length >= 5 ? EchoReply.decode(all.subarray(5, 5 + all.readUInt32BE(1))) : undefined });
        });
        req.end(frame(flag, body));
      });
      const bad = await call(1, Buffer.from("this is not gzip at all"));
      const err = errorFromWire(bad.status, bad.message);
      expect(err).to.be.instanceOf(InternalError);
      expect(err.message).to.match(/decompress/i);
      const good = await call(1, zlib.gzipSync(Buffer.from(EchoRequest.encode(EchoRequest.fromPartial({ text: "fine" })).finish())));
      expect(good.status).to.equal(0);
      expect(good.reply?.text).to.equal("fine");
    } finally {
      session.close();
      await app.stop(500);
    }
  });
});
