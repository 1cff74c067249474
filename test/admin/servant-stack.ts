/**
 * A real registry and admin app (startStack) with one node (FakeAgent) and a
 * real framework servant process (test/helpers/echo-server-main, server
 * reflection on) running as the instance of Test.EchoServer: deployed with
 * a fixed port, v1 published, so that the Obj's endpoint in the registry is
 * active and is the servant's own port. For "try a call".
 */
import { expect } from "chai";
import { ADMIN_PASSWORD, Client, FakeAgent, makePackage, startStack, type Stack } from "./helpers";
import { freePort, startEchoServer, type Spawned } from "../helpers/processes";
import { waitFor } from "../helpers/wait";

export const ECHO_OBJ = "Test.EchoServer.EchoObj";

export interface ServantStack {
  stack: Stack;
  admin: Client;
  servant: Spawned;
  port: number;
  stop(): Promise<void>;
}

/** `beforePublish` runs while the instance is deployed but not yet active (no endpoint). */
export async function startServantStack(users: Array<[name: string, password: string, application: string, role: string]>, beforePublish?: (admin: Client) => Promise<void>): Promise<ServantStack> {
  const stack = await startStack({ loginAttemptsPerMinute: 1000 });
  const agent = new FakeAgent(stack.registryTarget, "node-a");
  let servant: Spawned | undefined;
  const stop = async () => {
    if (servant) {
      servant.child.kill("SIGKILL");
      await servant.exited;
    }
    await agent.close();
    await stack.stop();
  };
  try {
    const admin = new Client(stack.url);
    expect((await admin.login("admin", ADMIN_PASSWORD)).status).to.equal(200);
    for (const [name, password, application, role] of users) {
      const r = await admin.post("/api/users", { name, password, roles: [{ application, role }] });
      expect(r.status, JSON.stringify(r.body)).to.equal(201);
    }
    await waitFor("node online", async () => (await admin.get("/api/nodes")).body.nodes?.some((n: any) => n.online));
    const port = await freePort();
    const r = await admin.post("/api/servers", { application: "Test", server: "EchoServer", type: "node", nodes: ["node-a"], adapters: [{ obj: "EchoObj", port }] });
    expect(r.status, JSON.stringify(r.body)).to.equal(201);
    const instanceIds = r.body.instances.map((i: any) => i.id);
    await beforePublish?.(admin);
    const up = await admin.request("POST", "/api/patches/Test/EchoServer", { raw: await makePackage(stack.dir, "v1", "Test", "EchoServer") });
    expect(up.status, JSON.stringify(up.body)).to.equal(201);
    const task = await admin.post("/api/tasks", { kind: "publish", instanceIds, version: up.body.version });
    expect(task.status, JSON.stringify(task.body)).to.equal(201);
    servant = await startEchoServer({ SGRID_ADAPTERS: JSON.stringify({ EchoObj: `127.0.0.1:${port}` }), SGRID_REGISTRY: "" });
    await waitFor("the Obj has an active endpoint", async () => (await admin.get(`/api/try/methods?obj=${ECHO_OBJ}`)).status === 200);
    return { stack, admin, servant, port, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
