/**
 * A tiny servant for the agent's tests that speaks the local channel the
 * way framework servants do, with the generated AgentProxy: hello with
 * SGRID_INSTANCE_ID / SGRID_AGENT_TOKEN, keepalives at the interval the
 * agent asks for, AdaptersReady, and answers to admin commands:
 *   "echo <args>"        -> ok, output = args
 *   "sgrid.viewversion"  -> ok, output = SGRID_VERSION
 *   "slow"               -> never answers (timeout tests)
 *   anything else        -> not ok, error "unknown command"
 * It also serves HTTP on SGRID_TARGET_PORT (answering its identity), and
 * reconnects to the agent every 300 ms when the channel drops (agent
 * restarted). Loaded by a node package's main.js.
 */
import * as http from "node:http";
import { AsyncQueue, Communicator, type DeepPartial } from "sgridnext";
import { AgentProxy } from "sgridnext/gen/sgrid/agent/v1/agent.sgrid";
import type { ServantMessage } from "sgridnext/gen/sgrid/agent/v1/agent";

const env = process.env;
const label = `${env.SGRID_APP}.${env.SGRID_SERVER} v${env.SGRID_VERSION} instance ${env.SGRID_INSTANCE_ID} pid ${process.pid}`;

if (env.SGRID_TARGET_PORT) {
  http.createServer((_req, res) => res.end(label)).listen(Number(env.SGRID_TARGET_PORT), env.SGRID_TARGET_HOST || "127.0.0.1", () => {
    process.stdout.write(`listening ${label}\n`);
  });
}

const comm = new Communicator();

async function channelOnce(): Promise<void> {
  const proxy = comm.stringToProxy(AgentProxy, env.SGRID_AGENT!);
  const out = new AsyncQueue<DeepPartial<ServantMessage>>();
  out.push({ kind: { $case: "hello", value: { instanceId: env.SGRID_INSTANCE_ID ?? "", token: env.SGRID_AGENT_TOKEN ?? "", pid: process.pid, version: "test" } } });
  let timer: NodeJS.Timeout | undefined;
  try {
    for await (const msg of proxy.channel(out)) {
      const k = msg.kind;
      if (k?.$case === "settings") {
        clearInterval(timer);
        timer = setInterval(() => out.push({ kind: { $case: "keepalive", value: {} } }), k.value.intervalMs);
        out.push({ kind: { $case: "ready", value: { objs: Object.keys(JSON.parse(env.SGRID_ADAPTERS ?? "{}") as object) } } });
        process.stdout.write("channel connected\n");
      } else if (k?.$case === "command") {
        const { requestId, command, args } = k.value;
        process.stdout.write(`command ${command} ${args}\n`);
        if (command === "slow") continue;
        if (command === "warn") {
          // What a framework servant's logger does: lines on stderr.
          process.stderr.write(`warning ${args}\n`);
          out.push({ kind: { $case: "result", value: { requestId, ok: true, output: "" } } });
          continue;
        }
        if (command === "echo") out.push({ kind: { $case: "result", value: { requestId, ok: true, output: args } } });
        else if (command === "sgrid.viewversion") out.push({ kind: { $case: "result", value: { requestId, ok: true, output: env.SGRID_VERSION ?? "" } } });
        else out.push({ kind: { $case: "result", value: { requestId, ok: false, error: `unknown command ${command}` } } });
      }
    }
  } finally {
    clearInterval(timer);
    out.close();
  }
}

async function channelLoop(): Promise<void> {
  for (;;) {
    try {
      await channelOnce();
    } catch (err) {
      process.stdout.write(`channel error ${(err as Error).message}\n`);
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}

if (env.SGRID_AGENT) void channelLoop();
process.on("SIGTERM", () => process.exit(0));
