/**
 * The RPC stacks compared by the transport benchmark, each as a server
 * starter and a client factory for a unary echo of a ~100-byte string. Each
 * side runs in its own process (see child.ts); every client is written the
 * way a careful user of that stack would write it: one long-lived client or
 * proxy, a deadline per call where the stack supports one (the same 3 s as
 * the proxies' timeoutMs); plain grpc-js with static generated codecs
 * (ts-proto's encode/decode, as `grpc-tools`/ts-proto users run it), not
 * proto-loader's reflection, and the channel and server options Sgrid's own
 * gRPC connections and adapters use (transports.GRPC_CHANNEL_OPTIONS,
 * grpcServerOptions: keepalive, 4 MiB flow-control window, message limits,
 * concurrent streams), so the two gRPC stacks differ in their code only.
 */
import * as net from "node:net";
import { Application, Communicator, transports } from "sgridnext";
import { BenchProxy, BenchServant } from "./gen/echo.sgrid";
import { EchoMessage } from "./gen/echo";
import type { BenchClient } from "../harness";
// @tars/rpc only in the tars stack's processes: loaded at the top it was in every child (and printed a warning
// about its circular requires in each). Its load still warns (node's "Accessing non-existent property 'error' of
// module exports inside circular dependency", from @tars/monitor): that one warning is dropped while it loads, so
// the children need not run with every warning off.
let tarsModule: typeof import("./tars-echo") | undefined;
const tarsEcho = (): typeof import("./tars-echo") => {
  if (tarsModule !== undefined) return tarsModule;
  const emit = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    if (/inside circular dependency/.test(typeof warning === "string" ? warning : warning.message)) return;
    (emit as (w: string | Error, ...r: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    tarsModule = require("./tars-echo") as typeof import("./tars-echo");
  } finally {
    process.emitWarning = emit;
  }
  return tarsModule;
};
import { bareClient, startBareServer } from "./bare-echo";

export const STACKS = ["sgrid-proxy", "bare", "grpc-proxy", "grpc-js", "tars", "moleculer"] as const;
export type StackName = (typeof STACKS)[number];

export const STACK_LABELS: Record<StackName, string> = {
  "sgrid-proxy": "generated proxy over sgrid (native)",
  bare: "bare framed-TCP echo (no framework)",
  "grpc-proxy": "generated proxy over gRPC",
  "grpc-js": "plain @grpc/grpc-js",
  tars: "@tars/rpc 2.0.15 (TARS protocol)",
  moleculer: "moleculer 0.14 (TCP transporter)",
};

/** The payload every stack echoes: 100 ASCII bytes. */
export const TEXT = "0123456789".repeat(10);
const HOST = "127.0.0.1";
/** Every stack's per-call deadline (BENCH_CALL_TIMEOUT_MS overrides it: callgrind.ts runs a side under valgrind, ~50x slower). */
const TIMEOUT_MS = Number(process.env.BENCH_CALL_TIMEOUT_MS ?? 3000);

class EchoImpl extends BenchServant {
  async echo(request: EchoMessage): Promise<EchoMessage> {
    return request;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, HOST, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function startApplication(adapter: string): Promise<number> {
  const app = new Application({ adapters: { EchoObj: adapter }, handleSignals: false });
  app.addServant("EchoObj", new EchoImpl());
  await app.start();
  return app.adapters()[0]!.endpoint.port;
}

/** bench.v1.Bench for plain grpc-js with the static ts-proto codecs (what ts-proto's outputServices=grpc-js emits). */
function loadGrpc(): { grpc: typeof import("@grpc/grpc-js"); service: import("@grpc/grpc-js").ServiceDefinition } {
  const grpc = require("@grpc/grpc-js") as typeof import("@grpc/grpc-js");
  const serialize = (m: EchoMessage) => {
    const bytes = EchoMessage.encode(m).finish();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
  const deserialize = (b: Buffer) => EchoMessage.decode(b);
  const service = {
    Echo: {
      path: "/bench.v1.Bench/Echo",
      requestStream: false,
      responseStream: false,
      requestSerialize: serialize,
      requestDeserialize: deserialize,
      responseSerialize: serialize,
      responseDeserialize: deserialize,
    },
  } as const;
  return { grpc, service };
}

/** Starts the server side of a stack in this process; resolves with its port. */
export async function startServer(stack: StackName): Promise<number> {
  switch (stack) {
    case "sgrid-proxy":
      return startApplication(`sgrid://${HOST}:0`);
    case "grpc-proxy":
      return startApplication(`${HOST}:0`);
    case "grpc-js": {
      const { grpc, service } = loadGrpc();
      const server = new grpc.Server(transports.grpcServerOptions());
      server.addService(service, {
        Echo: (call: any, cb: (err: null, res: unknown) => void) => cb(null, { text: call.request.text }),
      });
      return new Promise((resolve, reject) => {
        server.bindAsync(`${HOST}:0`, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
      });
    }
    case "bare":
      return startBareServer(HOST);
    case "tars": {
      const port = await freePort();
      tarsEcho().startTarsServer(HOST, port);
      return port;
    }
    case "moleculer": {
      const { ServiceBroker } = require("moleculer");
      const port = await freePort();
      const broker = new ServiceBroker({
        nodeID: "bench-server",
        logger: false,
        transporter: { type: "TCP", options: { udpDiscovery: false, port } },
      });
      broker.createService({ name: "echo", actions: { say: (ctx: any) => ({ text: ctx.params.text }) } });
      await broker.start();
      return port;
    }
  }
}

/** Makes the client side of a stack in this process, connected to `port`. */
export async function makeClient(stack: StackName, port: number): Promise<BenchClient> {
  switch (stack) {
    case "sgrid-proxy":
    case "grpc-proxy": {
      const comm = new Communicator();
      const scheme = stack === "sgrid-proxy" ? "sgrid" : "grpc";
      const proxy = comm.stringToProxy(BenchProxy, `Bench.EchoServer.EchoObj@${scheme} -h ${HOST} -p ${port}`, { timeoutMs: TIMEOUT_MS });
      const request = { text: TEXT };
      return { call: () => proxy.echo(request), close: async () => comm.close() };
    }
    case "grpc-js": {
      const { grpc, service } = loadGrpc();
      const Bench = grpc.makeGenericClientConstructor(service, "Bench");
      const client = new Bench(`${HOST}:${port}`, grpc.credentials.createInsecure(), transports.GRPC_CHANNEL_OPTIONS) as any;
      const request = { text: TEXT };
      return {
        call: () => new Promise((resolve, reject) => {
          client.Echo(request, { deadline: Date.now() + TIMEOUT_MS }, (err: Error | null, res: unknown) => (err ? reject(err) : resolve(res)));
        }),
        close: async () => client.close(),
      };
    }
    case "bare": {
      const client = await bareClient(HOST, port);
      return { call: () => client.call(TEXT), close: async () => client.close() };
    }
    case "tars": {
      const prx = tarsEcho().tarsProxy(HOST, port, TIMEOUT_MS);
      return { call: () => prx.echo(TEXT), close: async () => undefined };
    }
    case "moleculer": {
      const { ServiceBroker } = require("moleculer");
      const broker = new ServiceBroker({
        nodeID: "bench-client",
        logger: false,
        requestTimeout: TIMEOUT_MS,
        transporter: { type: "TCP", options: { udpDiscovery: false, urls: [`${HOST}:${port}/bench-server`] } },
      });
      await broker.start();
      await broker.waitForServices("echo", 10_000);
      const params = { text: TEXT };
      return { call: () => broker.call("echo.say", params), close: () => broker.stop() };
    }
  }
}
