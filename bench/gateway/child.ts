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
import { Communicator } from "sgridnext";
import { Forwarder, StaticServiceResolver } from "../../gateway/forwarder";
import { GrpcFront } from "../../gateway/grpc-front";
import { serveBenchChild } from "../harness";
import { makeClient, startServer } from "../transport/stacks";

async function startGatewayStack(): Promise<number> {
  const servantPort = await startServer("grpc-proxy");
  const communicator = new Communicator({ registry: "" });
  const forwarder = new Forwarder({
    communicator,
    services: new StaticServiceResolver({ "bench.v1.Bench": `Bench.EchoServer.EchoObj@tcp -h 127.0.0.1 -p ${servantPort}` }),
    reportToServiceMonitor: false,
  });
  const front = new GrpcFront({ forwarder });
  return front.listen("127.0.0.1", 0);
}

serveBenchChild({
  startServer: (stack) => (stack === "gateway" ? startGatewayStack() : startServer("grpc-proxy")),
  makeClient: (_stack, port) => makeClient("grpc-proxy", port),
});
