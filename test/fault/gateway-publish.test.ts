/**
 * Issue 19: a publish of the backend with 0 failed calls through the
 * gateway. A real cluster (registry, two agents in network namespaces, the
 * Echo servant on both), `sgrid gateway` as its own process finding the Obj
 * through the registry's service map, and the fault suite's caller process
 * calling Echo.Say at the gateway's address only (it knows no Obj's
 * endpoints) while `sgrid publish --batch 1` moves both instances to 2.0.0.
 */
import * as path from "node:path";
import { expect } from "chai";
import { Proc } from "../e2e/helpers/procs";
import { CLI } from "../helpers/paths";
import { Caller } from "./harness/caller";
import { FaultCluster } from "./harness/cluster";
import { ECHO_OBJ, ECHO_SERVER } from "./harness/scenario";

describe("fault suite: a publish of the backend through sgrid gateway, 0 failed calls @slow", function () {
  this.timeout(300_000);
  let cluster: FaultCluster | undefined;
  let gateway: Proc | undefined;
  let caller: Caller | undefined;

  after(async () => {
    caller?.proc.signal("SIGKILL");
    await gateway?.stop(2000).catch(() => undefined);
    await cluster?.stop();
  });

  it("publish --batch 1 of the Obj behind the gateway: every call through the gateway succeeds", async () => {
    cluster = await FaultCluster.start({ name: "gateway-publish", nodes: ["node-a", "node-b"] });
    await cluster.publishEcho(ECHO_SERVER, cluster.nodes, "EchoObj", "1.0.0");
    await cluster.waitAllActive({ [ECHO_OBJ]: 2 });
    gateway = new Proc("gateway", process.execPath, [CLI, "gateway", "--listen", "127.0.0.1:0", "--registry", cluster.registryAddr], {
      cwd: cluster.out, env: { SGRID_LOG_LEVEL: "info" }, logFile: path.join(cluster.out, "gateway.log"),
    });
    const port = Number((await gateway.waitForLine(/sgrid gateway serving gRPC on \S+:(\d+)/))[1]);
    const viaGateway = `${ECHO_OBJ}@tcp -h 127.0.0.1 -p ${port}`;
    // The gateway learns the service from the servants' reflection; the caller starts once a call gets through.
    const probe = await Caller.start({ registry: cluster.registryAddr, objs: [viaGateway], rate: 20, dir: path.join(cluster.out, "probe") });
    await probe.waitOk(5, 60_000);
    await probe.stop();

    caller = await Caller.start({ registry: cluster.registryAddr, objs: [viaGateway, ECHO_OBJ], rate: 200, dir: path.join(cluster.out, "caller") });
    await caller.waitOk(100);
    await cluster.publishEcho(ECHO_SERVER, cluster.nodes, "EchoObj", "2.0.0", ["--batch", "1"]);
    // sgrid publish returns once the task is done: both instances switched, one batch at a time.
    await cluster.waitAllActive({ [ECHO_OBJ]: 2 });
    await caller.waitOk(100);
    const counts = await caller.stop();
    caller = undefined;
    expect(counts.byObj[viaGateway]!.failed, `failed calls through the gateway: ${JSON.stringify(counts.byObj)} ${JSON.stringify(counts.byCode)} ${counts.errors.join("; ")}`).to.equal(0);
    expect(counts.ok).to.be.greaterThan(300);
  });
});
