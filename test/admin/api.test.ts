/**
 * The admin app's JSON API, in-process against a real registry
 * (RegistryServer on SQLite) with two fake agents holding real node
 * sessions. For every route: success, 401 without a login, 403 for a role
 * that may not, 403 without the CSRF token (mutating routes), 400 on bad input.
 */
import { expect } from "chai";
import { createHash } from "node:crypto";
import * as http from "node:http";
import * as zlib from "node:zlib";
import { AdminServer } from "../../admin";
import { ADMIN_PASSWORD, Client, FakeAgent, makePackage, startStack, waitFor, type Stack } from "./helpers";

/** GET with the path sent exactly as written (fetch would normalise dot segments). */
function rawGetStatus(base: string, rawPath: string): Promise<number> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    http.get({ host: u.hostname, port: u.port, path: rawPath }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    }).on("error", reject);
  });
}

const OPS = { name: "ops", password: "ops-password-1" };
const VIEWER = { name: "viewer", password: "viewer-password-1" };
const OTHER = { name: "other", password: "other-password-1" };

describe("admin API", function () {
  this.timeout(120_000);
  let stack: Stack;
  let admin: Client;
  let ops: Client;
  let viewer: Client;
  let other: Client;
  let anon: Client;
  const agents: FakeAgent[] = [];
  let instanceIds: number[] = [];
  let v1 = 0;
  let v2 = 0;
  let publishTask = 0;

  before(async () => {
    stack = await startStack({ loginAttemptsPerMinute: 1000, maxUploadBytes: 1024 * 1024 });
    admin = new Client(stack.url);
    expect((await admin.login("admin", ADMIN_PASSWORD)).status).to.equal(200);
    for (const [u, app, role] of [[OPS, "Demo", "operator"], [VIEWER, "Demo", "viewer"], [OTHER, "Other", "operator"]] as const) {
      const r = await admin.post("/api/users", { name: u.name, password: u.password, roles: [{ application: app, role }] });
      expect(r.status, JSON.stringify(r.body)).to.equal(201);
    }
    ops = new Client(stack.url);
    viewer = new Client(stack.url);
    other = new Client(stack.url);
    anon = new Client(stack.url);
    expect((await ops.login(OPS.name, OPS.password)).status).to.equal(200);
    expect((await viewer.login(VIEWER.name, VIEWER.password)).status).to.equal(200);
    expect((await other.login(OTHER.name, OTHER.password)).status).to.equal(200);
    agents.push(new FakeAgent(stack.registryTarget, "node-a"), new FakeAgent(stack.registryTarget, "node-b"));
    await waitFor("both nodes online", async () => {
      const r = await admin.get("/api/nodes");
      return r.body.nodes?.filter((n: any) => n.online).length === 2;
    });
  });

  after(async () => {
    for (const a of agents) await a.close();
    await stack?.stop();
  });

  describe("login and session", () => {
    it("logs in: an HttpOnly SameSite=Strict session cookie, a CSRF token, roles, and never the registry token", async () => {
      const c = new Client(stack.url);
      const res = await fetch(`${stack.url}/api/login`, {
        method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ user: OPS.name, password: OPS.password }),
      });
      expect(res.status).to.equal(200);
      const cookie = res.headers.getSetCookie().find((x) => x.startsWith("sgrid_admin_sid="))!;
      expect(cookie).to.match(/httponly/i).and.match(/samesite=strict/i).and.match(/path=\//i);
      expect(cookie).not.to.match(/secure/i); // plain HTTP here; Secure over TLS (tested below)
      const body = await res.json() as any;
      expect(body).to.include({ user: "ops" });
      expect(body.csrfToken).to.be.a("string").with.length.above(20);
      expect(body.roles).to.deep.equal([{ application: "Demo", role: "operator" }]);
      expect(Object.keys(body)).not.to.include("token");
      c.cookie = cookie.split(";")[0]!;
      // The registry token the session holds server-side appears in nothing the browser gets.
      const held = stack.admin.admin.services.sessions.get(c.cookie.slice("sgrid_admin_sid=".length))!;
      expect(held.token).to.be.a("string").with.length.above(10);
      expect(JSON.stringify(body)).not.to.contain(held.token);
      expect(cookie).not.to.contain(held.token);
      const s = await c.get("/api/session");
      expect(s.status).to.equal(200);
      expect(s.body.user).to.equal("ops");
      expect(s.body.csrfToken).to.equal(body.csrfToken);
      expect(Object.keys(s.body)).not.to.include("token");
    });

    it("refuses a wrong password (401) and bad login input (400)", async () => {
      const c = new Client(stack.url);
      const r = await c.login("ops", "wrong-password");
      expect(r.status).to.equal(401);
      expect(r.body.error.code).to.equal("UNAUTHENTICATED");
      expect(c.cookie).to.equal("");
      const bad = await c.post("/api/login", { user: "ops" });
      expect(bad.status).to.equal(400);
      expect(bad.body.error.field).to.equal("password");
      const notJson = await c.request("POST", "/api/login", { raw: Buffer.from("user=ops&password=x"), headers: { "content-type": "application/x-www-form-urlencoded" } });
      expect(notJson.status).to.equal(400);
    });

    it("rate-limits login attempts per address (429 with Retry-After) before they reach the registry", async () => {
      const limited = new AdminServer({ registry: stack.registryTarget, listen: "127.0.0.1:0", loginAttemptsPerMinute: 3, loginFailuresPerUser: 2 });
      const { url } = await limited.start();
      try {
        const c = new Client(url);
        expect((await c.login("ops", "bad-1")).status).to.equal(401);
        expect((await c.login("ops", "bad-2")).status).to.equal(401);
        // The user name is now locked for this window, even with the right password.
        const locked = await c.login("ops", OPS.password);
        expect(locked.status).to.equal(429);
        expect(locked.body.error.code).to.equal("ADMIN_LOGIN_RATE_LIMITED");
        expect(Number(locked.headers.get("retry-after"))).to.be.above(0);
        // The address is over its 3 attempts per minute too.
        const again = await c.login("viewer", VIEWER.password);
        expect(again.status).to.equal(429);
        expect(again.body.error.code).to.equal("ADMIN_LOGIN_RATE_LIMITED");
      } finally {
        await limited.stop();
      }
    });

    it("logs out: the session ends here and in the registry", async () => {
      const c = new Client(stack.url);
      await c.login(VIEWER.name, VIEWER.password);
      expect((await c.post("/api/logout", {}, { csrf: false })).status).to.equal(403);
      expect((await c.post("/api/logout")).status).to.equal(204);
      expect((await c.get("/api/session")).status).to.equal(401);
    });

    it("serves the page only with a session (redirect to /login), the login page and assets without", async () => {
      const page = await anon.get("/apps/Demo");
      expect(page.status).to.equal(302);
      expect(page.headers.get("location")).to.equal("/login?next=%2Fapps%2FDemo");
      const login = await anon.get("/login");
      expect(login.status).to.equal(200);
      expect(login.body).to.contain('<script type="importmap">');
      expect(login.headers.get("content-security-policy")).to.match(/script-src 'self' 'sha256-/).and.not.match(/unsafe-inline/);
      const js = await anon.get("/static/app/main.js");
      expect(js.status).to.equal(200);
      expect(js.headers.get("content-type")).to.match(/javascript/);
      expect((await anon.get("/static/vendor/preact.mjs")).status).to.equal(200);
      for (const raw of ["/static/%2e%2e/%2e%2e/package.json", "/static/..%2f..%2f..%2fpackage.json", "/static/app/..%2f..%2f..%2f..%2fpackage.json"]) {
        expect(await rawGetStatus(stack.url, raw), raw).to.equal(404);
      }
      const withSession = await ops.get("/apps/Demo/HelloServer");
      expect(withSession.status).to.equal(200);
      expect(withSession.headers.get("x-frame-options")).to.equal("DENY");
    });
  });

  describe("every route needs a login and, when it changes something, the CSRF token", () => {
    const routes: Array<[string, string]> = [
      ["GET", "/api/session"], ["POST", "/api/logout"],
      ["GET", "/api/users"], ["POST", "/api/users"], ["PUT", "/api/users/x/password"], ["POST", "/api/users/x/grants"],
      ["DELETE", "/api/users/x/grants/Demo"], ["DELETE", "/api/users/x"],
      ["GET", "/api/servers"], ["POST", "/api/servers"], ["DELETE", "/api/servers/Demo/X"],
      ["GET", "/api/instances"], ["PATCH", "/api/instances/1"], ["POST", "/api/instances/1/command"], ["GET", "/api/instances/1/log"], ["GET", "/api/instances/1/log/download"],
      ["POST", "/api/tasks"], ["GET", "/api/tasks"], ["GET", "/api/tasks/1"], ["GET", "/api/tasks/1/watch"], ["POST", "/api/tasks/1/rollback"], ["POST", "/api/tasks/1/canary"], ["GET", "/api/canary/defaults"],
      ["GET", "/api/nodes"], ["DELETE", "/api/nodes/node-x"], ["GET", "/api/events"],
      ["GET", "/api/patches/Demo/HelloServer"], ["POST", "/api/patches/Demo/HelloServer"],
      ["PUT", "/api/patches/Demo/HelloServer/1/default"], ["DELETE", "/api/patches/Demo/HelloServer/1"],
      ["GET", "/api/configs/files?level=application&application=Demo"], ["GET", "/api/configs/instance-files?application=Demo&server=S&node=n"],
      ["GET", "/api/configs/file?level=application&application=Demo&fileName=a.conf"],
      ["GET", "/api/configs/history?level=application&application=Demo&fileName=a.conf"],
      ["GET", "/api/configs/merged?application=Demo&server=S&node=n&fileName=a.conf"],
      ["PUT", "/api/configs/file"], ["POST", "/api/configs/rollback"], ["DELETE", "/api/configs/file?level=application&application=Demo&fileName=a.conf"],
      ["POST", "/api/configs/push"],
    ];

    it("401 without a login, on every route", async () => {
      for (const [method, p] of routes) {
        const r = await anon.request(method, p, { body: method === "GET" || method === "DELETE" ? undefined : {} });
        expect(r.status, `${method} ${p}`).to.equal(401);
        expect(r.body.error.code, `${method} ${p}`).to.equal("UNAUTHENTICATED");
      }
    });

    it("403 without the CSRF token, with a wrong one, or from another origin, on every mutating route", async () => {
      const mutating = routes.filter(([m]) => m !== "GET");
      for (const [method, p] of mutating) {
        const body = method === "DELETE" ? undefined : {};
        const none = await admin.request(method, p, { body, csrf: false });
        expect(none.status, `${method} ${p} without token`).to.equal(403);
        expect(none.body.error.code).to.equal("ADMIN_CSRF_INVALID");
        const wrong = await admin.request(method, p, { body, csrf: "x".repeat(43) });
        expect(wrong.status, `${method} ${p} wrong token`).to.equal(403);
        const foreign = await admin.request(method, p, { body, headers: { origin: "https://evil.example" } });
        expect(foreign.status, `${method} ${p} foreign origin`).to.equal(403);
      }
      // Another session's token is a wrong token.
      const stolen = await admin.post("/api/users", { name: "csrf-user", password: "password-123", roles: [] }, { csrf: ops.csrf });
      expect(stolen.status).to.equal(403);
      expect((await admin.get("/api/users")).body.users.map((u: any) => u.name)).not.to.include("csrf-user");
    });

    it("an unknown API route is a JSON 404", async () => {
      const r = await admin.get("/api/nothing-here");
      expect(r.status).to.equal(404);
      expect(r.body.error.code).to.equal("NOT_FOUND");
    });
  });

  describe("servers and instances", () => {
    it("deploys a server to two nodes (operator), 403 for a viewer and for another application's operator, 400 on bad input", async () => {
      const deploy = {
        application: "Demo", server: "HelloServer", type: "node", nodes: ["node-a", "node-b"],
        adapters: [{ obj: "HelloObj", port: 0 }], env: { GREETING: "hi" }, limits: { memoryBytes: 256 * 1024 * 1024, cpuCores: 0.5, pids: 64 },
        healthCheck: { kind: "tcp" },
      };
      const denied = await viewer.post("/api/servers", deploy);
      expect(denied.status).to.equal(403);
      expect(denied.body.error.code).to.equal("PERMISSION_DENIED");
      expect((await other.post("/api/servers", deploy)).status).to.equal(403);

      const noNodes = await ops.post("/api/servers", { ...deploy, nodes: [] });
      expect(noNodes.status).to.equal(400);
      expect(noNodes.body.error.field).to.equal("nodes");
      const badPort = await ops.post("/api/servers", { ...deploy, adapters: [{ obj: "HelloObj", port: 70000 }] });
      expect(badPort.status).to.equal(400);
      expect(badPort.body.error.field).to.equal("adapters.0.port");
      const badType = await ops.post("/api/servers", { ...deploy, type: "python" });
      expect(badType.body.error.field).to.equal("type");
      const unknownNode = await ops.post("/api/servers", { ...deploy, nodes: ["node-zz"] });
      expect(unknownNode.status).to.be.oneOf([400, 404, 409]);
      expect(unknownNode.body.error.message).to.contain("node-zz");
      expect((await ops.get("/api/servers?application=Demo")).body.servers).to.have.length(0);

      const r = await ops.post("/api/servers", deploy);
      expect(r.status, JSON.stringify(r.body)).to.equal(201);
      expect(r.body.instances.map((i: any) => i.node).sort()).to.deep.equal(["node-a", "node-b"]);
      for (const i of r.body.instances) expect(i.adapters[0].port).to.be.above(0);
      instanceIds = r.body.instances.map((i: any) => i.id);
    });

    it("lists servers and instances for a viewer; hides other applications", async () => {
      const s = await viewer.get("/api/servers");
      expect(s.status).to.equal(200);
      expect(s.body.servers.map((x: any) => x.name)).to.deep.equal(["HelloServer"]);
      const i = await viewer.get("/api/instances?application=Demo&server=HelloServer");
      expect(i.body.instances).to.have.length(2);
      expect(i.body.instances[0]).to.include.keys("desiredState", "observedState", "pid", "restarts", "limits", "lastExitReason");
      expect((await other.get("/api/servers")).body.servers).to.deep.equal([]);
      expect((await other.get("/api/instances?application=Demo")).status).to.equal(403);
    });

    it("updates an instance (operator); 403 viewer; 400 empty or bad update; 404 unknown instance", async () => {
      const id = instanceIds[0]!;
      const r = await ops.patch(`/api/instances/${id}`, { env: { GREETING: "hello" } });
      expect(r.status, JSON.stringify(r.body)).to.equal(200);
      expect(r.body.env).to.deep.equal({ GREETING: "hello" });
      expect((await viewer.patch(`/api/instances/${id}`, { env: { A: "b" } })).status).to.equal(403);
      expect((await ops.patch(`/api/instances/${id}`, {})).status).to.equal(400);
      const badEnv = await ops.patch(`/api/instances/${id}`, { env: { "1BAD": "x" } });
      expect(badEnv.status).to.equal(400);
      expect(badEnv.body.error.field).to.match(/^env/);
      expect((await ops.patch(`/api/instances/abc`, { env: {} })).status).to.equal(400);
      expect((await ops.patch(`/api/instances/999999`, { env: { A: "b" } })).status).to.equal(404);
    });

    it("sends an admin command and tails a log through the agent; 403 viewer; 400 bad input", async () => {
      const id = instanceIds[0]!;
      const r = await ops.post(`/api/instances/${id}/command`, { command: "sgrid.viewstatus", args: "x" });
      expect(r.status, JSON.stringify(r.body)).to.equal(200);
      expect(r.body.output).to.equal("echo sgrid.viewstatus x");
      const log = await ops.get(`/api/instances/${id}/log?lines=2`);
      expect(log.status, JSON.stringify(log.body)).to.equal(200);
      expect(log.body.output).to.equal(`stdout line 2 of instance ${id} WARN slow call\nstdout line 3 of instance ${id}`);
      const err = await ops.get(`/api/instances/${id}/log?stream=stderr&grep=warn`);
      expect(err.body).to.deep.equal({ output: `stderr line 2 of instance ${id} WARN slow call`, stream: "stderr" });
      expect((await ops.get(`/api/instances/${id}/log?stream=journal`)).body.error.field).to.equal("stream");
      const file = await ops.get(`/api/instances/${id}/log/download?stream=stderr`);
      expect(file.status).to.equal(200);
      expect(file.headers.get("content-disposition")).to.equal(`attachment; filename="instance-${id}.stderr.log"`);
      expect(file.headers.get("content-type")).to.match(/^text\/plain/);
      expect(file.body).to.equal([1, 2, 3].map((k) => `stderr line ${k} of instance ${id}${k === 2 ? " WARN slow call" : ""}`).join("\n") + "\n");
      expect((await viewer.get(`/api/instances/${id}/log/download`)).status).to.equal(403);
      expect((await viewer.post(`/api/instances/${id}/command`, { command: "sgrid.viewstatus" })).status).to.equal(403);
      const empty = await ops.post(`/api/instances/${id}/command`, { command: "" });
      expect(empty.status).to.equal(400);
      expect(empty.body.error.field).to.equal("command");
      expect((await ops.get(`/api/instances/${id}/log?lines=abc`)).status).to.equal(400);
    });
  });

  describe("patch versions", () => {
    it("uploads a .tgz (operator), with and without the page's sha256", async () => {
      const pkg = await makePackage(stack.dir, "v1");
      const sha = createHash("sha256").update(pkg).digest("hex");
      const r = await ops.request("POST", "/api/patches/Demo/HelloServer?comment=first", { raw: pkg, headers: { "x-sha256": sha } });
      expect(r.status, JSON.stringify(r.body)).to.equal(201);
      expect(r.body).to.include({ application: "Demo", server: "HelloServer", sha256: sha, size: pkg.length, comment: "first", uploader: "ops" });
      v1 = r.body.version;
      const pkg2 = await makePackage(stack.dir, "v2");
      const r2 = await ops.request("POST", "/api/patches/Demo/HelloServer?comment=second", { raw: pkg2 });
      expect(r2.status, JSON.stringify(r2.body)).to.equal(201);
      v2 = r2.body.version;
      expect(v2).to.be.above(v1);
    });

    it("refuses a non-tgz, gzip that is not tar, a wrong sha256, an empty body and an oversized file: 4xx on field file, nothing stored", async () => {
      const before = (await ops.get("/api/patches/Demo/HelloServer")).body.patches.length;
      const notGzip = await ops.request("POST", "/api/patches/Demo/HelloServer", { raw: Buffer.from("PK\u0003\u0004 this is a zip") });
      expect(notGzip.status).to.equal(400);
      expect(notGzip.body.error).to.include({ code: "PATCH_INVALID", field: "file" });
      const notTar = await ops.request("POST", "/api/patches/Demo/HelloServer", { raw: zlib.gzipSync(Buffer.alloc(2048, "a")) });
      expect(notTar.status).to.equal(400);
      expect(notTar.body.error.message).to.contain("tar archive");
      const pkg = await makePackage(stack.dir, "v3");
      const wrongSha = await ops.request("POST", "/api/patches/Demo/HelloServer", { raw: pkg, headers: { "x-sha256": "0".repeat(64) } });
      expect(wrongSha.status).to.equal(400);
      const badSha = await ops.request("POST", "/api/patches/Demo/HelloServer", { raw: pkg, headers: { "x-sha256": "xyz" } });
      expect(badSha.status).to.equal(400);
      const empty = await ops.request("POST", "/api/patches/Demo/HelloServer", { raw: Buffer.alloc(0) });
      expect(empty.status).to.equal(400);
      const big = Buffer.concat([pkg, Buffer.alloc(1024 * 1024 + 1)]);
      const tooBig = await ops.request("POST", "/api/patches/Demo/HelloServer", { raw: big }).catch((e: Error) => ({ status: 0, body: e.message }) as any);
      expect(tooBig.status).to.be.oneOf([413, 0]); // refused before reading: the connection may close under the body
      if (tooBig.status === 413) expect(tooBig.body.error.code).to.equal("ADMIN_UPLOAD_TOO_LARGE");
      const unknownServer = await ops.request("POST", "/api/patches/Demo/NoSuchServer", { raw: pkg });
      expect(unknownServer.status).to.equal(404);
      const badName = await ops.request("POST", "/api/patches/Demo/bad%20name", { raw: pkg });
      expect(badName.status).to.equal(400);
      expect((await ops.get("/api/patches/Demo/HelloServer")).body.patches.length).to.equal(before);
    });

    it("403 for a viewer and another application's operator; the viewer can list", async () => {
      const pkg = await makePackage(stack.dir, "denied");
      const r = await viewer.request("POST", "/api/patches/Demo/HelloServer", { raw: pkg });
      expect(r.status).to.equal(403);
      expect((await other.request("POST", "/api/patches/Demo/HelloServer", { raw: pkg })).status).to.equal(403);
      const list = await viewer.get("/api/patches/Demo/HelloServer");
      expect(list.status).to.equal(200);
      expect(list.body.patches.map((p: any) => p.version)).to.have.members([v1, v2]);
      expect(list.body.patches[0]).to.include.keys("sha256", "size", "uploader", "createdAt", "isDefault");
      expect((await other.get("/api/patches/Demo/HelloServer")).status).to.equal(403);
    });

    it("marks a default (operator; 403 viewer; 404 unknown version; 400 bad version)", async () => {
      expect((await viewer.put(`/api/patches/Demo/HelloServer/${v1}/default`)).status).to.equal(403);
      const r = await ops.put(`/api/patches/Demo/HelloServer/${v1}/default`);
      expect(r.status, JSON.stringify(r.body)).to.equal(200);
      expect(r.body.isDefault).to.equal(true);
      expect((await ops.put(`/api/patches/Demo/HelloServer/999/default`)).status).to.equal(404);
      expect((await ops.put(`/api/patches/Demo/HelloServer/zero/default`)).status).to.equal(400);
      const list = await ops.get("/api/patches/Demo/HelloServer");
      expect(list.body.patches.filter((p: any) => p.isDefault).map((p: any) => p.version)).to.deep.equal([v1]);
    });
  });

  describe("tasks", () => {
    it("publishes to both instances and the task reaches success; the SSE watch streams it", async () => {
      expect((await viewer.post("/api/tasks", { kind: "publish", instanceIds, version: v1 })).status).to.equal(403);
      const noVersion = await ops.post("/api/tasks", { kind: "publish", instanceIds });
      expect(noVersion.status).to.equal(400);
      expect(noVersion.body.error.field).to.equal("version");
      const noIds = await ops.post("/api/tasks", { kind: "publish", instanceIds: [], version: v1 });
      expect(noIds.body.error.field).to.equal("instanceIds");
      expect((await ops.post("/api/tasks", { kind: "explode", instanceIds, version: v1 })).status).to.equal(400);
      expect((await ops.post("/api/tasks", { kind: "publish", instanceIds: [999999], version: v1 })).status).to.equal(404);

      const r = await ops.post("/api/tasks", { kind: "publish", instanceIds, version: v1, batchSize: 1, stopOnFailure: true });
      expect(r.status, JSON.stringify(r.body)).to.equal(201);
      publishTask = r.body.id;
      // The live view: Server-Sent Events until the task ends.
      const res = await fetch(`${stack.url}/api/tasks/${publishTask}/watch`, { headers: { cookie: ops.cookie } });
      expect(res.status).to.equal(200);
      expect(res.headers.get("content-type")).to.match(/text\/event-stream/);
      const text = await res.text();
      const events = text.split("\n\n").filter((b) => b.startsWith("data: ")).map((b) => JSON.parse(b.slice(6)));
      expect(events.length).to.be.at.least(1);
      expect(events.at(-1).status).to.equal("success");
      expect(text).to.contain("event: end");
      const t = await ops.get(`/api/tasks/${publishTask}`);
      expect(t.body.status).to.equal("success");
      expect(t.body.items.map((i: any) => i.status)).to.deep.equal(["SUCCESS", "SUCCESS"]);
      const inst = await ops.get("/api/instances?application=Demo&server=HelloServer");
      expect(inst.body.instances.map((i: any) => [i.observedState, i.observedVersion])).to.deep.equal([["active", v1], ["active", v1]]);
    });

    it("watch and get: 403 for another application's user, 404 for an unknown task, 400 for a bad id", async () => {
      expect((await other.get(`/api/tasks/${publishTask}`)).status).to.equal(403);
      expect((await other.get(`/api/tasks/${publishTask}/watch`)).status).to.equal(403);
      expect((await ops.get(`/api/tasks/999999`)).status).to.equal(404);
      expect((await ops.get(`/api/tasks/999999/watch`)).status).to.equal(404);
      expect((await ops.get(`/api/tasks/x1`)).status).to.equal(400);
      expect((await ops.get(`/api/tasks?limit=-1`)).status).to.equal(400);
    });

    it("publishes v2, then one-click rollback returns every instance to v1", async () => {
      const r = await ops.post("/api/tasks", { kind: "publish", instanceIds, version: v2 });
      expect(r.status).to.equal(201);
      await waitFor("v2 published", async () => (await ops.get(`/api/tasks/${r.body.id}`)).body.status === "success");
      expect((await viewer.post(`/api/tasks/${r.body.id}/rollback`)).status).to.equal(403);
      expect((await ops.post(`/api/tasks/abc/rollback`)).status).to.equal(400);
      const rb = await ops.post(`/api/tasks/${r.body.id}/rollback`);
      expect(rb.status, JSON.stringify(rb.body)).to.equal(201);
      expect(rb.body.kind).to.equal("publish");
      await waitFor("rollback done", async () => (await ops.get(`/api/tasks/${rb.body.id}`)).body.status === "success");
      const inst = await ops.get("/api/instances?application=Demo&server=HelloServer");
      expect(inst.body.instances.map((i: any) => i.observedVersion)).to.deep.equal([v1, v1]);
      const list = await viewer.get("/api/tasks?application=Demo&server=HelloServer");
      expect(list.status).to.equal(200);
      expect(list.body.tasks.map((t: any) => t.id)).to.include.members([publishTask, r.body.id, rb.body.id]);
      expect((await other.get("/api/tasks?application=Demo")).status).to.equal(403);
    });

    it("restarts one instance (operator) and refuses to delete a patch an instance runs (409)", async () => {
      const r = await ops.post("/api/tasks", { kind: "restart", instanceIds: [instanceIds[0]] });
      expect(r.status, JSON.stringify(r.body)).to.equal(201);
      await waitFor("restart done", async () => ["success", "failed", "partial"].includes((await ops.get(`/api/tasks/${r.body.id}`)).body.status));
      const del = await ops.del(`/api/patches/Demo/HelloServer/${v1}`);
      expect(del.status).to.equal(409);
      expect((await viewer.del(`/api/patches/Demo/HelloServer/${v2}`)).status).to.equal(403);
      expect((await ops.del(`/api/patches/Demo/HelloServer/0`)).status).to.equal(400);
    });

    it("canary publish: the registry's defaults; 0 %, 150 % and bad options refused on their field with no task made; a held canary promoted by an operator (403 viewer, 400 bad action, 409 once decided)", async () => {
      const defaults = await viewer.get("/api/canary/defaults");
      expect(defaults.status).to.equal(200);
      expect(defaults.body).to.deep.equal({ bakeS: 300, maxErrorRateDelta: 1, maxP99Ratio: 1.5, minCalls: 100, p99FloorMs: 10, maxBakeS: 86400 });
      const tasksBefore = (await ops.get("/api/tasks?limit=500")).body.tasks.length;
      const publish = (canary: unknown, kind = "publish") => ops.post("/api/tasks", { kind, instanceIds, version: v2, canary });
      const zero = await publish({ percent: 0 });
      expect(zero.status).to.equal(400);
      expect(zero.body.error).to.deep.equal({ code: "INVALID_ARGUMENT", field: "canary.percent", message: "a canary needs a share of calls over 0 % or a number of instances of at least 1" });
      const over = await publish({ percent: 150 });
      expect(over.status).to.equal(400);
      expect(over.body.error.field).to.equal("canary.percent");
      expect(over.body.error.message).to.contain("canary share 150 % is out of range: it must be over 0 % and under 100 %");
      const all = await publish({ instances: 2 });
      expect([all.status, all.body.error.field]).to.deep.equal([400, "canary.instances"]);
      const bake = await publish({ percent: 10, bakeS: 100_000 });
      expect([bake.status, bake.body.error.field]).to.deep.equal([400, "canary.bakeS"]);
      const text = await publish({ percent: "10" });
      expect([text.status, text.body.error.field]).to.deep.equal([400, "canary.percent"]);
      const restart = await publish({ percent: 10 }, "restart");
      expect([restart.status, restart.body.error.field]).to.deep.equal([400, "canary"]);
      expect((await ops.get("/api/tasks?limit=500")).body.tasks.length, "no task made").to.equal(tasksBefore);
      expect((await viewer.post("/api/tasks", { kind: "publish", instanceIds, version: v2, canary: { percent: 50 } })).status).to.equal(403);

      // No calls reach these fake instances: after its 1 s bake the canary has too few calls to judge and is held.
      const r = await publish({ instances: 1, bakeS: 1, minCalls: 5 });
      expect(r.status, JSON.stringify(r.body)).to.equal(201);
      expect(r.body.canary.options).to.include({ instances: 1, bakeS: 1, minCalls: 5, maxP99Ratio: 1.5, maxErrorRateDelta: 1, hold: false });
      const held = await waitFor("the canary held", async () => {
        const t = (await ops.get(`/api/tasks/${r.body.id}`)).body;
        return t.canary?.state === "held" ? t : undefined;
      });
      expect(held.canary.reason).to.contain("only 0 call(s) reached the canary in the 1 s bake, fewer than the 5 needed");
      expect(held.status).to.equal("running");
      expect((await viewer.post(`/api/tasks/${r.body.id}/canary`, { action: "promote" })).status).to.equal(403);
      expect((await other.post(`/api/tasks/${r.body.id}/canary`, { action: "promote" })).status).to.equal(403);
      const maybe = await ops.post(`/api/tasks/${r.body.id}/canary`, { action: "maybe" });
      expect([maybe.status, maybe.body.error.field]).to.deep.equal([400, "action"]);
      expect((await ops.post(`/api/tasks/${publishTask}/canary`, { action: "promote" })).status, "not a canary").to.equal(409);
      const promoted = await ops.post(`/api/tasks/${r.body.id}/canary`, { action: "promote" });
      expect(promoted.status, JSON.stringify(promoted.body)).to.equal(200);
      const done = await waitFor("the promoted task to end", async () => {
        const t = (await ops.get(`/api/tasks/${r.body.id}`)).body;
        return ["success", "failed", "partial"].includes(t.status) ? t : undefined;
      });
      expect([done.status, done.canary.state, done.canary.decidedBy]).to.deep.equal(["success", "promoted", OPS.name]);
      const inst = await ops.get("/api/instances?application=Demo&server=HelloServer");
      expect(inst.body.instances.map((i: any) => i.observedVersion)).to.deep.equal([v2, v2]);
      const again = await ops.post(`/api/tasks/${r.body.id}/canary`, { action: "rollback" });
      expect(again.status).to.equal(409);
      expect(again.body.error.message).to.contain("there is nothing left to decide");
    });
  });

  describe("config", () => {
    const app = { level: "application", application: "Demo" };
    const srv = { level: "server", application: "Demo", server: "HelloServer" };
    const q = (o: Record<string, string>) => new URLSearchParams(o).toString();

    it("writes files at application and server level, with history, versions and rollback", async () => {
      expect((await viewer.put("/api/configs/file", { scope: app, fileName: "app.json", content: "{}" })).status).to.equal(403);
      const bad = await ops.put("/api/configs/file", { scope: app, fileName: "../etc/passwd", content: "x" });
      expect(bad.status).to.equal(400);
      expect(bad.body.error.field).to.equal("fileName");
      const badLevel = await ops.put("/api/configs/file", { scope: { level: "galaxy", application: "Demo" }, fileName: "a.json", content: "x" });
      expect(badLevel.status).to.equal(400);
      expect(badLevel.body.error.field).to.match(/^scope/);
      const noServer = await ops.put("/api/configs/file", { scope: { level: "server", application: "Demo" }, fileName: "a.json", content: "x" });
      expect(noServer.body.error.field).to.equal("scope.server");

      const a1 = await ops.put("/api/configs/file", { scope: app, fileName: "app.json", content: '{"a":1,"b":{"c":1}}', comment: "first" });
      expect(a1.status, JSON.stringify(a1.body)).to.equal(200);
      expect(a1.body.version).to.equal(1);
      const a2 = await ops.put("/api/configs/file", { scope: app, fileName: "app.json", content: '{"a":2,"b":{"c":1}}', comment: "second" });
      expect(a2.body.version).to.equal(2);
      const s1 = await ops.put("/api/configs/file", { scope: srv, fileName: "app.json", content: '{"b":{"d":2}}' });
      expect(s1.status).to.equal(200);

      const files = await viewer.get(`/api/configs/files?${q(app)}`);
      expect(files.status).to.equal(200);
      expect(files.body.files.map((f: any) => [f.fileName, f.currentVersion])).to.deep.equal([["app.json", 2]]);
      const hist = await viewer.get(`/api/configs/history?${q({ ...app, fileName: "app.json" })}`);
      expect(hist.body.versions.map((v: any) => v.version)).to.deep.equal([2, 1]);
      expect(hist.body.versions[0]).to.include({ author: "ops", comment: "second" });
      const first = await viewer.get(`/api/configs/file?${q({ ...app, fileName: "app.json", version: "1" })}`);
      expect(first.body.content).to.equal('{"a":1,"b":{"c":1}}');
      expect((await viewer.get(`/api/configs/file?${q({ ...app, fileName: "nope.json" })}`)).status).to.equal(404);
      expect((await viewer.get(`/api/configs/history?${q({ level: "application", fileName: "app.json" })}`)).status).to.equal(400);
      expect((await other.get(`/api/configs/files?${q(app)}`)).status).to.equal(403);

      expect((await viewer.post("/api/configs/rollback", { scope: app, fileName: "app.json", version: 1 })).status).to.equal(403);
      expect((await ops.post("/api/configs/rollback", { scope: app, fileName: "app.json", version: 0 })).status).to.equal(400);
      const rb = await ops.post("/api/configs/rollback", { scope: app, fileName: "app.json", version: 1, comment: "undo" });
      expect(rb.status, JSON.stringify(rb.body)).to.equal(200);
      expect(rb.body).to.include({ version: 3, content: '{"a":1,"b":{"c":1}}', rolledBackFrom: 1 });
    });

    it("refuses JSON or YAML that does not parse (400 naming line and column, field content); nothing stored", async () => {
      const bad = await ops.put("/api/configs/file", { scope: srv, fileName: "app.json", content: '{"b":\n  {"d": 3,}}' });
      expect(bad.status, JSON.stringify(bad.body)).to.equal(400);
      expect(bad.body.error).to.include({ code: "INVALID_ARGUMENT", field: "content" });
      expect(bad.body.error.message).to.include('"app.json"').and.include("line 2, column 11");
      const yaml = await ops.put("/api/configs/file", { scope: srv, fileName: "extra.yaml", content: "a: [1\n" });
      expect(yaml.status).to.equal(400);
      expect(yaml.body.error.message).to.match(/not valid YAML: line \d+, column \d+/);
      const hist = await viewer.get(`/api/configs/history?${q({ ...srv, fileName: "app.json" })}`);
      expect(hist.body.versions.map((v: any) => v.content)).to.deep.equal(['{"b":{"d":2}}']);
      expect((await viewer.get(`/api/configs/file?${q({ ...srv, fileName: "extra.yaml" })}`)).status).to.equal(404);
    });

    it("shows the merged view an instance loads, and the files it sees", async () => {
      const inst = { application: "Demo", server: "HelloServer", node: "node-a" };
      const seen = await viewer.get(`/api/configs/instance-files?${q(inst)}`);
      expect(seen.status, JSON.stringify(seen.body)).to.equal(200);
      expect(seen.body.files.map((f: any) => f.fileName)).to.include("app.json");
      const merged = await viewer.get(`/api/configs/merged?${q({ ...inst, fileName: "app.json" })}`);
      expect(merged.status).to.equal(200);
      expect(JSON.parse(merged.body.content)).to.deep.equal({ a: 1, b: { c: 1, d: 2 } });
      expect(merged.body.layers.map((l: any) => l.scope.level)).to.deep.equal(["application", "server"]);
      expect((await viewer.get(`/api/configs/merged?${q({ ...inst, fileName: "" })}`)).status).to.equal(400);
    });

    it("pushes a file to chosen instances (the agent relays sgrid.loadconfig); 403 viewer; 404 a file the instance does not see", async () => {
      const r = await ops.post("/api/configs/push", { fileName: "app.json", instanceIds });
      expect(r.status, JSON.stringify(r.body)).to.equal(200);
      expect(r.body.results.map((x: any) => [x.instanceId, x.ok, x.message])).to.deep.equal(instanceIds.map((id) => [id, true, "echo sgrid.loadconfig app.json"]));
      expect((await viewer.post("/api/configs/push", { fileName: "app.json", instanceIds })).status).to.equal(403);
      expect((await ops.post("/api/configs/push", { fileName: "nope.json", instanceIds })).status).to.equal(404);
      expect((await ops.post("/api/configs/push", { fileName: "a/b", instanceIds })).status).to.equal(400);
    });

    it("deletes a file (operator; 403 viewer; 400 bad scope)", async () => {
      expect((await ops.put("/api/configs/file", { scope: srv, fileName: "tmp.conf", content: "x" })).status).to.equal(200);
      expect((await viewer.del(`/api/configs/file?${q({ ...srv, fileName: "tmp.conf" })}`)).status).to.equal(403);
      expect((await ops.del(`/api/configs/file?${q({ level: "server", application: "Demo", fileName: "tmp.conf" })}`)).status).to.equal(400);
      expect((await ops.del(`/api/configs/file?${q({ ...srv, fileName: "tmp.conf" })}`)).status).to.equal(204);
      expect((await ops.get(`/api/configs/files?${q(srv)}`)).body.files.map((f: any) => f.fileName)).to.deep.equal(["app.json"]);
    });
  });

  describe("nodes and events", () => {
    it("lists nodes with samples for the charts; deleting needs admin", async () => {
      const r = await viewer.get("/api/nodes");
      expect(r.status).to.equal(200);
      const a = r.body.nodes.find((n: any) => n.name === "node-a");
      expect(a).to.include({ online: true, instanceCount: 1 });
      await waitFor("samples", async () => (await viewer.get("/api/nodes")).body.nodes[0].samples.length >= 2);
      const s = (await viewer.get("/api/nodes")).body.nodes[0].samples.at(-1);
      expect(s.memoryTotal).to.equal(8 * 1024 ** 3);
      expect(s.diskTotal).to.equal(100 * 1024 ** 3);
      expect((await ops.del("/api/nodes/node-b")).status).to.equal(403);
      expect((await admin.del("/api/nodes/bad..name")).status).to.equal(400);
      expect((await admin.del("/api/nodes/node-zz")).status).to.equal(404);
    });

    it("lists events: who did what; a viewer of one application only with its target prefix", async () => {
      const r = await admin.get("/api/events?limit=500");
      expect(r.status).to.equal(200);
      const kinds = r.body.events.map((e: any) => e.kind);
      expect(kinds).to.include.members(["patch.upload", "config.put"]);
      const upload = r.body.events.find((e: any) => e.kind === "patch.upload");
      expect(upload.actor).to.equal("ops");
      expect((await viewer.get("/api/events")).status).to.equal(403);
      const mine = await viewer.get("/api/events?targetPrefix=Demo.");
      expect(mine.status).to.equal(200);
      expect((await viewer.get("/api/events?limit=x")).status).to.equal(400);
    });
  });

  describe("users", () => {
    it("an admin manages users and grants; 403 for everyone else; 400 on bad input", async () => {
      expect((await ops.get("/api/users")).status).to.equal(403);
      expect((await ops.post("/api/users", { name: "u1", password: "password-123" })).status).to.equal(403);
      const short = await admin.post("/api/users", { name: "u1", password: "short" });
      expect(short.status).to.equal(400);
      expect(short.body.error.field).to.equal("password");
      const badRole = await admin.post("/api/users", { name: "u1", password: "password-123", roles: [{ application: "Demo", role: "god" }] });
      expect(badRole.body.error.field).to.equal("roles.0.role");
      const c = await admin.post("/api/users", { name: "u1", password: "password-123", roles: [] });
      expect(c.status).to.equal(201);
      expect((await admin.post("/api/users", { name: "u1", password: "password-123" })).status).to.equal(409);
      const g = await admin.post("/api/users/u1/grants", { application: "Demo", role: "operator" });
      expect(g.status).to.equal(200);
      expect(g.body.roles).to.deep.equal([{ application: "Demo", role: "operator" }]);
      expect((await ops.post("/api/users/u1/grants", { application: "Demo", role: "admin" })).status).to.equal(403);
      expect((await admin.post("/api/users/u1/grants", { application: "Demo" })).status).to.equal(400);
      const rv = await admin.del("/api/users/u1/grants/Demo");
      expect(rv.body.roles).to.deep.equal([]);
      expect((await ops.del("/api/users/u1/grants/Demo")).status).to.equal(403);
      expect((await admin.put("/api/users/u1/password", { password: "another-pass-1" })).status).to.equal(204);
      expect((await admin.put("/api/users/u1/password", {})).status).to.equal(400);
      expect((await ops.put("/api/users/u1/password", { password: "another-pass-2" })).status).to.equal(403);
      const u1 = new Client(stack.url);
      expect((await u1.login("u1", "another-pass-1")).status).to.equal(200);
      expect((await ops.del("/api/users/u1")).status).to.equal(403);
      expect((await admin.del("/api/users/u1")).status).to.equal(204);
      expect((await admin.del("/api/users/u1")).status).to.equal(404);
      // The deleted user's session no longer works (the registry refuses its token).
      expect((await u1.get("/api/servers")).status).to.equal(401);
      expect((await u1.get("/api/session")).status).to.equal(401);
    });
  });

  describe("undeploy and delete", () => {
    it("deletes a server: 403 viewer, 409 while it has instances, 204 after undeploy", async () => {
      expect((await viewer.del("/api/servers/Demo/HelloServer")).status).to.equal(403);
      expect((await ops.del("/api/servers/Demo/bad%20name")).status).to.equal(400);
      const busy = await ops.del("/api/servers/Demo/HelloServer");
      expect(busy.status).to.equal(409);
      const t = await ops.post("/api/tasks", { kind: "undeploy", instanceIds });
      expect(t.status).to.equal(201);
      await waitFor("undeploy done", async () => (await ops.get(`/api/tasks/${t.body.id}`)).body.status === "success");
      await waitFor("instances gone", async () => (await ops.get("/api/instances?application=Demo")).body.instances.length === 0);
      const r = await ops.del("/api/servers/Demo/HelloServer");
      expect(r.status, JSON.stringify(r.body)).to.equal(204);
      expect((await ops.del("/api/servers/Demo/HelloServer")).status).to.equal(404);
    });
  });
});

describe("admin over TLS", function () {
  this.timeout(60_000);
  it("marks the session cookie Secure", async () => {
    const { execFileSync } = await import("node:child_process");
    const fs = await import("node:fs");
    const path = await import("node:path");
    const stack = await startStack({ loginAttemptsPerMinute: 1000 });
    const key = path.join(stack.dir, "key.pem");
    const cert = path.join(stack.dir, "cert.pem");
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"], { stdio: "ignore" });
    const tlsAdmin = new AdminServer({ registry: stack.registryTarget, listen: "127.0.0.1:0", tls: { cert: fs.readFileSync(cert), key: fs.readFileSync(key) } });
    const { url } = await tlsAdmin.start();
    try {
      expect(url).to.match(/^https:/);
      const https = await import("node:https");
      const setCookie = await new Promise<string[]>((resolve, reject) => {
        const req = https.request(`${url}/api/login`, { method: "POST", rejectUnauthorized: false, headers: { "content-type": "application/json" } }, (res) => {
          res.resume();
          resolve(res.headers["set-cookie"] ?? []);
        });
        req.on("error", reject);
        req.end(JSON.stringify({ user: "admin", password: ADMIN_PASSWORD }));
      });
      const cookie = setCookie.find((c) => c.startsWith("sgrid_admin_sid="))!;
      expect(cookie).to.match(/; secure/i).and.match(/httponly/i).and.match(/samesite=strict/i);
    } finally {
      await tlsAdmin.stop();
      await stack.stop();
    }
  });
});
