/**
 * A second request message on a unary or server-streaming call over the gRPC
 * adapter: grpc-js fails that call at once, UNIMPLEMENTED (gRPC's request
 * cardinality violation, grpc/grpc doc/statuscodes.md), before the servant
 * runs, and the connection keeps serving. The native transport does the same
 * (test/framework/transport-sgrid-hostile.test.ts).
 */
import { expect } from "chai";
import * as http2 from "node:http2";
import { Application } from "sgridnext";
import { EchoReply, EchoRequest } from "../gen/demo/echo";
import { EchoImpl } from "../helpers/echo-servant";

function message(text: string, count = 0): Buffer {
  const body = Buffer.from(EchoRequest.encode(EchoRequest.fromPartial({ text, count })).finish());
  const out = Buffer.alloc(5 + body.length);
  out.writeUInt32BE(body.length, 1);
  body.copy(out, 5);
  return out;
}

describe("gRPC adapter: a second request message on a method that takes one", function () {
  this.timeout(20_000);
  let app: Application;
  let session: http2.ClientHttp2Session;
  const echo = new EchoImpl();

  before(async () => {
    app = new Application({ handleSignals: false, app: "Test", server: "Cardinality", adapters: { EchoObj: "127.0.0.1:0" } });
    app.addServant("EchoObj", echo);
    await app.start();
    session = http2.connect(`http://127.0.0.1:${app.adapters()[0]!.endpoint.port}`);
  });

  after(async () => {
    session?.close();
    await app?.stop(500);
  });

  /**
   * Sends `messages` on `method`, half-closing only when told (a server that waited for the end of the request
   * would answer only at the deadline, a minute away), and resolves with the status and the reply bytes before it.
   */
  function call(method: string, messages: Buffer[], halfClose: boolean): Promise<{ status: number; message: string; reply: Buffer }> {
    return new Promise((resolve, reject) => {
      const req = session.request({ ":method": "POST", ":path": `/demo.echo.v1.Echo/${method}`, "content-type": "application/grpc", te: "trailers", "grpc-timeout": "60S" });
      const chunks: Buffer[] = [];
      const take = (h: http2.IncomingHttpHeaders) => {
        if (h["grpc-status"] === undefined) return;
        resolve({ status: Number(h["grpc-status"]), message: decodeURIComponent(String(h["grpc-message"] ?? "")), reply: Buffer.concat(chunks) });
        req.close();
      };
      req.on("response", take);
      req.on("trailers", take);
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("error", reject);
      for (const m of messages) req.write(m);
      if (halfClose) req.end();
    });
  }

  for (const [method, first] of [["Say", message("one")], ["Repeat", message("one", 3)]] as const) {
    it(`${method}: two messages fail the call UNIMPLEMENTED before the servant runs; the connection goes on serving`, async () => {
      const calls = echo.calls;
      const r = await call(method, [first, message("two")], false);
      expect(r.status).to.equal(12);
      expect(r.message).to.match(/second request message/);
      expect(r.reply.length, "reply bytes").to.equal(0);
      if (method === "Say") expect(echo.calls, "Say's servant calls").to.equal(calls);
      const ok = await call("Say", [message("after")], true);
      expect(ok.status).to.equal(0);
      expect(EchoReply.decode(ok.reply.subarray(5)).text).to.equal("after");
    });
  }
});
