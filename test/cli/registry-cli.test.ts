/**
 * `sgrid registry` as a user runs it: help, the one "serving on" line,
 * flags over env over defaults, no secret in any output, SIGTERM and SIGINT
 * stop with exit 0, an unreachable database exits non-zero naming the URL
 * without its password.
 */
import { execFile, execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { expect } from "chai";
import { Communicator, NotFoundError } from "sgridnext";
import { QueryProxy } from "sgridnext/gen/sgrid/registry/v1/query.sgrid";
import { REGISTRY_DEFAULTS, optionsFromText, parseDuration, parseSize, textSettingsFromEnv } from "../../registry/server";
import { CLI } from "../helpers/paths";
import { freePort } from "../helpers/processes";
import { rejects } from "../registry/helpers/db";
import { RegistryExitedError, startRegistryProcess, tempDir } from "../registry/helpers/registry";

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 30_000 }, (error, out, err) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, out, err });
    });
  });
}

describe("sgrid registry (CLI)", () => {
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
  const dir = () => {
    const d = tempDir("sgrid-reg-cli-");
    dirs.push(d);
    return d;
  };

  it("--help lists every flag with its environment variable", async () => {
    const r = await run(["registry", "--help"]);
    expect(r.code).to.equal(0);
    for (const flag of ["--db", "--listen", "--data-dir", "--advertise", "--cluster-token", "--query-token", "--heartbeat-interval", "--heartbeat-timeout", "--max-patch-size", "--tls-cert", "--tls-key"]) {
      expect(r.out).to.contain(flag);
    }
    for (const env of ["SGRID_DB", "SGRID_LISTEN", "SGRID_DATA_DIR", "SGRID_CLUSTER_TOKEN", "SGRID_QUERY_TOKEN", "SGRID_ADMIN_PASSWORD"]) expect(r.out).to.contain(env);
  });

  it("prints one line with its address, serves Query there, never prints a token, and stops on SIGTERM with 0", async () => {
    const d = dir();
    const secrets = { cluster: "cluster-secret-7f3a9c", query: "query-secret-2b8e41", admin: "admin-secret-5d0c77" };
    const reg = await startRegistryProcess(
      ["--data-dir", d, "--listen", "127.0.0.1:0", "--cluster-token", secrets.cluster],
      { SGRID_QUERY_TOKEN: secrets.query, SGRID_ADMIN_PASSWORD: secrets.admin, SGRID_LOG_LEVEL: "debug" },
    );
    try {
      expect(reg.stdout().trim().split("\n")).to.have.length(1);
      expect(reg.stdout()).to.match(/^sgrid registry serving on 127\.0\.0\.1:\d+ \(advertised 127\.0\.0\.1:\d+, database sqlite:.*registry\.db\)\n$/);
      expect(fs.existsSync(path.join(d, "registry.db"))).to.equal(true);
      const comm = new Communicator();
      const q = comm.stringToProxy(QueryProxy, reg.address);
      const err = await rejects(q.findObject({ obj: "No.Such.Obj" }, { metadata: { authorization: `Bearer ${secrets.query}` } }));
      expect(err).to.be.instanceOf(NotFoundError);
      comm.close();
    } finally {
      const exit = await reg.stop();
      expect(exit).to.deep.equal({ code: 0, signal: null });
    }
    const all = reg.stdout() + reg.stderr();
    for (const s of Object.values(secrets)) expect(all).to.not.contain(s);
  });

  it("with --tls-cert/--tls-key advertises grpcs://, and the CLI reaches it as grpcs:// trusting SGRID_TLS_CA", async function () {
    try {
      execFileSync("openssl", ["version"], { stdio: "ignore" });
    } catch {
      this.skip();
    }
    const d = dir();
    const cert = path.join(d, "reg.crt");
    const key = path.join(d, "reg.key");
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
      "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], { stdio: "ignore" });
    const reg = await startRegistryProcess(["--data-dir", d, "--listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key], { SGRID_ADMIN_PASSWORD: "pw-tls-test" });
    try {
      expect(reg.stdout()).to.match(/^sgrid registry serving on grpcs:\/\/127\.0\.0\.1:\d+ \(advertised grpcs:\/\/127\.0\.0\.1:\d+,/);
      const target = `grpcs://${reg.address}`;
      const home = path.join(d, "home");
      const untrusted = await run(["login", "--registry", target, "--user", "admin"], { HOME: home, SGRID_PASSWORD: "pw-tls-test", SGRID_TLS_CA: "" });
      expect(untrusted.code).to.equal(1);
      expect(untrusted.err).to.match(/self[- ]signed certificate/);
      const trusted = await run(["login", "--registry", target, "--user", "admin"], { HOME: home, SGRID_PASSWORD: "pw-tls-test", SGRID_TLS_CA: cert });
      expect(trusted.err).to.not.contain("DEP0123");
      expect(trusted.out).to.contain(`logged in to ${target} as admin`);
      expect(trusted.code).to.equal(0);
      const badCa = await run(["login", "--registry", target, "--user", "admin"], { HOME: home, SGRID_PASSWORD: "pw-tls-test", SGRID_TLS_CA: path.join(d, "nope.pem") });
      expect(badCa.code).to.equal(1);
      expect(badCa.err).to.contain(`SGRID_TLS_CA: cannot read the CA bundle ${path.join(d, "nope.pem")}`);
    } finally {
      await reg.stop();
    }
  });

  it("with SGRID_NATIVE_LISTEN names its native port on the serving line and serves Query there too", async () => {
    const reg = await startRegistryProcess(["--data-dir", dir(), "--listen", "127.0.0.1:0"], { SGRID_NATIVE_LISTEN: "127.0.0.1:0", SGRID_ADMIN_PASSWORD: "pw-for-test" });
    try {
      const m = /^sgrid registry serving on 127\.0\.0\.1:(\d+) and (sgrid:\/\/127\.0\.0\.1:(\d+)) \(advertised 127\.0\.0\.1:\1, database /.exec(reg.stdout());
      expect(m, reg.stdout()).to.not.equal(null);
      expect(m![3]).to.not.equal(m![1]);
      const comm = new Communicator();
      const err = await rejects(comm.stringToProxy(QueryProxy, m![2]!).findObject({ obj: "No.Such.Obj" }));
      expect(err).to.be.instanceOf(NotFoundError);
      comm.close();
    } finally {
      await reg.stop();
    }
  });

  it("stops on SIGINT with 0 too", async () => {
    const reg = await startRegistryProcess(["--data-dir", dir(), "--listen", "127.0.0.1:0"], { SGRID_ADMIN_PASSWORD: "pw-cli-test" });
    reg.child.kill("SIGINT");
    expect(await reg.exited).to.deep.equal({ code: 0, signal: null });
  });

  it("takes flags over env over defaults", async () => {
    const envPort = await freePort();
    const flagPort = await freePort();
    const envDir = dir();
    const flagDir = dir();
    const reg = await startRegistryProcess(["--listen", `127.0.0.1:${flagPort}`, "--data-dir", flagDir], {
      SGRID_LISTEN: `127.0.0.1:${envPort}`, SGRID_DATA_DIR: envDir, SGRID_ADVERTISE: "registry.example:9999", SGRID_ADMIN_PASSWORD: "pw-cli-test",
    });
    try {
      expect(reg.address).to.equal(`127.0.0.1:${flagPort}`);
      expect(reg.stdout()).to.contain("advertised registry.example:9999");
      expect(fs.existsSync(path.join(flagDir, "registry.db"))).to.equal(true);
      expect(fs.existsSync(path.join(envDir, "registry.db"))).to.equal(false);
    } finally {
      await reg.stop();
    }
    // The same resolution, as a function.
    const o = optionsFromText({ listen: "1.2.3.4:1" }, textSettingsFromEnv({ SGRID_LISTEN: "5.6.7.8:2", SGRID_HEARTBEAT_INTERVAL: "2s", SGRID_MAX_PATCH_SIZE: "64M" }));
    expect(o).to.include({ listen: "1.2.3.4:1", heartbeatIntervalMs: 2000, maxPatchBytes: 64 * 1024 * 1024 });
    expect(optionsFromText({}, textSettingsFromEnv({})).listen).to.equal(undefined);
    expect(REGISTRY_DEFAULTS.listen).to.equal("0.0.0.0:9500");
    expect(parseDuration("15s", "x")).to.equal(15000);
    expect(parseDuration("250", "x")).to.equal(250);
    expect(parseSize("1G", "x")).to.equal(1024 ** 3);
    expect(() => parseDuration("soon", "heartbeat interval")).to.throw(/heartbeat interval: "soon"/);
  });

  it("exits non-zero when the database is unreachable, naming the URL without its password", async () => {
    const port = await freePort();
    const err = await rejects(startRegistryProcess(["--db", `mysql://sgrid:pa55-w0rd@127.0.0.1:${port}/sgrid`, "--listen", "127.0.0.1:0", "--data-dir", dir()]));
    expect(err).to.be.instanceOf(RegistryExitedError);
    expect(err.code).to.equal(1);
    expect(err.err).to.contain(`mysql://sgrid:***@127.0.0.1:${port}/sgrid`);
    expect(err.err + err.out).to.not.contain("pa55-w0rd");
  });

  it("exits non-zero with a clear message for a bad flag value", async () => {
    const r = await run(["registry", "--heartbeat-interval", "soon", "--data-dir", dir()]);
    expect(r.code).to.equal(1);
    expect(r.err).to.contain("heartbeat interval").and.contain("soon");
    const t = await run(["registry", "--tls-cert", "/nonexistent/cert.pem", "--data-dir", dir()]);
    expect(t.code).to.equal(1);
    expect(t.err).to.contain("--tls-key");
  });
});
