/**
 * Child processes of the gateway benchmark (bench/gateway/run.ts), each in
 * its own process:
 *
 * - `servant`: the transport suite's servant (bench.v1.Bench, generated
 *   servant) as Bench.EchoServer.EchoObj on a gRPC adapter and on a native
 *   (`sgrid://`) one (run.ts registers the one the gateway is to use);
 *   answers {ev: "ready", port, nativePort}, then `cpu` and `exit` over IPC.
 * - `client <stack> <port>` (bench/harness.ts serveBenchChild): `direct` and
 *   `gateway` use the generated proxy over gRPC (to the servant's gRPC port,
 *   or to the gateway's); `http-json` POSTs JSON over keep-alive HTTP/1.1 to
 *   the gateway's HTTP front.
 *
 * The gateway itself is `sgrid gateway` (bench/gateway/gateway-process.ts).
 */
import * as http from "node:http";
import { Application } from "sgridnext";
import { serveBenchChild } from "../harness";
import { BenchServant } from "../transport/gen/echo.sgrid";
import type { EchoMessage } from "../transport/gen/echo";
import { TEXT, makeClient } from "../transport/stacks";

class EchoImpl extends BenchServant {
  async echo(request: EchoMessage): Promise<EchoMessage> {
    return request;
  }
}

async function serveServant(): Promise<void> {
  const adapters = ["127.0.0.1:0", "sgrid://127.0.0.1:0"];
  const app = new Application({ app: "Bench", server: "EchoServer", agent: "", registry: "", handleSignals: false, adapters: { EchoObj: adapters } });
  app.addServant("EchoObj", new EchoImpl());
  await app.start();
  const port = (p: string) => app.adapters().find((a) => a.endpoint.protocol === p)?.endpoint.port;
  process.on("message", (m: { cmd: string }) => {
    if (m.cmd === "cpu") process.send!({ ev: "cpu", cpu: process.cpuUsage() });
    else if (m.cmd === "exit") void app.stop(0).finally(() => process.exit(0));
  });
  process.on("disconnect", () => process.exit(0));
  process.send!({ ev: "ready", port: port("grpc"), nativePort: port("sgrid") });
}

/** `http-json`: POST /bench.v1.Bench/Echo with a JSON body over keep-alive HTTP/1.1 (node:http, one socket per call in flight). */
function httpJsonClient(port: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const body = JSON.stringify({ text: TEXT });
  return {
    call: () => new Promise<void>((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port, method: "POST", path: "/bench.v1.Bench/Echo", agent, headers: { "content-type": "application/json" } }, (res) => {
        let text = "";
        res.setEncoding("utf8").on("data", (d: string) => { text += d; });
        res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 300)}`))));
      });
      req.on("error", reject);
      req.end(body);
    }),
    close: async () => agent.destroy(),
  };
}

if (process.argv[2] === "servant") {
  serveServant().catch((err: unknown) => {
    process.stderr.write(`bench servant failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
} else {
  serveBenchChild({
    startServer: () => Promise.reject(new Error("the gateway bench starts its servers itself (bench/gateway/run.ts)")),
    makeClient: async (stack, port) => (stack === "http-json" ? httpJsonClient(port) : makeClient("grpc-proxy", port)),
  });
}
