/**
 * `sgrid config` and `sgrid login` against a real registry: set (stdin and
 * --from), get (a level, a past version, the merged view), list, history,
 * rollback, push (exit 1 when an instance does not confirm), scope errors;
 * the token cache (0600, no password in it, reused, renewed when refused).
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as path from "node:path";
import { Communicator } from "sgridnext";
import { HelloProxy } from "sgridnext/gen/sgrid/demo/v1/hello.sgrid";
import { buildPackage } from "sgridnext-tools";
import { RUNTIME_DIR, outputDir } from "../helpers/paths";
import { ADMIN_PASSWORD, CliCluster, waitFor } from "./helpers/cluster";

describe("sgrid config and login (real registry) @slow", function () {
  this.timeout(120_000);
  let cluster: CliCluster;
  let out: string;
  const scope = ["--app", "Demo", "--server", "HelloServer"];

  before(async () => {
    out = outputDir("config");
    cluster = await new CliCluster(path.join(out, "cluster")).start();
    // A server with an instance on a node that is not connected (push must report it).
    await cluster.registry.store.nodes.upsert({ name: "node-off", address: "127.0.0.1", agentVersion: "test" });
    await cluster.admin.deploy({ application: "Demo", server: "HelloServer", type: "node", nodes: ["node-off"], adapters: [{ obj: "GreeterObj", port: 0 }] }, cluster.as);
  });
  after(async () => cluster?.stop());

  it("sgrid login caches a token (0600, no password) that later commands use without a password", async () => {
    const home = path.join(out, "home-login");
    const login = await cluster.run(["login"], { home });
    expect(login.code, login.stderr).to.equal(0);
    expect(login.stdout).to.equal(`logged in to ${cluster.target} as admin (admin on *)\n`);
    const file = path.join(home, "tokens.json");
    expect(fs.statSync(file).mode & 0o777).to.equal(0o600);
    expect(fs.statSync(home).mode & 0o777).to.equal(0o700);
    const text = fs.readFileSync(file, "utf8");
    expect(text).to.not.include(ADMIN_PASSWORD);
    expect(Object.keys(JSON.parse(text))).to.deep.equal([`${cluster.target}|admin`]);

    const set = await cluster.run(["config", "set", "HelloServer.json", ...scope, "--comment", "first"], { home, input: '{"greeting":"Hi"}\n', env: { SGRID_PASSWORD: undefined } });
    expect(set.code, set.stderr).to.equal(0);
    expect(set.stdout).to.equal("HelloServer.json at server Demo.HelloServer: version 1\n");

    // The session ends on the registry: the cached token is refused, the CLI logs in again (SGRID_PASSWORD) and carries on.
    const [, token] = Object.entries(JSON.parse(text) as Record<string, { token: string }>)[0]!;
    await cluster.admin.logout({}, { metadata: { authorization: `Bearer ${token.token}` } });
    // The registry trusts a verified token for a few seconds: wait until it refuses this one.
    await waitFor("the ended session to be refused", () => cluster.admin.whoAmI({}, { metadata: { authorization: `Bearer ${token.token}` } }).then(() => false, () => true));
    const again = await cluster.run(["config", "list", ...scope], { home });
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stdout).to.match(/^HelloServer\.json\tversion 1\t\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\n$/);
    // A token from SGRID_PASSWORD alone is not written to disk.
    expect(JSON.parse(fs.readFileSync(file, "utf8"))).to.deep.equal({});

    const logout = await cluster.run(["logout"], { home });
    expect(logout.stdout).to.equal(`logged out of ${cluster.target} (admin)\n`);
  });

  it("sets from --from and stdin, gets a level and a past version, shows history newest first", async () => {
    const file = path.join(out, "app.json");
    fs.writeFileSync(file, '{"greeting":"Hello","color":"blue"}\n');
    let res = await cluster.run(["config", "set", "HelloServer.json", "--app", "Demo", "--from", file, "--comment", "app default"]);
    expect(res.stdout).to.equal("HelloServer.json at application Demo: version 1\n");
    res = await cluster.run(["config", "set", "HelloServer.json", ...scope, "--comment", "second"], { input: '{"greeting":"Bonjour"}\n' });
    expect(res.stdout).to.equal("HelloServer.json at server Demo.HelloServer: version 2\n");

    res = await cluster.run(["config", "get", "HelloServer.json", ...scope]);
    expect(res.stdout).to.equal('{"greeting":"Bonjour"}\n');
    res = await cluster.run(["config", "get", "HelloServer.json", ...scope, "--version", "1"]);
    expect(res.stdout).to.equal('{"greeting":"Hi"}\n');

    res = await cluster.run(["config", "history", "HelloServer.json", ...scope]);
    const lines = res.stdout.trim().split("\n").map((l) => l.split("\t"));
    expect(lines.map((l) => [l[0], l[2], l[3]])).to.deep.equal([["v2", "admin", "second"], ["v1", "admin", "first"]]);
  });

  it("shows the merged view an instance loads", async () => {
    const res = await cluster.run(["config", "get", "HelloServer.json", ...scope, "--node", "node-off", "--merged"]);
    expect(res.code, res.stderr).to.equal(0);
    expect(JSON.parse(res.stdout)).to.deep.equal({ greeting: "Bonjour", color: "blue" });
    expect(res.stderr).to.equal("(HelloServer.json for Demo.HelloServer@node-off: application v1 < server v2)\n");
  });

  it("rolls back to an old version as a new one", async () => {
    const res = await cluster.run(["config", "rollback", "HelloServer.json", ...scope, "--to", "1", "--comment", "undo"]);
    expect(res.stdout).to.equal("HelloServer.json at server Demo.HelloServer: version 3 (content of version 1)\n");
    const get = await cluster.run(["config", "get", "HelloServer.json", ...scope]);
    expect(get.stdout).to.equal('{"greeting":"Hi"}\n');
    const hist = await cluster.run(["config", "history", "HelloServer.json", ...scope, "--limit", "1"]);
    expect(hist.stdout).to.match(/^v3\t.*\tadmin\tundo \(copy of v1\)\n$/);
  });

  it("push exits 1 naming the instance that did not confirm", async () => {
    const res = await cluster.run(["config", "push", "HelloServer.json", ...scope]);
    expect(res.code).to.equal(1);
    expect(res.stdout).to.match(/^Demo\.HelloServer@node-off #\d+: FAILED \(.+\)\n$/);
  });

  it("names what is wrong: scope flags, missing files, content on a terminal-less run", async () => {
    let res = await cluster.run(["config", "get", "HelloServer.json"]);
    expect(res.stderr).to.equal("sgrid: --app is required (add --server for the server level, and --node for one instance)\n");
    res = await cluster.run(["config", "get", "HelloServer.json", "--app", "Demo", "--node", "n1"]);
    expect(res.stderr).to.equal("sgrid: --node needs --server (instance level: --app, --server and --node)\n");
    res = await cluster.run(["config", "get", "nope.json", "--app", "Demo"]);
    expect(res.code).to.equal(1);
    expect(res.stderr).to.equal('sgrid: config file "nope.json" at application Demo not found\n');
    res = await cluster.run(["config", "set", "x.json", "--app", "Demo", "--from", path.join(out, "missing.json")]);
    expect(res.stderr).to.match(/^sgrid: cannot read --from .*missing\.json: ENOENT/);
    res = await cluster.run(["config", "rollback", "HelloServer.json", ...scope, "--to", "zero"]);
    expect(res.stderr).to.equal('sgrid: --to must be a version number >= 1, got "zero"\n');
  });

  it("set of JSON or YAML that does not parse exits 1 naming the line and column; nothing is stored", async () => {
    const before = await cluster.run(["config", "history", "HelloServer.json", ...scope]);
    const file = path.join(out, "broken.json");
    fs.writeFileSync(file, '{\n  "greeting": "Hi",\n  "password": s3cret\n}\n');
    let res = await cluster.run(["config", "set", "HelloServer.json", ...scope, "--from", file]);
    expect(res.code).to.equal(1);
    expect(res.stdout).to.equal("");
    expect(res.stderr).to.equal('sgrid: config file "HelloServer.json" is not valid JSON: line 3, column 15: Unexpected token \'s\'; nothing was stored\n');
    res = await cluster.run(["config", "set", "extra.yaml", ...scope], { input: "a: 1\n b: 2\n" });
    expect(res.code).to.equal(1);
    expect(res.stderr).to.match(/^sgrid: config file "extra\.yaml" is not valid YAML: line \d+, column \d+: .+; nothing was stored\n$/);
    expect((await cluster.run(["config", "history", "HelloServer.json", ...scope])).stdout).to.equal(before.stdout);
    expect((await cluster.run(["config", "get", "extra.yaml", ...scope])).code).to.equal(1);
  });

  it("push reaches a running servant: it answers with the new value without a restart", async () => {
    await cluster.addAgent("node-a");
    // A servant on this checkout's framework (required by path: no npm install), reading Demo.PushServer's config.
    const src = path.join(out, "push-servant");
    fs.mkdirSync(src);
    const runtime = path.join(RUNTIME_DIR, "dist");
    fs.writeFileSync(path.join(src, "main.js"), `
const { Application } = require(${JSON.stringify(runtime)});
const { HelloServant } = require(${JSON.stringify(path.join(runtime, "gen/sgrid/demo/v1/hello.sgrid"))});
const app = new Application();
class Hello extends HelloServant {
  async sayHello(req) { return { message: app.config.get("PushServer.json").value.greeting + ", " + req.name, count: process.pid }; }
  async *greetings() {}
}
app.config.load("PushServer.json").then(() => { app.addServant("HelloObj", new Hello()); return app.start(); })
  .catch((err) => { console.error(err); process.exit(1); });
`);
    fs.writeFileSync(path.join(src, "sgrid.json"), JSON.stringify({ app: "Demo", server: "PushServer", type: "node", entry: "main.js", include: ["main.js"] }));
    const pkg = (await buildPackage({ dir: src, version: "1", out })).file;
    const pscope = ["--app", "Demo", "--server", "PushServer"];
    // The server and its instance first (config needs the server), then its config, then the publish.
    await cluster.admin.deploy({ application: "Demo", server: "PushServer", type: "node", nodes: ["node-a"], adapters: [{ obj: "HelloObj", port: 0 }] }, cluster.as);
    let res = await cluster.run(["config", "set", "PushServer.json", ...pscope], { input: '{"greeting":"Hi"}' });
    expect(res.code, res.stderr).to.equal(0);
    res = await cluster.run(["publish", "Demo.PushServer", pkg, "--nodes", "node-a"]);
    expect(res.code, res.stdout + res.stderr).to.equal(0);

    const inst = (await cluster.admin.listInstances({ application: "Demo", server: "PushServer" }, cluster.as)).instances[0]!;
    const comm = new Communicator();
    try {
      const hello = comm.stringToProxy(HelloProxy, `127.0.0.1:${inst.adapters[0]!.port}`);
      const first = await waitFor("the servant to answer", () => hello.sayHello({ name: "Ann" }).catch(() => undefined));
      expect(first.message).to.equal("Hi, Ann");
      res = await cluster.run(["config", "set", "PushServer.json", ...pscope], { input: '{"greeting":"Hola"}' });
      expect(res.code, res.stderr).to.equal(0);
      res = await cluster.run(["config", "push", "PushServer.json", ...pscope]);
      expect(res.code, res.stdout + res.stderr).to.equal(0);
      expect(res.stdout).to.match(/^Demo\.PushServer@node-a #\d+: ok \(.*PushServer\.json.*\)\n$/);
      const after = await hello.sayHello({ name: "Ann" });
      expect(after).to.deep.equal({ message: "Hola, Ann", count: first.count }); // same process: no restart
    } finally {
      comm.close();
    }
  });

  it("uses SGRID_TOKEN as it is", async () => {
    const { token } = await cluster.admin.login({ user: "admin", password: ADMIN_PASSWORD });
    const res = await cluster.run(["config", "list", "--app", "Demo"], { env: { SGRID_PASSWORD: undefined, SGRID_TOKEN: token }, home: path.join(out, "home-token") });
    expect(res.code, res.stderr).to.equal(0);
    expect(res.stdout).to.match(/^HelloServer\.json\tversion 1\t/);
    expect(fs.existsSync(path.join(out, "home-token"))).to.equal(false);
  });
});
