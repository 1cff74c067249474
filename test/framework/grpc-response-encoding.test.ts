/**
 * The gRPC server encodes responses into the codec's shared writer and hands
 * grpc-js a view of it (framework/transport/grpc/server.ts): each response
 * must still arrive exactly as its servant made it, however many are in
 * flight on how many calls, however large, and with other calls' responses
 * encoded in between.
 */
import { expect } from "chai";
import { Application, Communicator, type DeepPartial, type ServerContext } from "sgridnext";
import { EchoProxy } from "../gen/demo/echo.sgrid";
import type { EchoReply, EchoRequest } from "../gen/demo/echo";
import { EchoImpl } from "../helpers/echo-servant";

/** The text of message `i` of a stream of `text` (sizes from 1 byte to past the codec's 1 MiB shared-writer limit). */
function body(text: string, i: number): string {
  const size = [1, 100, 70_000, 600_000, 1_100_000][i % 5]!;
  return `${text}:${i}:`.padEnd(size, String.fromCharCode(97 + (i % 26)));
}

class DistinctRepeat extends EchoImpl {
  override async *repeat(request: EchoRequest, _ctx: ServerContext): AsyncIterable<DeepPartial<EchoReply>> {
    for (let i = 0; i < request.count; i++) yield { text: body(request.text, i), index: i };
  }
}

describe("framework gRPC responses from the shared writer", function () {
  this.timeout(60_000);

  it("delivers every message of concurrent server streams and unary replies intact", async () => {
    const app = new Application({ handleSignals: false, app: "Test", server: "Enc", adapters: { EchoObj: "127.0.0.1:0" } });
    app.addServant("EchoObj", new DistinctRepeat());
    await app.start();
    const comm = new Communicator({ env: {} });
    try {
      const proxy = comm.stringToProxy(EchoProxy, `127.0.0.1:${app.adapters()[0]!.endpoint.port}`);
      const COUNT = 40;
      const stream = async (text: string) => {
        const got: Array<{ text: string; index: number }> = [];
        for await (const m of proxy.repeat({ text, count: COUNT })) got.push({ text: m.text, index: m.index });
        return got;
      };
      const unary = async () => {
        const out: string[] = [];
        for (let i = 0; i < 30; i++) out.push((await proxy.say({ text: `u${i}` })).text);
        return out;
      };
      const [a, b, c, u] = await Promise.all([stream("a"), stream("b"), stream("c"), unary()]);
      for (const [text, got] of [["a", a], ["b", b], ["c", c]] as const) {
        expect(got.map((m) => m.index)).to.deep.equal([...Array(COUNT).keys()]);
        got.forEach((m, i) => expect(m.text === body(text, i), `stream ${text} message ${i}`).to.equal(true));
      }
      expect(u).to.deep.equal([...Array(30).keys()].map((i) => `u${i}`));
    } finally {
      comm.close();
      await app.stop();
    }
  });
});
