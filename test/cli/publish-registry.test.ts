/**
 * `sgrid publish` against a real registry and a real node agent: a scaffolded
 * binary server is packaged, deployed, uploaded and published in one command,
 * then answers on the port the registry assigned; a rolling second version;
 * a failing publish exits 1 naming the instance; bad input is refused before
 * anything is uploaded; wrong credentials are refused without echoing them.
 */
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { c as tarCreate } from "tar";
import { createProject } from "../../cli/create";
import { buildPackage, formatBytes } from "sgridnext-tools";
import { outputDir } from "../helpers/paths";
import { ADMIN_PASSWORD, CliCluster, waitFor } from "./helpers/cluster";

function httpGet(port: number, p: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host: "127.0.0.1", port, path: p, timeout: 2000 }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (d: string) => { body += d; }).on("end", () => resolve(body));
    }).on("error", reject);
  });
}

describe("sgrid publish (real registry and node agent) @slow", function () {
  this.timeout(120_000);
  let cluster: CliCluster;
  let out: string;
  let project: string;
  let v1: string;

  before(async function () {
    if (spawnSync("python3", ["--version"]).status !== 0) this.skip(); // the binary template's program is Python 3
    out = outputDir("publish");
    cluster = await new CliCluster(path.join(out, "cluster")).start();
    await cluster.addAgent("node-a");
    project = path.join(out, "EchoServer");
    createProject({ name: "Demo.EchoServer", dir: project, template: "binary" });
    v1 = (await buildPackage({ dir: project, version: "1.0.0", out: path.join(out, "pkg") })).file;
  });
  after(async () => cluster?.stop());

  const patches = async () => (await cluster.patch.list({ application: "Demo", server: "EchoServer" }, cluster.as)).patches;
  const instances = async () => (await cluster.admin.listInstances({ application: "Demo", server: "EchoServer" }, cluster.as)).instances;

  it("refuses a node without an instance unless --deploy, before uploading", async () => {
    const res = await cluster.run(["publish", "Demo.EchoServer", v1, "--nodes", "node-a"]);
    expect(res.code).to.equal(1);
    expect(res.stderr).to.include("sgrid: Demo.EchoServer has no instance on node(s) node-a: deploy it there first (admin, or add --deploy --obj <Obj>)");
    expect(await instances()).to.deep.equal([]);
  });

  it("deploys, uploads and publishes a new server in one command; it answers on its assigned port", async () => {
    const res = await cluster.run(["publish", "Demo.EchoServer", v1, "--nodes", "node-a", "--deploy", "--obj", "HttpObj", "--comment", "first build"]);
    expect(res.code, res.stdout + res.stderr).to.equal(0);
    const [patch] = await patches();
    const local = spawnSync("sha256sum", [v1], { encoding: "utf8" }).stdout.split(" ")[0];
    expect(patch).to.include({ version: 1, sha256: local, size: fs.statSync(v1).size, comment: "first build", uploader: "admin" });
    const lines = res.stdout.trim().split("\n");
    expect(lines[0]).to.equal(`package ${v1}: ${formatBytes(patch!.size)}, sha256 ${local}`);
    expect(lines[1]).to.match(/^deployed Demo\.EchoServer on node-a \(#\d+\): HttpObj 127\.0\.0\.1:\d+$/);
    expect(lines[2]).to.equal(`uploaded Demo.EchoServer version 1 (${formatBytes(patch!.size)})`);
    expect(lines[3]).to.match(/^task \d+: publish version 1 to 1 instance\(s\) \(node-a\), batch size all$/);
    expect(lines.filter((l) => /^ {2}\[batch 1\] node-a #\d+ SUCCESS$/.test(l)), res.stdout).to.have.length(1);
    expect(lines[lines.length - 1]).to.match(/^task \d+ success: 1 succeeded, 0 failed, 0 not started$/);
    // Not a terminal: no progress output at all, and never the password.
    expect(res.stderr).to.equal("");
    expect(res.stdout).to.not.include(ADMIN_PASSWORD);

    const [inst] = await instances();
    expect(inst).to.include({ node: "node-a", desiredState: "active", desiredVersion: 1 });
    const port = inst!.adapters[0]!.port;
    expect(await waitFor("the servant to answer", () => httpGet(port, "/").catch(() => undefined)))
      .to.equal("Hello from Demo.EchoServer on node-a (version 1)\n");
  });

  it("publishes a second version to the running instance with --batch 1", async () => {
    const v2 = (await buildPackage({ dir: project, version: "2.0.0", out: path.join(out, "pkg") })).file;
    const res = await cluster.run(["publish", "Demo.EchoServer", v2, "--batch", "1", "--stop-on-failure"]);
    expect(res.code, res.stdout + res.stderr).to.equal(0);
    expect(res.stdout).to.match(/task \d+: publish version 2 to 1 instance\(s\) \(node-a\), batch size 1\n/);
    const port = (await instances())[0]!.adapters[0]!.port;
    await waitFor("version 2 to answer", async () => (await httpGet(port, "/").catch(() => "")).includes("(version 2)"));
  });

  it("publishes a stored version again with --version, and rolls that task back", async () => {
    const port = (await instances())[0]!.adapters[0]!.port;
    const before = (await patches()).length;
    const res = await cluster.run(["publish", "Demo.EchoServer", "--version", "1"]);
    expect(res.code, res.stdout + res.stderr).to.equal(0);
    expect(res.stdout).to.match(/^stored Demo\.EchoServer version 1 \(.*, sha256 [0-9a-f]{64}\)\n/);
    expect(await patches()).to.have.length(before); // nothing uploaded
    await waitFor("version 1 to answer", async () => (await httpGet(port, "/").catch(() => "")).includes("(version 1)"));
    const taskId = /^task (\d+): publish version 1/m.exec(res.stdout)![1]!;

    const back = await cluster.run(["rollback", taskId]);
    expect(back.code, back.stdout + back.stderr).to.equal(0);
    expect(back.stdout).to.match(new RegExp(`^task \\d+: roll back task ${taskId} \\(1 instance\\(s\\)\\), batch size all\\n`));
    expect(back.stdout).to.match(/^task \d+ success: 1 succeeded, 0 failed, 0 not started$/m);
    await waitFor("version 2 to answer again", async () => (await httpGet(port, "/").catch(() => "")).includes("(version 2)"));

    const none = await cluster.run(["publish", "Demo.EchoServer", "--version", "99"]);
    expect(none.code).to.equal(1);
    expect(none.stderr).to.equal("sgrid: Demo.EchoServer has no patch version 99 (stored: 1, 2)\n");
    const neither = await cluster.run(["publish", "Demo.EchoServer"]);
    expect(neither.stderr).to.equal("sgrid: give either a package file to upload, or --version <n> to publish a stored patch version\n");
  });

  it("exits 1 when an item fails, naming the instance and the reason", async () => {
    // A binary package whose entry is not executable: the registry stores it (what only a node can
    // check stays with the agent), the agent refuses to install it, the batch times out.
    const wrong = path.join(out, "wrong");
    fs.mkdirSync(wrong);
    fs.writeFileSync(path.join(wrong, "sgrid.json"), JSON.stringify({ app: "Demo", server: "EchoServer", type: "binary", entry: "run.sh" }));
    fs.writeFileSync(path.join(wrong, "run.sh"), "#!/bin/sh\nsleep 1000\n", { mode: 0o644 });
    const file = path.join(out, "wrong.tgz");
    await tarCreate({ gzip: true, file, cwd: wrong, portable: true }, ["sgrid.json", "run.sh"]);
    // A node package for this binary server is refused at upload, before any task.
    const node = path.join(out, "node-for-binary");
    fs.mkdirSync(node);
    fs.writeFileSync(path.join(node, "sgrid.json"), JSON.stringify({ app: "Demo", server: "EchoServer", type: "node", entry: "main.js" }));
    fs.writeFileSync(path.join(node, "main.js"), "setInterval(() => {}, 1000);\n");
    const nodeFile = path.join(out, "node-for-binary.tgz");
    await tarCreate({ gzip: true, file: nodeFile, cwd: node, portable: true }, ["sgrid.json", "main.js"]);
    const refused = await cluster.run(["publish", "Demo.EchoServer", nodeFile, "--nodes", "node-a"]);
    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.contain("says type node, but the server is of type binary");
    const res = await cluster.run(["publish", "Demo.EchoServer", file, "--nodes", "node-a", "--batch-timeout", "3"]);
    expect(res.code, res.stdout + res.stderr).to.equal(1);
    expect(res.stdout).to.match(/^ {2}\[batch 1\] node-a #\d+ FAILED: .+$/m);
    expect(res.stdout).to.match(/^task \d+ failed: 0 succeeded, 1 failed, 0 not started$/m);
  });

  it("refuses a package made for another server before uploading it", async () => {
    const before = (await patches()).length;
    const other = path.join(out, "other");
    createProject({ name: "Demo.OtherServer", dir: other, template: "binary" });
    const file = (await buildPackage({ dir: other, version: "1.0.0", out: path.join(out, "pkg") })).file;
    const res = await cluster.run(["publish", "Demo.EchoServer", file]);
    expect(res.code).to.equal(1);
    // The registry's own check, run before the upload: the message admin and Patch.Upload give.
    expect(res.stderr).to.equal("sgrid: package of Demo.EchoServer: its sgrid.json is for Demo.OtherServer\n");
    expect(await patches()).to.have.length(before);
    const unknown = await cluster.run(["publish", "Demo.OtherServer", file]);
    expect(unknown.code).to.equal(1);
    expect(unknown.stderr).to.equal("sgrid: server Demo.OtherServer does not exist: create it with --deploy --nodes <a,b> --obj <Obj>, or in admin\n");
  });

  it("refuses wrong credentials without echoing them, and uploads nothing", async () => {
    const before = (await patches()).length;
    const res = await cluster.run(["publish", "Demo.EchoServer", v1], { env: { SGRID_PASSWORD: "not-the-password-91" } });
    expect(res.code).to.equal(1);
    expect(res.stderr).to.equal("sgrid: wrong user name or password\n");
    expect(res.stdout + res.stderr).to.not.include("not-the-password-91");
    const noPassword = await cluster.run(["publish", "Demo.EchoServer", v1], { env: { SGRID_PASSWORD: undefined } });
    expect(noPassword.code).to.equal(1);
    expect(noPassword.stderr).to.equal("sgrid: no password: set SGRID_PASSWORD (or SGRID_TOKEN), or run `sgrid login` in a terminal\n");
    expect(await patches()).to.have.length(before);
  });

  it("checks its arguments: a missing file, a bad name, a bad --batch", async () => {
    let res = await cluster.run(["publish", "Demo.EchoServer", path.join(out, "nope.tgz")]);
    expect(res.stderr).to.equal(`sgrid: package ${path.join(out, "nope.tgz")} does not exist\n`);
    res = await cluster.run(["publish", "EchoServer", v1]);
    expect(res.stderr).to.equal(`sgrid: server name "EchoServer" must be <App>.<Server>\n`);
    res = await cluster.run(["publish", "Demo.EchoServer", v1, "--batch", "-1"]);
    expect(res.code).to.equal(1);
    expect(res.stderr).to.equal(`sgrid: --batch must be a whole number >= 0, got "-1"\n`);
  });
});
