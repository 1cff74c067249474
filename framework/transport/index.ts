/**
 * Transports by protocol name. Built in: `grpc`. The native `sgrid`
 * transport registers itself here when its module is loaded.
 */
import type { ClientTransportFactory, ServerTransportFactory } from "./base";
import { grpcClientFactory } from "./grpc/client";
import { grpcServerFactory } from "./grpc/server";
import { sgridClientFactory } from "./sgrid/client";
import { sgridServerFactory } from "./sgrid/server";

export * from "./base";
export { checkMetadata, isBinaryKey } from "./metadata";

const clients = new Map<string, ClientTransportFactory>([["grpc", grpcClientFactory()]]);
const servers = new Map<string, ServerTransportFactory>([["grpc", grpcServerFactory()]]);
clients.set("sgrid", sgridClientFactory());
servers.set("sgrid", sgridServerFactory());

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
