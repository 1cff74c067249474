/**
 * A stand-in agent process for the survival tests: runs a NodeSupervisor in
 * its own process so a test can `kill -9` it and start another one on the
 * same state dir.
 *
 * Usage: node agent-driver.js '<json config>'
 *   config: { stateDir, groupName, desired?: Record<id, DesiredSpec>, pollIntervalMs? }
 * stdout: one JSON object per line:
 *   {type:"started", observed:[...]}   after start() (resume/adopt done)
 *   {type:"applied", observed:[...]}   after apply(desired), when given
 *   {type:"state", ...ObservedState}   every state change
 *   {type:"stopped"}                   after a "stop-all" command
 * stdin: "stop-all" (every instance inactive), "exit" (shutdown, servants stay).
 */
import * as readline from "node:readline";
import { NodeSupervisor, type DesiredSpec } from "../../../nodeagent";

interface DriverConfig {
  stateDir: string;
  groupName: string;
  desired?: Record<string, DesiredSpec>;
  pollIntervalMs?: number;
}

function out(obj: unknown): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? "{}") as DriverConfig;
  const node = new NodeSupervisor({
    stateDir: cfg.stateDir,
    cgroups: { groupName: cfg.groupName },
    process: { pollIntervalMs: cfg.pollIntervalMs ?? 100 },
    supervisor: { restart: { initialDelayMs: 50, maxDelayMs: 500, jitter: 0 }, stop: { graceMs: 1000 } },
  });
  node.on("state", (s) => out({ type: "state", ...s }));
  await node.start();
  out({ type: "started", observed: node.observed() });
  if (cfg.desired) {
    await node.apply(cfg.desired);
    out({ type: "applied", observed: node.observed() });
  }
  const rl = readline.createInterface({ input: process.stdin });
  rl.on("line", (line) => {
    void (async () => {
      if (line.trim() === "stop-all") {
        await node.stopAll();
        out({ type: "stopped", observed: node.observed() });
      } else if (line.trim() === "exit") {
        await node.shutdown();
        process.exit(0);
      }
    })();
  });
}

main().catch((err) => {
  process.stderr.write(`agent-driver: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
