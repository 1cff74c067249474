/**
 * A `binary` servant that is nothing but a shell script, run by the
 * NodeAgent from a downloaded patch: it gets the environment contract
 * (plus its instance id and channel token), its arguments verbatim (never
 * through a shell), its own user, its cgroup limits, and the configured
 * stop signal; and it is supervised like any other servant.
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { isPidLive } from "../../nodeagent";
import { freePort } from "../helpers/processes";
import { desiredInstance } from "./helpers/agent-fake-registry";
import { AgentHarness } from "./helpers/agent-harness";
import { v1Mounts, waitFor } from "./helpers/agent-test-env";
import { writePackage } from "../fixtures/packages/tar-builder";

const SCRIPT = `#!/bin/sh
echo "uid=$(id -u) cwd=$(pwd)"
env | grep '^SGRID_' | sort
i=0
for a in "$@"; do echo "arg[$i]=$a"; i=$((i + 1)); done
trap 'echo "got INT"; exit 0' INT
trap 'echo "got TERM"; exit 0' TERM
while :; do sleep 1 & wait $!; done
`;

describe("nodeagent/agent: a binary servant (a shell script)", function () {
  this.timeout(90_000);
  const h = new AgentHarness();
  const ID = 401;
  let port: number;
  const pwned = path.join(h.tmp, "pwned");

  function instance(state: string) {
    const p = h.registry.patches.get(1)!;
    return desiredInstance({
      instanceId: ID, application: "Demo", server: "ShellServer", type: "binary", state,
      adapters: [{ obj: "ShellObj", host: "127.0.0.1", port, protocol: "grpc", weight: 100 }],
      env: { FOO: "bar baz", SGRID_NODE: "not-allowed" },
      limits: { memoryBytes: 64 * 1024 * 1024, cpuCores: 0.5, pids: 50 },
      launch: {
        args: ["--name=a b", `$(touch ${pwned})`, h.marker], jvmOptions: [], nodeOptions: [], entry: "", runAsUser: "nobody",
        stopSignal: "SIGINT", stopGraceMs: 3000, keepaliveTimeoutMs: 0,
      },
      patch: { id: p.id, version: p.version, sha256: p.sha256!, size: p.data.length },
    });
  }

  before(async () => {
    port = await freePort();
    fs.chmodSync(h.tmp, 0o755); // the run-as user must reach its release
    await h.startRegistry();
    const file = await writePackage(h.pkgDir, "shell.tgz", {
      "sgrid.json": JSON.stringify({ app: "Demo", server: "ShellServer", type: "binary", entry: "run.sh" }),
      "run.sh": { content: SCRIPT, mode: 0o755 },
    });
    h.registry.addPatch({ id: 1, version: 5, data: fs.readFileSync(file) });
    h.registry.setInstances([instance("active")]);
    await h.startAgent();
  });
  after(() => h.teardown());

  it("runs with the environment contract, its arguments verbatim, as its run-as user, in the release directory", async () => {
    // The script never listens on its adapter port: it runs, but is not reported active (not serving).
    const active = await h.registry.waitObserved("running", (o) => o.instanceId === ID && o.pid > 0);
    expect(active.state).to.equal("activating");
    const out = await waitFor("the script printed its arguments", async () => {
      const text = await h.agent!.tailLog(String(ID), "100");
      return text.includes(`arg[2]=${h.marker}`) ? text : undefined;
    }, 15_000);
    const lines = out.split("\n");
    const release = path.join(h.dataDir, "servers", "Demo.ShellServer", "releases", "5");
    expect(lines).to.include(`uid=65534 cwd=${release}`);
    expect(lines).to.include("arg[0]=--name=a b");
    expect(lines).to.include(`arg[1]=$(touch ${pwned})`);
    expect(fs.existsSync(pwned), "no argument went through a shell").to.equal(false);
    const env = Object.fromEntries(lines.filter((l) => l.startsWith("SGRID_")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
    expect(env).to.include({
      SGRID_APP: "Demo", SGRID_SERVER: "ShellServer", SGRID_NODE: "test-node", SGRID_VERSION: "5",
      SGRID_TARGET_HOST: "127.0.0.1", SGRID_TARGET_PORT: String(port), SGRID_REGISTRY: h.registry.address,
      SGRID_AGENT: h.agent!.channel.address, SGRID_INSTANCE_ID: String(ID),
      SGRID_DATA_DIR: path.join(h.dataDir, "servers", "Demo.ShellServer", "data"),
      SGRID_LOG_DIR: path.join(h.dataDir, "servers", "Demo.ShellServer", "logs"),
      SGRID_CONF_DIR: path.join(h.dataDir, "servers", "Demo.ShellServer", "conf"),
    });
    expect(JSON.parse(env.SGRID_ADAPTERS!)).to.deep.equal({ "Demo.ShellServer.ShellObj": `127.0.0.1:${port}` });
    expect(env.SGRID_AGENT_TOKEN).to.match(/^[0-9a-f]{48}$/);
    expect(isPidLive(active.pid)).to.equal(true);
  });

  it("is reported active only once its adapter port accepts connections", async () => {
    const latest = h.registry.latest(ID)!;
    expect(latest.state, "still not serving").to.equal("activating");
    // Something now accepts connections on the instance's port (as the program would once it listens).
    const server = net.createServer((c) => c.destroy());
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    try {
      const active = await h.registry.waitObserved("active", (o) => o.instanceId === ID && o.state === "active");
      expect(active.pid).to.equal(latest.pid);
    } finally {
      server.close();
    }
  });

  it("lives in its own cgroup with the instance's limits", function () {
    const m = v1Mounts();
    if (!m) this.skip();
    const read = (mount: string, file: string) => fs.readFileSync(path.join(mount, h.group, String(ID), file), "utf8").trim();
    expect(read(m!.memory, "memory.limit_in_bytes")).to.equal(String(64 * 1024 * 1024));
    expect(read(m!.pids, "pids.max")).to.equal("50");
    expect(Number(read(m!.cpu, "cpu.cfs_quota_us")) / Number(read(m!.cpu, "cpu.cfs_period_us"))).to.equal(0.5);
    expect(read(m!.memory, "cgroup.procs").split("\n")).to.include(String(h.registry.latest(ID)!.pid));
  });

  it("is stopped with its configured signal when the registry makes it inactive", async () => {
    const pid = h.registry.latest(ID)!.pid;
    h.registry.setInstances([instance("inactive")]);
    await h.registry.waitObserved("inactive", (o) => o.instanceId === ID && o.state === "inactive");
    expect(isPidLive(pid)).to.equal(false);
    expect((await h.agent!.tailLog(String(ID), "5")).split("\n")).to.include("got INT");
  });
});
