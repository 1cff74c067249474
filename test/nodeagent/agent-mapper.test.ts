/**
 * From the registry's InstanceDesired to the supervisor's DesiredSpec, and
 * from the supervisor's ObservedState to the session's InstanceObserved:
 * the proto's zeros, protocols, health ports, stop signals, run-as users
 * and the event classification. Real releases on disk (the launch code
 * checks the entry), no processes.
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  classifyEvent, install, launch, toDesiredSpec, toInstanceObserved, resolveRunAs, type MapContext, type ObservedState,
} from "../../nodeagent";

const { LaunchConfigError } = launch;
import { desiredInstance } from "./helpers/agent-fake-registry";
import { makeTempDir, removeTempDir } from "./helpers/agent-test-env";

describe("nodeagent/agent: desired and observed mapping", () => {
  let tmp: string;
  let release: string;
  const manifest: install.PackageManifest = { app: "Demo", server: "Hello", type: "binary", entry: "bin/run" };
  let ctx: MapContext;

  before(() => {
    tmp = makeTempDir("sgrid-mapper-");
    release = path.join(tmp, "releases", "4");
    fs.mkdirSync(path.join(release, "bin"), { recursive: true });
    fs.writeFileSync(path.join(release, "bin", "run"), "#!/bin/sh\n", { mode: 0o755 });
    fs.writeFileSync(path.join(release, "bin", "other"), "#!/bin/sh\n", { mode: 0o755 });
    ctx = { node: "n1", address: "10.0.0.5", registry: "reg:9500", agent: "127.0.0.1:7000", confDir: path.join(tmp, "conf"), logDir: path.join(tmp, "logs"), dataDir: path.join(tmp, "data") };
  });
  after(() => removeTempDir(tmp));

  const base = () => desiredInstance({
    instanceId: 42, application: "Demo", server: "Hello", type: "binary",
    adapters: [{ obj: "GreeterObj", host: "", port: 9100, protocol: "sgrid", weight: 100 }, { obj: "AdminObj", host: "0.0.0.0", port: 9101, protocol: "grpc", weight: 100 }],
    env: { A: "1" },
    patch: { id: 7, version: 4, sha256: "a".repeat(64), size: 1 },
  });

  it("maps proto zeros to absent keys and fills the agent's env", async () => {
    const spec = await toDesiredSpec(base(), manifest, release, "4", ctx, "tok");
    expect(spec.state).to.equal("active");
    expect(spec.version).to.equal("4");
    expect(spec.limits).to.equal(undefined);
    expect(spec.stop).to.equal(undefined);
    expect(spec.keepalive).to.equal(undefined);
    expect(spec.health).to.equal(undefined);
    expect(spec.launch.command).to.equal(path.join(release, "bin/run"));
    expect(spec.launch.cwd).to.equal(release);
    expect(spec.launch.stdoutPath).to.equal(path.join(ctx.logDir, "instance-42.stdout.log"));
    expect(spec.launch.env).to.include({ A: "1", SGRID_INSTANCE_ID: "42", SGRID_AGENT_TOKEN: "tok", SGRID_TARGET_HOST: "10.0.0.5", SGRID_TARGET_PORT: "9100", SGRID_AGENT: "127.0.0.1:7000" });
    expect(JSON.parse(spec.launch.env!.SGRID_ADAPTERS!)).to.deep.equal({ "Demo.Hello.GreeterObj": "sgrid://10.0.0.5:9100", "Demo.Hello.AdminObj": "0.0.0.0:9101" });
    // Deterministic: the same input gives the same spec (no restart on a resent desired state).
    expect(await toDesiredSpec(base(), manifest, release, "4", ctx, "tok")).to.deep.equal(spec);
  });

  it("maps limits, stop, keepalive, health, entry override and run-as", async () => {
    const inst = {
      ...base(), state: "inactive",
      limits: { memoryBytes: 1 << 28, cpuCores: 1.5, pids: 0 },
      healthCheck: { kind: "http", port: 0, path: "/healthz", initialDelayMs: 0, intervalMs: 2000, timeoutMs: 0, failureThreshold: 5 },
      launch: { args: ["a b"], jvmOptions: [], nodeOptions: [], entry: "bin/other", runAsUser: "nobody", stopSignal: "int", stopGraceMs: 2500, keepaliveTimeoutMs: 30_000 },
    };
    const spec = await toDesiredSpec(inst, manifest, release, "4", ctx, "tok");
    expect(spec.state).to.equal("inactive");
    expect(spec.limits).to.deep.equal({ memoryBytes: 1 << 28, cpuCores: 1.5 });
    expect(spec.stop).to.deep.equal({ signal: "SIGINT", graceMs: 2500 });
    expect(spec.keepalive).to.deep.equal({ timeoutMs: 30_000 });
    expect(spec.health).to.deep.equal({ probe: { kind: "http", host: "10.0.0.5", port: 9100, path: "/healthz" }, intervalMs: 2000, failureThreshold: 5 });
    expect(spec.launch.command).to.equal(path.join(release, "bin/other"));
    expect(spec.launch.args).to.deep.equal(["a b"]);
    expect(spec.launch).to.include({ uid: 65534, gid: 65534 });
  });

  it("refuses what cannot run, with a LaunchConfigError naming it", async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ type: "cobol" }, /unknown server type "cobol"/],
      [{ adapters: [{ obj: "X", host: "h", port: 0, protocol: "grpc", weight: 0 }] }, /adapter X of instance 42 has no port/],
      [{ launch: { args: [], jvmOptions: [], nodeOptions: [], entry: "../../etc/passwd", runAsUser: "", stopSignal: "", stopGraceMs: 0, keepaliveTimeoutMs: 0 } }, /must be a relative path inside the release/],
      [{ launch: { args: [], jvmOptions: [], nodeOptions: [], entry: "", runAsUser: "no-such-user-xyz", stopSignal: "", stopGraceMs: 0, keepaliveTimeoutMs: 0 } }, /run-as user no-such-user-xyz does not exist/],
      [{ launch: { args: [], jvmOptions: [], nodeOptions: [], entry: "", runAsUser: "", stopSignal: "SIGNOPE", stopGraceMs: 0, keepaliveTimeoutMs: 0 } }, /stop signal "SIGNOPE" is not a signal name/],
    ];
    for (const [patch, re] of cases) {
      let err: unknown;
      try {
        await toDesiredSpec({ ...base(), ...patch } as ReturnType<typeof base>, manifest, release, "4", ctx, "tok");
      } catch (e) {
        err = e;
      }
      expect(err, String(re)).to.be.instanceOf(LaunchConfigError);
      expect((err as Error).message).to.match(re);
    }
    expect(() => resolveRunAs("bad name")).to.throw(LaunchConfigError, /not a valid user name/);
  });

  it("reports states and classifies events once per transition", () => {
    const s = (state: ObservedState["state"], reason: string | null = null): ObservedState => ({
      instanceId: "42", state, pid: state === "active" ? 10 : null, restarts: 1, lastExitReason: reason, version: "4",
      failedReason: state === "failed" ? "crash loop" : null, retryInMs: null, healthy: null, adopted: false, since: 0,
    });
    expect(classifyEvent("active", s("backoff", "oom killed"))).to.equal("oom");
    expect(classifyEvent("active", s("backoff", "keepalive timeout: none received for 800 ms"))).to.equal("keepalive");
    expect(classifyEvent("deactivating", s("backoff", "killed by SIGKILL"))).to.equal("crash");
    expect(classifyEvent("backoff", s("backoff", "killed by SIGKILL"))).to.equal("");
    expect(classifyEvent("backoff", s("failed", "exited with code 1"))).to.equal("failed");
    expect(classifyEvent("failed", s("failed"))).to.equal("");
    expect(classifyEvent(undefined, s("active"))).to.equal("");
    expect(toInstanceObserved(s("backoff", "exited with code 3"))).to.deep.equal({
      instanceId: 42, state: "activating", pid: 0, version: 4, restarts: 1, lastExitReason: "exited with code 3", event: "", startedAt: 0, portsInUse: [], eventDetail: "",
    });
    expect(toInstanceObserved(s("failed")).lastExitReason).to.equal("crash loop");
    expect(toInstanceObserved(s("active"), { startedAt: 123 })).to.include({ pid: 10, startedAt: 123 });
  });
});
