import { expect } from "chai";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ReleaseManager, removeTree, type PackageManifest } from "../../nodeagent/install";
import { buildLaunchSpec, buildServantEnv, LaunchConfigError, ENV_CONTRACT_KEYS, type LaunchSpec, type NodeContext } from "../../nodeagent/launch";
import { ENV } from "sgridnext";
import { writePackage } from "../fixtures/packages/tar-builder";

/** Runs the spec exactly as the supervisor would: no shell, argv array, cwd and env as given. */
function run(spec: LaunchSpec): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(spec.command, spec.args, { cwd: spec.cwd, env: spec.env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected the promise to reject");
}

const ADAPTERS = [
  { obj: "GreeterObj", host: "127.0.0.1", port: 10001, protocol: "grpc" as const },
  { obj: "Demo.HelloServer.FastObj", host: "::1", port: 10002, protocol: "sgrid" as const },
];

describe("nodeagent/launch", () => {
  let tmp: string;
  let rm: ReleaseManager;
  let ctx: NodeContext;

  before(() => {
    process.env.SGRID_TEST_AGENT_ONLY = "must-not-leak";
  });
  after(() => {
    delete process.env.SGRID_TEST_AGENT_ONLY;
  });

  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sgrid-launch-"));
    rm = new ReleaseManager({ dataDir: path.join(tmp, "data"), app: "Demo", server: "HelloServer" });
    ctx = { node: "node-1", registry: "127.0.0.1:9000", agent: "127.0.0.1:9001", confDir: rm.confDir, logDir: rm.logDir, dataDir: rm.dataDir };
  });

  afterEach(async () => {
    await removeTree(tmp);
  });

  async function release(version: string, files: Parameters<typeof writePackage>[2]): Promise<{ dir: string; manifest: PackageManifest }> {
    const pkg = await writePackage(tmp, `${version}.tgz`, files);
    const r = await rm.install(version, pkg);
    await rm.activate(version);
    return r;
  }

  it("starts a node servant with its entry, arguments, release cwd and the full environment contract", async () => {
    const r = await release("1.2.3", {
      "sgrid.json": JSON.stringify({ app: "Demo", server: "HelloServer", type: "node", entry: "dist/main.js" }),
      "dist/main.js": "const e = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('SGRID_') || k === 'FOO' || k === 'PATH'));\n" +
        "console.log(JSON.stringify({ argv: process.argv.slice(2), cwd: process.cwd(), env: e, heap: process.execArgv }));",
    });
    const spec = await buildLaunchSpec({
      manifest: r.manifest, releaseDir: r.dir, version: "1.2.3", type: "node", context: ctx,
      instance: { adapters: ADAPTERS, env: { FOO: "bar baz; $(rm -rf /)", SGRID_APP: "Evil", SGRID_DATA_DIR: "/" }, nodeOptions: ["--max-old-space-size=64"], args: ["--port", "1 2"] },
    });
    expect(spec.command).to.equal(process.execPath);
    expect(spec.ignoredEnv).to.deep.equal(["SGRID_APP", "SGRID_DATA_DIR"]);
    const out = await run(spec);
    expect(out.code, out.stderr).to.equal(0);
    const seen = JSON.parse(out.stdout);
    expect(seen.argv).to.deep.equal(["--port", "1 2"]);
    expect(seen.heap).to.deep.equal(["--max-old-space-size=64"]);
    expect(seen.cwd).to.equal(fs.realpathSync(r.dir));
    expect(seen.env).to.deep.equal({
      PATH: process.env.PATH,
      FOO: "bar baz; $(rm -rf /)",
      SGRID_APP: "Demo",
      SGRID_SERVER: "HelloServer",
      SGRID_NODE: "node-1",
      SGRID_VERSION: "1.2.3",
      SGRID_TARGET_HOST: "127.0.0.1",
      SGRID_TARGET_PORT: "10001",
      SGRID_ADAPTERS: JSON.stringify({ "Demo.HelloServer.GreeterObj": "127.0.0.1:10001", "Demo.HelloServer.FastObj": "sgrid://[::1]:10002" }),
      SGRID_REGISTRY: "127.0.0.1:9000",
      SGRID_AGENT: "127.0.0.1:9001",
      SGRID_CONF_DIR: rm.confDir,
      SGRID_LOG_DIR: rm.logDir,
      SGRID_DATA_DIR: rm.dataDir,
    });
    // The local channel's identity (SGRID_INSTANCE_ID, SGRID_AGENT_TOKEN) is added when the desired state is mapped, not here.
    const channelKeys: readonly string[] = [ENV.INSTANCE_ID, ENV.AGENT_TOKEN];
    expect(Object.keys(seen.env).filter((k) => k.startsWith("SGRID_")).sort()).to.deep.equal(ENV_CONTRACT_KEYS.filter((k) => !channelKeys.includes(k)).sort());
  });

  it("starts a bundled release with --enable-source-maps when its manifest asks, unless the instance's node options decide", async () => {
    const r = await release("sm-1", {
      "sgrid.json": JSON.stringify({ app: "Demo", server: "HelloServer", type: "node", entry: "main.js", sourceMaps: true }),
      "main.js": "console.log(JSON.stringify(process.execArgv));",
    });
    const base = { manifest: r.manifest, releaseDir: r.dir, version: "sm-1", type: "node" as const, context: ctx };
    const asked = await buildLaunchSpec({ ...base, instance: { nodeOptions: ["--max-old-space-size=64"] } });
    expect(JSON.parse((await run(asked)).stdout)).to.deep.equal(["--enable-source-maps", "--max-old-space-size=64"]);
    const decided = await buildLaunchSpec({ ...base, instance: { nodeOptions: ["--no-enable-source-maps"] } });
    expect(JSON.parse((await run(decided)).stdout)).to.deep.equal(["--no-enable-source-maps"]);
    const plain = await buildLaunchSpec({ ...base, manifest: { ...r.manifest, sourceMaps: undefined }, instance: {} });
    expect(plain.args, "a release without the flag: no node option added").to.have.length(1);
    expect(plain.args[0]).to.match(/main\.js$/);
  });

  it("starts a binary servant (a shell script) from inside the release", async () => {
    const r = await release("b1", {
      "sgrid.json": JSON.stringify({ app: "Demo", server: "HelloServer", type: "binary", entry: "bin/server" }),
      "bin/server": { content: "#!/bin/sh\necho \"$SGRID_TARGET_PORT $1 $(pwd)\"\n", mode: 0o755 },
    });
    const spec = await buildLaunchSpec({ manifest: r.manifest, releaseDir: r.dir, version: "b1", context: ctx, instance: { adapters: ADAPTERS.slice(0, 1), args: ["x"] } });
    expect(spec.command).to.equal(path.join(r.dir, "bin/server"));
    const out = await run(spec);
    expect(out.stdout.trim()).to.equal(`10001 x ${fs.realpathSync(r.dir)}`);
  });

  it("refuses a binary entry that is missing, not executable, or resolves outside the release", async () => {
    const dir = path.join(tmp, "hand-made");
    fs.mkdirSync(path.join(dir, "bin"), { recursive: true });
    fs.writeFileSync(path.join(dir, "bin/plain"), "#!/bin/sh\n", { mode: 0o644 });
    fs.symlinkSync("/bin/sh", path.join(dir, "bin/escape"));
    const m = (entry: string): PackageManifest => ({ app: "Demo", server: "HelloServer", type: "binary", entry });
    for (const [entry, re] of [["bin/missing", /does not exist/], ["bin/plain", /not executable/], ["bin/escape", /resolves outside the release/]] as const) {
      const err = await rejection(buildLaunchSpec({ manifest: m(entry), releaseDir: dir, version: "x", context: ctx, instance: {} }));
      expect(err, entry).to.be.instanceOf(LaunchConfigError);
      expect(err.message).to.match(re);
    }
  });

  it("refuses invalid instance config and a type that does not match the release", async () => {
    const r = await release("n1", { "sgrid.json": JSON.stringify({ app: "Demo", server: "HelloServer", type: "node", entry: "m.js" }), "m.js": "" });
    const base = { manifest: r.manifest, releaseDir: r.dir, version: "n1", context: ctx };
    const bad: [object, RegExp][] = [
      [{ env: { "A=B": "x" } }, /invalid environment variable name/],
      [{ env: { A: "x\0y" } }, /NUL-free/],
      [{ adapters: [{ obj: "G", host: "h", port: 0, protocol: "grpc" }] }, /invalid instance config/],
      [{ adapters: [{ obj: "G", host: "h", port: 1, protocol: "tars" }] }, /invalid instance config/],
      [{ args: ["a\0b"] }, /invalid instance config/],
    ];
    for (const [instance, re] of bad) {
      const err = await rejection(buildLaunchSpec({ ...base, instance }));
      expect(err, JSON.stringify(instance)).to.be.instanceOf(LaunchConfigError);
      expect(err.message).to.match(re);
    }
    expect((await rejection(buildLaunchSpec({ ...base, type: "java", instance: {} }))).message).to.match(/type node, but the server is of type java/);
  });

  it("builds the contract without adapters and inherits only the listed agent variables", () => {
    const { env, ignored } = buildServantEnv({
      app: "A", server: "S", node: "n", version: "1", adapters: [], registry: "r", agent: "a", confDir: "/c", logDir: "/l", dataDir: "/d",
      env: { SGRID_LOG_LEVEL: "debug", SGRID_TARGET_PORT: "1" }, inherit: ["PATH", "SGRID_TEST_AGENT_ONLY_NOT"],
    });
    expect(ignored).to.deep.equal(["SGRID_TARGET_PORT"]);
    expect(env.SGRID_ADAPTERS).to.equal("{}");
    expect(env).to.not.have.property("SGRID_TARGET_PORT");
    expect(env).to.not.have.property("SGRID_TEST_AGENT_ONLY");
    expect(env.SGRID_LOG_LEVEL).to.equal("debug");
  });

  it("passes the agent's registry credentials on by default: the query token under either name, and the TLS CA", () => {
    const { env } = buildServantEnv({
      app: "A", server: "S", node: "n", version: "1", adapters: [], registry: "r", agent: "a", confDir: "/c", logDir: "/l", dataDir: "/d",
      source: { SGRID_QUERY_TOKEN: "q", SGRID_TLS_CA: "/etc/sgrid/ca.pem", SGRID_CLUSTER_TOKEN: "never-to-servants", SGRID_DB: "mysql://secret" },
    });
    expect(env.SGRID_QUERY_TOKEN).to.equal("q");
    expect(env.SGRID_TLS_CA).to.equal("/etc/sgrid/ca.pem");
    expect(env).to.not.have.property("SGRID_CLUSTER_TOKEN");
    expect(env).to.not.have.property("SGRID_DB");
  });

  const hasJava = spawnSync("javac", ["-version"]).status === 0 && spawnSync("jar", ["--version"]).status === 0;
  (hasJava ? it : it.skip)("starts a java servant as java [jvm options] -jar <jar>", async function () {
    this.timeout(60_000);
    const src = path.join(tmp, "java");
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, "Main.java"),
      "public class Main { public static void main(String[] a) { System.out.println(System.getProperty(\"sgrid.test\") + \" \" + System.getenv(\"SGRID_TARGET_PORT\") + \" \" + String.join(\",\", a)); } }");
    expect(spawnSync("javac", ["-d", src, path.join(src, "Main.java")]).status).to.equal(0);
    fs.writeFileSync(path.join(src, "manifest.txt"), "Main-Class: Main\n");
    expect(spawnSync("jar", ["cfm", path.join(src, "app.jar"), path.join(src, "manifest.txt"), "-C", src, "Main.class"]).status).to.equal(0);
    const r = await release("j1", {
      "sgrid.json": JSON.stringify({ app: "Demo", server: "HelloServer", type: "java", entry: "app.jar" }),
      "app.jar": fs.readFileSync(path.join(src, "app.jar")),
    });
    const spec = await buildLaunchSpec({ manifest: r.manifest, releaseDir: r.dir, version: "j1", context: ctx, instance: { adapters: ADAPTERS, jvmOptions: ["-Dsgrid.test=hello", "-Xmx64m"], args: ["a", "b"] } });
    expect(spec.command).to.equal("java");
    expect(spec.args).to.deep.equal(["-Dsgrid.test=hello", "-Xmx64m", "-jar", path.join(r.dir, "app.jar"), "a", "b"]);
    const out = await run(spec);
    expect(out.code, out.stderr).to.equal(0);
    expect(out.stdout.trim()).to.equal("hello 10001 a,b");
  });
});
