/**
 * Starting a NodeAgent against the registry stand-in with fast test
 * timings, and tearing everything down (servants, cgroups, temp dirs).
 */
import * as path from "node:path";
import { NodeAgent, type NodeAgentOptions } from "../../../nodeagent";
import { FakeRegistry } from "./agent-fake-registry";
import { killProcessesWith, makeTempDir, removeTempDir, removeV1Groups, testGroupName } from "./agent-test-env";

/** Fast timings for tests (production defaults are in nodeagent/agent/options.ts). */
export function fastAgentOptions(registry: string, dataDir: string, group: string, extra: Partial<NodeAgentOptions> = {}): NodeAgentOptions {
  return {
    registry: registry.split(","),
    name: "test-node",
    dataDir,
    token: "cluster-secret",
    address: "127.0.0.1",
    cgroups: { groupName: group },
    process: { pollIntervalMs: 100 },
    supervisor: { restart: { initialDelayMs: 100, maxDelayMs: 1000, jitter: 0 }, stop: { graceMs: 1000 } },
    backoff: { initialMs: 100, maxMs: 1000 },
    installRetry: { initialMs: 100, maxMs: 500 },
    downloadIdleTimeoutMs: 1000,
    ...extra,
  };
}

export class AgentHarness {
  readonly tmp = makeTempDir("sgrid-agent-");
  readonly pkgDir = path.join(this.tmp, "pkgs");
  readonly dataDir = path.join(this.tmp, "node");
  readonly registry = new FakeRegistry();
  readonly marker = `sgrid-agent-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  agent: NodeAgent | undefined;

  constructor(readonly group = testGroupName(`-agent-${Math.random().toString(36).slice(2, 6)}`)) {
    require("node:fs").mkdirSync(this.pkgDir, { recursive: true });
  }

  async startRegistry(): Promise<void> {
    await this.registry.start();
  }

  async startAgent(extra: Partial<NodeAgentOptions> = {}): Promise<NodeAgent> {
    this.agent = new NodeAgent(fastAgentOptions(this.registry.address, this.dataDir, this.group, extra));
    await this.agent.start();
    return this.agent;
  }

  /** Stops every servant, the agent, the registry; removes groups and files. */
  async teardown(): Promise<void> {
    if (this.agent) {
      await this.agent.supervisor.stopAll().catch(() => undefined);
      await this.agent.shutdown().catch(() => undefined);
    }
    await this.registry.stop().catch(() => undefined);
    killProcessesWith(this.marker);
    await removeV1Groups(this.group);
    removeTempDir(this.tmp);
  }
}
