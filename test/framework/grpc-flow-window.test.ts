/**
 * The receive window a gRPC proxy's connection announces: a peer may send
 * 4 MiB on one stream (and on the connection) before it waits for the
 * proxy's WINDOW_UPDATE, as a raw HTTP/2 server sees it. With HTTP/2's
 * default 64 KiB a large response (a package download) waited one round trip
 * per 64 KiB (`npm run bench fanout`).
 */
import { expect } from "chai";
import * as http2 from "node:http2";
import { Communicator } from "sgridnext";
import { EchoProxy } from "../gen/demo/echo.sgrid";
import { waitFor } from "../helpers/wait";

const FOUR_MIB = 4 * 1024 * 1024;

describe("framework gRPC flow-control window", function () {
  this.timeout(30_000);

  it("announces a 4 MiB receive window per stream and per connection", async () => {
    const sessions: http2.ServerHttp2Session[] = [];
    const server = http2.createServer();
    server.on("session", (s) => sessions.push(s));
    // Every call is answered UNIMPLEMENTED: only the connection's settings matter here.
    server.on("stream", (stream) => {
      stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "12", "grpc-message": "no" }, { endStream: true });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    const comm = new Communicator({ env: {} });
    try {
      const proxy = comm.stringToProxy(EchoProxy, `127.0.0.1:${port}`);
      const err = await proxy.say({ text: "x" }).then(() => undefined, (e: Error) => e);
      expect(err?.message).to.match(/no|unimplemented/i);
      const session = await waitFor("the proxy's connection", () => sessions[0]);
      expect(session.remoteSettings.initialWindowSize, "stream window the proxy announced").to.equal(FOUR_MIB);
      // The connection-level window is raised by a WINDOW_UPDATE right after the settings.
      await waitFor("the connection window update", () => (session.state.remoteWindowSize ?? 0) >= FOUR_MIB - 64 * 1024);
    } finally {
      comm.close();
      for (const s of sessions) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
