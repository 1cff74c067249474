/**
 * A `java` servant built in the test with javac and jar (a JDK HTTP server
 * that knows only SGRID_TARGET_PORT), run by the NodeAgent as
 * `java [jvm options] -jar <release>/app.jar`, supervised (killed ->
 * restarted) and stopped. Skipped only where no JDK is installed.
 */
import { expect } from "chai";
import { isPidLive } from "../../nodeagent";
import { freePort } from "../helpers/processes";
import { desiredInstance } from "./helpers/agent-fake-registry";
import { AgentHarness } from "./helpers/agent-harness";
import { haveJdk, javaPackage } from "./helpers/agent-java";
import { httpGet } from "./helpers/agent-packages";
import { liveProcessesWith, waitFor } from "./helpers/agent-test-env";

describe("nodeagent/agent: a java servant", function () {
  this.timeout(120_000);
  const h = new AgentHarness();
  const ID = 501;
  let port: number;

  function instance(state: string) {
    const p = h.registry.patches.get(1)!;
    return desiredInstance({
      instanceId: ID, application: "Demo", server: "JavaServer", type: "java", state,
      adapters: [{ obj: "HelloObj", host: "127.0.0.1", port, protocol: "grpc", weight: 100 }],
      limits: { memoryBytes: 512 * 1024 * 1024, cpuCores: 0, pids: 0 },
      launch: {
        args: [h.marker], jvmOptions: ["-Xmx64m", "-XX:+UseSerialGC", "-Dsgrid.test=1"], nodeOptions: [], entry: "", runAsUser: "",
        stopSignal: "", stopGraceMs: 0, keepaliveTimeoutMs: 0,
      },
      patch: { id: p.id, version: p.version, sha256: p.sha256!, size: p.data.length },
    });
  }

  before(async function () {
    if (!haveJdk()) this.skip();
    port = await freePort();
    await h.startRegistry();
    h.registry.addPatch({ id: 1, version: 2, data: await javaPackage(h.pkgDir, "Demo", "JavaServer", "2") });
    h.registry.setInstances([instance("active")]);
    await h.startAgent();
  });
  after(() => h.teardown());

  it("runs java -jar from the release and serves on SGRID_TARGET_PORT", async () => {
    const active = await h.registry.waitObserved("active", (o) => o.instanceId === ID && o.state === "active" && o.version === 2, 30_000);
    const body = await waitFor("the JVM answers", () => httpGet(port), 30_000);
    expect(body).to.equal(`java Demo.JavaServer v2 pid ${active.pid}`);
    expect(liveProcessesWith(h.marker)).to.deep.equal([active.pid]);
  });

  it("is restarted after a kill", async () => {
    const before = h.registry.latest(ID)!;
    const from = h.registry.observed.length;
    process.kill(before.pid, "SIGKILL");
    const back = await h.registry.waitObserved("active again", (o) => o.instanceId === ID && o.state === "active" && o.pid !== before.pid, 30_000, from);
    expect(h.registry.observed.slice(from).some((o) => o.instanceId === ID && o.event === "crash")).to.equal(true);
    expect(await waitFor("the new JVM answers", async () => ((await httpGet(port))?.endsWith(`pid ${back.pid}`) ? true : undefined), 30_000)).to.equal(true);
  });

  it("is stopped (SIGTERM, the JVM exits) when made inactive", async () => {
    const pid = h.registry.latest(ID)!.pid;
    h.registry.setInstances([instance("inactive")]);
    await h.registry.waitObserved("inactive", (o) => o.instanceId === ID && o.state === "inactive", 30_000);
    expect(isPidLive(pid)).to.equal(false);
    expect(await httpGet(port, 500)).to.equal(undefined);
  });
});
