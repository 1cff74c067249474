/**
 * Child process of the gateway benchmark (bench/gateway/run.ts): one side of
 * one stack, driven over IPC by bench/harness.ts serveBenchChild.
 *
 * - `direct`: the transport suite's servant (bench.v1.Bench, generated servant
 *   over gRPC); the client is the generated proxy, straight to it.
 * - `gateway`: the same servant, and in the same process a gateway (forwarder +
 *   gRPC front) that forwards bench.v1.Bench to it over loopback gRPC; the client
 *   is the same generated proxy, pointed at the gateway's port. Servant and
 *   gateway share the server process (and its pinned core), so the server CPU
 *   per call is the whole server side's.
 */
import * as http from "node:http";
import { Communicator } from "sgridnext";
import { Forwarder, StaticServiceResolver } from "../../gateway/forwarder";
import { GrpcFront } from "../../gateway/grpc-front";
import { HttpFront } from "../../gateway/http-front";
import { serveBenchChild } from "../harness";
import { TEXT, makeClient, startServer } from "../transport/stacks";

async function startGatewayStack(front: "grpc" | "http-json" = "grpc"): Promise<number> {
  const servantPort = await startServer("grpc-proxy");
  const communicator = new Communicator({ registry: "" });
  const forwarder = new Forwarder({
    communicator,
    services: new StaticServiceResolver({ "bench.v1.Bench": `Bench.EchoServer.EchoObj@tcp -h 127.0.0.1 -p ${servantPort}` }),
    reportToServiceMonitor: false,
  });
  if (front === "http-json") return new HttpFront({ forwarder, communicator }).listen("127.0.0.1", 0);
  return new GrpcFront({ forwarder }).listen("127.0.0.1", 0);
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

serveBenchChild({
  startServer: (stack) => (stack === "gateway" ? startGatewayStack() : stack === "http-json" ? startGatewayStack("http-json") : startServer("grpc-proxy")),
  makeClient: async (stack, port) => (stack === "http-json" ? httpJsonClient(port) : makeClient("grpc-proxy", port)),
});
