/**
 * Calling scaffolded servants from the test as a peer service would: with
 * the project's own installed copy of sgridnext and its generated proxies,
 * resolving Obj names through the registry.
 */
import * as path from "node:path";
import type { Project } from "./scaffold";

export interface HelloProxy {
  sayHello(req: { name: string }, opts?: { timeoutMs?: number }): Promise<{ message: string }>;
}

export interface CallerProxy {
  call(req: { name: string }, opts?: { timeoutMs?: number }): Promise<{ message: string; node: string }>;
}

interface CommunicatorLike {
  stringToProxy(cls: unknown, target: string): unknown;
  close(): void;
}

/** A Communicator of the project's sgridnext that resolves Obj names through `registry` (host:port). */
export function projectCommunicator(p: Project, registry: string): CommunicatorLike {
  const sgridnext = require(path.join(p.dir, "node_modules/sgridnext")) as { Communicator: new (o: { registry: string }) => CommunicatorLike };
  return new sgridnext.Communicator({ registry });
}

/** A generated proxy class from the project's compiled dist/src/gen/<Service>.sgrid.js. */
export function projectProxyClass(p: Project, service: string): unknown {
  const mod = require(path.join(p.dir, "dist/src/gen", `${service}.sgrid.js`)) as Record<string, unknown>;
  const cls = mod[`${service}Proxy`];
  if (!cls) throw new Error(`${p.name} has no generated ${service}Proxy`);
  return cls;
}

export function helloProxy(comm: CommunicatorLike, hello: Project, target = "Demo.HelloServer.GreeterObj"): HelloProxy {
  return comm.stringToProxy(projectProxyClass(hello, "Greeter"), target) as HelloProxy;
}

export function callerProxy(comm: CommunicatorLike, caller: Project, target = "Demo.CallerServer.CallerObj"): CallerProxy {
  return comm.stringToProxy(projectProxyClass(caller, "Caller"), target) as CallerProxy;
}
