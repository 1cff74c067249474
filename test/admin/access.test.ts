/**
 * Access control of the admin app against a real registry, as an attacker
 * would try it: reading another application's config files, a registry with
 * a query token, locking other people out by failing logins on purpose, a
 * DNS-rebinding Host, and packages and config files that are refused the
 * same way whichever path they take (admin, `sgrid` CLI, direct gRPC).
 */
import { expect } from "chai";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { Communicator, CONFIG_FILE_MAX_BYTES } from "sgridnext";
import { AdminProxy } from "sgridnext/gen/sgrid/registry/v1/admin.sgrid";
import { PatchProxy } from "sgridnext/gen/sgrid/registry/v1/patch.sgrid";
import { CLI } from "../helpers/paths";
import { ADMIN_PASSWORD, Client, makePackage, startStack, type Reply, type Stack } from "./helpers";

const QUERY_TOKEN = "query-token-for-tests";
const APP_TOKEN = "admin-app-token-for-tests";
const OPS = { name: "ops", password: "ops-password-1" };
const OTHER = { name: "other", password: "other-password-1" };

/** A request from a chosen loopback source address (127.0.0.x), with any Host header. */
function requestFrom(stack: Stack, opts: { from?: string; host?: string; method?: string; path: string; body?: unknown }): Promise<Reply> {
  const u = new URL(stack.url);
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: u.hostname, port: u.port, path: opts.path, method: opts.method ?? "GET", localAddress: opts.from,
      headers: { host: opts.host ?? u.host, ...(payload ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } : {}) },
    }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (d: string) => { text += d; }).on("end", () => {
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode!, body, headers: new Headers(res.headers as Record<string, string>) });
      });
    });
    req.on("error", reject);
    req.end(payload);
  });
}

const login = (stack: Stack, from: string, user: string, password: string) =>
  requestFrom(stack, { from, method: "POST", path: "/api/login", body: { user, password } });

/** Runs the `sgrid` CLI against the stack's registry as the admin user. */
function sgrid(stack: Stack, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = {
    ...process.env, SGRID_LOG_LEVEL: "warn", SGRID_REGISTRY: stack.registryTarget, SGRID_PASSWORD: ADMIN_PASSWORD, SGRID_HOME: path.join(stack.dir, "home"),
  };
  delete env.SGRID_TOKEN;
  delete env.SGRID_USER;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: stack.dir, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => { stdout += d; });
    child.stderr.setEncoding("utf8").on("data", (d: string) => { stderr += d; });
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("admin access control", function () {
  this.timeout(120_000);
  let stack: Stack;
  let admin: Client;
  let ops: Client;
  let other: Client;

  before(async () => {
    // A registry with a query token and an admin app token; an admin app with high limits of its own,
    // so that the registry's limits are the ones tested.
    stack = await startStack(
      { appToken: APP_TOKEN, loginAttemptsPerMinute: 1000, loginFailuresPerUser: 1000, listen: "127.0.0.1:0" },
      { queryToken: QUERY_TOKEN, adminAppToken: APP_TOKEN },
    );
    admin = new Client(stack.url);
    expect((await admin.login("admin", ADMIN_PASSWORD)).status).to.equal(200);
    for (const [u, app] of [[OPS, "Demo"], [OTHER, "Other"]] as const) {
      expect((await admin.post("/api/users", { name: u.name, password: u.password, roles: [{ application: app, role: "operator" }] })).status).to.equal(201);
    }
    // The servers themselves (no instances needed for config files and packages).
    for (const app of ["Demo", "Other"]) await stack.registry.store.servers.create({ application: app, name: "HelloServer", type: "node" });
    ops = new Client(stack.url);
    other = new Client(stack.url);
    expect((await ops.login(OPS.name, OPS.password)).status).to.equal(200);
    expect((await other.login(OTHER.name, OTHER.password)).status).to.equal(200);
    const secret = await ops.put("/api/configs/file", { scope: { level: "application", application: "Demo" }, fileName: "db.json", content: '{"password":"s3cret"}' });
    expect(secret.status, JSON.stringify(secret.body)).to.equal(200);
  });

  after(async () => stack?.stop());

  const q = (o: Record<string, string>) => new URLSearchParams(o).toString();
  const app = { level: "application", application: "Demo", fileName: "db.json" };
  const inst = { application: "Demo", server: "HelloServer", node: "node-a" };

  it("an operator of another application is refused every config read of Demo (403), and never sees the content", async () => {
    for (const url of [
      `/api/configs/file?${q(app)}`,
      `/api/configs/history?${q(app)}`,
      `/api/configs/merged?${q({ ...inst, fileName: "db.json" })}`,
      `/api/configs/instance-files?${q(inst)}`,
      `/api/configs/files?${q({ level: "application", application: "Demo" })}`,
    ]) {
      const r = await other.get(url);
      expect(r.status, url).to.equal(403);
      expect(r.body.error.code, url).to.equal("PERMISSION_DENIED");
      expect(JSON.stringify(r.body), url).not.to.contain("s3cret");
    }
    // Still logged in: a refusal is not a logout.
    expect((await other.get("/api/session")).status).to.equal(200);
  });

  it("with a query token on the registry, Demo's operator reads Demo's config through admin (200) and stays logged in", async () => {
    const file = await ops.get(`/api/configs/file?${q(app)}`);
    expect(file.status, JSON.stringify(file.body)).to.equal(200);
    expect(file.body.content).to.equal('{"password":"s3cret"}');
    expect((await ops.get(`/api/configs/history?${q(app)}`)).body.versions).to.have.length(1);
    const merged = await ops.get(`/api/configs/merged?${q({ ...inst, fileName: "db.json" })}`);
    expect(merged.status).to.equal(200);
    expect(JSON.parse(merged.body.content)).to.deep.equal({ password: "s3cret" });
    expect((await ops.get(`/api/configs/instance-files?${q(inst)}`)).body.files.map((f: any) => f.fileName)).to.deep.equal(["db.json"]);
    expect((await ops.get("/api/session")).status).to.equal(200);
    // The registry's Config API itself still wants the query token (it is the servants' API).
    const c = new Communicator();
    try {
      const { ConfigProxy } = await import("sgridnext/gen/sgrid/registry/v1/config.sgrid");
      const config = c.stringToProxy(ConfigProxy, stack.registryTarget);
      const refused = await config.getVersion({ scope: { level: "application", application: "Demo", server: "", node: "" }, fileName: "db.json", version: 0 }).catch((e: Error) => e);
      expect((refused as { code?: string }).code).to.equal("UNAUTHENTICATED");
    } finally {
      c.close();
    }
  });

  it("failing logins on purpose from one address does not lock the user out from another address", async () => {
    // 25 wrong passwords for "admin" from 127.0.0.2: more than the registry's per-address limit (20) and per-user-and-address limit (5).
    let limited = 0;
    for (let i = 0; i < 25; i++) {
      const r = await login(stack, "127.0.0.2", "admin", `wrong-password-${i}`);
      expect(r.status).to.be.oneOf([401, 429]);
      if (r.status === 429) limited++;
    }
    expect(limited, "the attacker's address is refused").to.be.above(0);
    const attacker = await login(stack, "127.0.0.2", "admin", ADMIN_PASSWORD);
    expect(attacker.status, "even the right password from the attacker's address").to.equal(429);
    // The right password from another address still logs in.
    const owner = await login(stack, "127.0.0.3", "admin", ADMIN_PASSWORD);
    expect(owner.status, JSON.stringify(owner.body)).to.equal(200);
    expect(owner.body.user).to.equal("admin");
    const events = await admin.get("/api/events?kind=user.login&limit=5");
    expect(JSON.stringify(events.body)).to.contain("127.0.0.3");
  });

  it("the registry believes a forwarded address only with the admin app token", async () => {
    const c = new Communicator();
    try {
      const proxy = c.stringToProxy(AdminProxy, stack.registryTarget);
      await proxy.login({ user: OPS.name, password: OPS.password }, { metadata: { "x-forwarded-for": "10.9.9.9", "x-sgrid-admin-app": "not-the-token" } });
      await proxy.login({ user: OPS.name, password: OPS.password }, { metadata: { "x-forwarded-for": "10.8.8.8", "x-sgrid-admin-app": APP_TOKEN } });
    } finally {
      c.close();
    }
    const events = await stack.registry.store.events.list({ kind: "user.login", target: OPS.name });
    const addresses = events.map((e) => (e.data as { address?: string }).address);
    expect(addresses).to.include("10.8.8.8").and.include("127.0.0.1");
    expect(addresses).not.to.include("10.9.9.9");
  });

  it("the admin app's own limit counts failures per user and address too", async () => {
    // (Without the admin app token the registry would count every login through this app as one address.)
    const strict = await startStack({ appToken: APP_TOKEN, loginAttemptsPerMinute: 1000, loginFailuresPerUser: 5 }, { adminAppToken: APP_TOKEN });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await login(strict, "127.0.0.4", "admin", `wrong-password-${i}`)).status);
      expect(statuses).to.deep.equal([401, 401, 401, 401, 401, 429]);
      expect((await login(strict, "127.0.0.4", "admin", ADMIN_PASSWORD)).status).to.equal(429);
      expect((await login(strict, "127.0.0.5", "admin", ADMIN_PASSWORD)).status).to.equal(200);
    } finally {
      await strict.stop();
    }
  });

  it("refuses a foreign Host (DNS rebinding) on every request, even with a matching Origin; IP addresses and allowed names pass", async () => {
    const page = await requestFrom(stack, { path: "/login", host: "evil.example:9600" });
    expect(page.status).to.equal(403);
    const api = await requestFrom(stack, { method: "POST", path: "/api/login", host: "evil.example", body: { user: "admin", password: ADMIN_PASSWORD } });
    expect(api.status).to.equal(403);
    expect(api.body.error.code).to.equal("ADMIN_HOST_NOT_ALLOWED");
    expect(api.body.error.message).to.contain("evil.example");
    expect((await requestFrom(stack, { path: "/login", host: `127.0.0.1:${new URL(stack.url).port}` })).status).to.equal(200);
    expect((await requestFrom(stack, { path: "/login", host: `localhost:${new URL(stack.url).port}` })).status).to.equal(200);
    const named = await startStack({ allowedHosts: ["admin.example.com"] });
    try {
      expect((await requestFrom(named, { path: "/login", host: "Admin.Example.com:9600" })).status).to.equal(200);
      expect((await requestFrom(named, { path: "/login", host: "evil.example" })).status).to.equal(403);
    } finally {
      await named.stop();
    }
  });

  describe("the same refusal on every path", () => {
    let plainTar: string;
    let truncated: string;
    let bigConfig: string;

    before(async () => {
      const good = await makePackage(stack.dir, "good", "Demo", "HelloServer");
      truncated = path.join(stack.dir, "truncated.tgz");
      fs.writeFileSync(truncated, good.subarray(0, good.length - 60));
      plainTar = path.join(stack.dir, "plain.tar");
      fs.writeFileSync(plainTar, zlib.gunzipSync(good));
      bigConfig = path.join(stack.dir, "big.conf");
      fs.writeFileSync(bigConfig, "x".repeat(CONFIG_FILE_MAX_BYTES + 512 * 1024));
    });

    async function direct(file: string): Promise<string> {
      const c = new Communicator();
      try {
        const proxy = c.stringToProxy(AdminProxy, stack.registryTarget);
        const patch = c.stringToProxy(PatchProxy, stack.registryTarget);
        const { token } = await proxy.login({ user: "admin", password: ADMIN_PASSWORD });
        const data = fs.readFileSync(file);
        const sha256 = (await import("node:crypto")).createHash("sha256").update(data).digest("hex");
        async function* messages() {
          yield { kind: { $case: "header" as const, value: { application: "Demo", server: "HelloServer", sha256, size: data.length, comment: "" } } };
          yield { kind: { $case: "data" as const, value: data } };
        }
        const err = await patch.upload(messages(), { metadata: { authorization: `Bearer ${token}` } }).then(() => undefined, (e: Error) => e);
        expect(err, "refused by the registry").to.be.instanceOf(Error);
        expect((err as { code?: string }).code).to.equal("PATCH_INVALID");
        return err!.message;
      } finally {
        c.close();
      }
    }

    it("a plain tar and a truncated gzip: PATCH_INVALID with the same message from admin, sgrid publish and Patch.Upload; nothing stored", async () => {
      const patchesBefore = (await ops.get("/api/patches/Demo/HelloServer")).body.patches.length;
      for (const [file, reason] of [[plainTar, /not gzip-compressed/], [truncated, /bad gzip data/]] as const) {
        const viaAdmin = await ops.request("POST", "/api/patches/Demo/HelloServer", { raw: fs.readFileSync(file) });
        expect(viaAdmin.status).to.equal(400);
        expect(viaAdmin.body.error).to.include({ code: "PATCH_INVALID", field: "file" });
        expect(viaAdmin.body.error.message).to.match(reason);
        const viaGrpc = await direct(file);
        expect(viaGrpc).to.equal(viaAdmin.body.error.message);
        const viaCli = await sgrid(stack, ["publish", "Demo.HelloServer", file]);
        expect(viaCli.code).to.equal(1);
        expect(viaCli.stderr).to.contain(viaAdmin.body.error.message);
      }
      expect((await ops.get("/api/patches/Demo/HelloServer")).body.patches.length).to.equal(patchesBefore);
    });

    it("a config file over the limit: the same refusal from admin, sgrid config set and Admin.PutConfig; nothing stored", async () => {
      const content = fs.readFileSync(bigConfig, "utf8");
      const viaAdmin = await ops.put("/api/configs/file", { scope: { level: "application", application: "Demo" }, fileName: "big.conf", content });
      expect(viaAdmin.status).to.equal(400);
      expect(viaAdmin.body.error.field).to.equal("content");
      expect(viaAdmin.body.error.message).to.contain(`over the limit of ${CONFIG_FILE_MAX_BYTES} bytes`);
      const viaCli = await sgrid(stack, ["config", "set", "big.conf", "--app", "Demo", "--from", bigConfig]);
      expect(viaCli.code).to.equal(1);
      expect(viaCli.stderr).to.contain(viaAdmin.body.error.message);
      const c = new Communicator();
      try {
        const proxy = c.stringToProxy(AdminProxy, stack.registryTarget);
        const { token } = await proxy.login({ user: "admin", password: ADMIN_PASSWORD });
        const err = await proxy.putConfig({ scope: { level: "application", application: "Demo", server: "", node: "" }, fileName: "big.conf", content, comment: "" }, { metadata: { authorization: `Bearer ${token}` } })
          .then(() => undefined, (e: Error) => e);
        expect(err?.message).to.equal(viaAdmin.body.error.message);
      } finally {
        c.close();
      }
      expect((await ops.get(`/api/configs/files?${q({ level: "application", application: "Demo" })}`)).body.files.map((f: any) => f.fileName)).to.deep.equal(["db.json"]);
    });
  });
});
