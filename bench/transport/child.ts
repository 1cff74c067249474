/**
 * Child process of the transport and grpc benchmarks: one side (server or
 * client) of one stack in stacks.ts, driven by the parent over IPC (the
 * protocol is bench/harness.ts serveBenchChild's).
 *
 *   node child.js server <stack>          -> {ev:"ready", port}
 *   node child.js client <stack> <port>   -> {ev:"ready"}
 */
import { serveBenchChild } from "../harness";
import { makeClient, startServer, type StackName } from "./stacks";

serveBenchChild({
  startServer: (stack) => startServer(stack as StackName),
  makeClient: (stack, port) => makeClient(stack as StackName, port),
});
