/**
 * Transports by protocol name. Built in: `grpc` and the native `sgrid`.
 * The native transport's modules (its client, server, frames: a dozen
 * files) are loaded when its first channel or server is made, so a servant
 * or an agent that speaks only gRPC never loads them
 * (test/framework/lazy-runtime.test.ts).
 */
import type { ClientTransportFactory, ServerTransportFactory } from "./base";
import { grpcClientFactory } from "./grpc/client";
import { grpcServerFactory } from "./grpc/server";

export * from "./base";
export { checkMetadata, isBinaryKey } from "./metadata";
export { GRPC_CHANNEL_OPTIONS } from "./grpc/client";
export { grpcServerOptions, GRPC_SERVER_DEFAULTS } from "./grpc/server";

let sgridClient: ClientTransportFactory | undefined;
let sgridServer: ServerTransportFactory | undefined;
const lazySgridClient: ClientTransportFactory = {
  protocol: "sgrid",
  createChannel: (endpoint) => (sgridClient ??= (require("./sgrid/client") as typeof import("./sgrid/client")).sgridClientFactory()).createChannel(endpoint),
};
const lazySgridServer: ServerTransportFactory = {
  protocol: "sgrid",
  createServer: (options) => (sgridServer ??= (require("./sgrid/server") as typeof import("./sgrid/server")).sgridServerFactory()).createServer(options),
};

const clients = new Map<string, ClientTransportFactory>([["grpc", grpcClientFactory()], ["sgrid", lazySgridClient]]);
const servers = new Map<string, ServerTransportFactory>([["grpc", grpcServerFactory()], ["sgrid", lazySgridServer]]);

/** Registers (or replaces) a transport for a protocol name. */
export function register(protocol: string, client: ClientTransportFactory, server: ServerTransportFactory): void {
  clients.set(protocol, client);
  servers.set(protocol, server);
}

export function resolveClient(protocol: string): ClientTransportFactory {
  const f = clients.get(protocol);
  if (!f) throw new TypeError(`no client transport for protocol "${protocol}" (known: ${[...clients.keys()].join(", ")})`);
  return f;
}

export function resolveServer(protocol: string): ServerTransportFactory {
  const f = servers.get(protocol);
  if (!f) throw new TypeError(`no server transport for protocol "${protocol}" (known: ${[...servers.keys()].join(", ")})`);
  return f;
}

export function protocols(): string[] {
  return [...servers.keys()];
}
