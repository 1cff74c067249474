/**
 * Two registries on one MySQL database, packages stored in it: a patch
 * stored through registry A, which is then stopped, is published to a node
 * whose agent holds its session on registry B; B serves the bytes, and the
 * agent installs and runs it. (The real-process version, with A killed and a
 * damaged chunk, is test/e2e/packages-any-registry.test.ts.)
 */
import { expect } from "chai";
import * as crypto from "node:crypto";
import * as path from "node:path";
import { Readable } from "node:stream";
import { RegistryServer } from "../../registry/server";
import { NodeAgent } from "../../nodeagent";
import { freePort } from "../helpers/processes";
import { dialects, type TestDatabase } from "../registry/helpers/db";
import { fastAgentOptions } from "./helpers/agent-harness";
import { binaryPackage, httpGet } from "./helpers/agent-packages";
import { killProcessesWith, makeTempDir, removeTempDir, removeV1Groups, testGroupName, waitFor } from "./helpers/agent-test-env";

const TOKEN = "multi-registry-token";
const mysql = dialects().find((d) => d.name === "mysql");

(mysql ? describe : describe.skip)("nodeagent/agent: two registries on one MySQL database, packages in the database", function () {
  this.timeout(120_000);
  const tmp = makeTempDir("sgrid-agent-multi-");
  const group = testGroupName("-multireg");
  const marker = `sgrid-multireg-${process.pid}`;
  let db: TestDatabase;
  const registries: RegistryServer[] = [];
  let agent: NodeAgent | undefined;

  async function startRegistry(name: string): Promise<RegistryServer> {
    const port = await freePort();
    const r = new RegistryServer({
      db: db.url, listen: `127.0.0.1:${port}`, advertise: `127.0.0.1:${port}`, dataDir: path.join(tmp, name), clusterToken: TOKEN,
      adminPassword: "test-admin-pw", heartbeatIntervalMs: 500, heartbeatTimeoutMs: 600_000, shutdownGraceMs: 500,
    });
    await r.start();
    registries.push(r);
    return r;
  }

  before(async () => {
    db = await mysql!.create();
  });

  after(async () => {
    await agent?.supervisor.stopAll().catch(() => undefined);
    await agent?.shutdown().catch(() => undefined);
    for (const r of registries) await r.stop().catch(() => undefined);
    killProcessesWith(marker);
    await removeV1Groups(group);
    await db?.drop();
    removeTempDir(tmp);
  });

  it("installs a patch stored through the other registry after that one stopped", async () => {
    const a = await startRegistry("reg-a");
    const b = await startRegistry("reg-b");
    const data = await binaryPackage(tmp, "Demo", "MultiServer", "x");
    const sha256 = crypto.createHash("sha256").update(data).digest("hex");
    // Stored through A; B sees it in the database.
    const { key } = await a.context.storage.put(Readable.from([data]), { sha256, size: data.length, maxBytes: 1 << 30 });
    expect(await b.context.storage.has(key)).to.equal(true);
    const store = b.store;
    await store.nodes.upsert({ name: "multi-node", address: "127.0.0.1", agentVersion: "0" });
    await store.servers.create({ application: "Demo", name: "MultiServer", type: "binary" });
    const patch = await store.patches.create({ application: "Demo", server: "MultiServer", sha256, size: data.length, uploader: "test", storageKey: key });
    const port = await freePort();
    const id = (await store.instances.create({
      application: "Demo", server: "MultiServer", node: "multi-node",
      adapters: [{ obj: "HttpObj", host: "127.0.0.1", port }],
      env: { NODE_BIN: process.execPath }, launch: { args: [marker] },
      desiredState: "active", desiredPatchId: patch.id,
    })).id;
    await a.stop();
    // The agent's session goes to B (first in its list); A is gone.
    agent = new NodeAgent(fastAgentOptions(`127.0.0.1:${b.address.port},127.0.0.1:${a.address.port}`, path.join(tmp, "node"), group, { name: "multi-node", token: TOKEN }));
    await agent.start();
    const inst = await waitFor("the instance active, seen through registry B", async () => {
      const i = await b.store.instances.get(id);
      return i.observedState === "active" && i.pid ? i : undefined;
    }, 60_000);
    expect(await waitFor("the servant answers", () => httpGet(port), 15_000)).to.contain(`pid ${inst.pid}`);
  });
});
