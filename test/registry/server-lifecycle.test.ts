/**
 * RegistryServer start and stop: defaults under the data dir, the Objs it
 * serves, an unreachable database at start, bad options, port in use, TLS,
 * and a stop that ends open watches cleanly.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { BindError, Communicator, ConfigError, UnauthenticatedError, UnavailableError } from "sgridnext";
import { QueryService, QueryProxy } from "sgridnext/gen/sgrid/registry/v1/query.sgrid";
import { DatabaseUnavailableError } from "../../registry/errors";
import { RegistryServer, registryObj } from "../../registry/server";
import { freePort } from "../helpers/processes";
import { dialects, rejects } from "./helpers/db";
import { seedObj, startTestRegistry, tempDir, waitFor } from "./helpers/registry";

const sqlite = dialects()[0]!;

describe("registry server: start and stop", () => {
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
  const dir = () => {
    const d = tempDir("sgrid-reg-life-");
    dirs.push(d);
    return d;
  };

  it("keeps its database under the data dir by default and serves the registry Objs and grpc.health.v1", async () => {
    const dataDir = dir();
    const server = new RegistryServer({ dataDir, listen: "127.0.0.1:0", adminPassword: "pw-for-test" });
    const addr = await server.start();
    try {
      expect(fs.existsSync(path.join(dataDir, "registry.db"))).to.equal(true);
      expect(server.store.dialect).to.equal("sqlite");
      expect(addr.address).to.equal(`127.0.0.1:${addr.port}`);
      expect(addr.advertise).to.equal(`127.0.0.1:${addr.port}`);
      const client = new grpc.Client(`127.0.0.1:${addr.port}`, grpc.credentials.createInsecure());
      const check = (service: string) => new Promise<number>((resolve, reject) => {
        client.makeUnaryRequest("/grpc.health.v1.Health/Check", (s: string) => {
          // HealthCheckRequest { string service = 1; }
          const b = Buffer.from(s);
          return Buffer.concat([Buffer.from([0x0a, b.length]), b]);
        }, (b: Buffer) => b[1] ?? 0, service, (err, status) => (err ? reject(err) : resolve(status!)));
      });
      expect(await check(registryObj("QueryObj"))).to.equal(1); // SERVING
      expect(await check("sgrid.registry.v1.Query")).to.equal(1);
      client.close();
    } finally {
      await server.stop();
    }
    // Stopped: the port is closed.
    const comm = new Communicator();
    const q = comm.stringToProxy(QueryProxy, `127.0.0.1:${addr.port}`, { timeoutMs: 2000 });
    const err = await rejects(q.findObject({ obj: "A.B.C" }));
    expect(err).to.be.instanceOf(UnavailableError);
    comm.close();
  });

  it("fails to start when the database is unreachable, naming the URL without its password, and leaves nothing open", async () => {
    const port = await freePort();
    const server = new RegistryServer({ db: `mysql://sgrid:s3cret-pw@127.0.0.1:${port}/sgrid`, listen: "127.0.0.1:0", dataDir: dir() });
    const err = await rejects(server.start());
    expect(err).to.be.instanceOf(DatabaseUnavailableError);
    expect(err.message).to.contain(`mysql://sgrid:***@127.0.0.1:${port}/sgrid`);
    expect(err.message).to.not.contain("s3cret-pw");
    await server.stop();
  });

  it("refuses bad options at construction with CONFIG_INVALID naming the option, never echoing a token", () => {
    expect(() => new RegistryServer({ heartbeatIntervalMs: 5000, heartbeatTimeoutMs: 5000 })).to.throw(ConfigError, /heartbeat timeout \(5000 ms\) must be longer/);
    expect(() => new RegistryServer({ listen: "nowhere" })).to.throw(ConfigError, /listen address "nowhere"/);
    expect(() => new RegistryServer({ nativeListen: "nowhere" })).to.throw(ConfigError, /native listen address "nowhere"/);
    expect(() => new RegistryServer({ nativeListen: "grpc://127.0.0.1:9601" })).to.throw(ConfigError, /native listen address "grpc:\/\/127.0.0.1:9601": give host:port/);
    expect(() => new RegistryServer({ nativeListen: "sgrids://127.0.0.1:9601" })).to.throw(ConfigError, /give host:port \(TLS comes from the certificate and key\)/);
    expect(() => new RegistryServer({ listen: "0.0.0.0:9600", nativeListen: "127.0.0.1:9600" })).to.throw(ConfigError, /port number 9600 on the same address: give it a port of its own/);
    expect(() => new RegistryServer({ listen: "10.0.0.1:9600", nativeListen: "10.0.0.2:9600" })).to.not.throw();
    expect(() => new RegistryServer({ maxPatchBytes: 0 })).to.throw(ConfigError, /maxPatchBytes/);
    expect(() => new RegistryServer({ clusterToken: "" })).to.throw(ConfigError, /clusterToken/);
    expect(() => new RegistryServer({ nope: 1 } as never)).to.throw(ConfigError, /nope/);
    let msg = "";
    try {
      new RegistryServer({ queryToken: "x".repeat(5000) });
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).to.match(/queryToken/).and.not.contain("xxxxxxxx");
  });

  it("with nativeListen serves the same Objs on a native port too, with the same token checks, and closes both on stop", async () => {
    const server = new RegistryServer({ dataDir: dir(), listen: "127.0.0.1:0", nativeListen: "127.0.0.1:0", adminPassword: "pw-for-test", queryToken: "q-token" });
    const addr = await server.start();
    const comm = new Communicator();
    try {
      expect(addr.native).to.match(/^sgrid:\/\/127\.0\.0\.1:\d+$/);
      expect(addr.native).to.not.equal(`sgrid://127.0.0.1:${addr.port}`);
      const seeded = await seedObj(server.store);
      const auth = { metadata: { authorization: "Bearer q-token" } };
      const native = comm.stringToProxy(QueryProxy, addr.native!, { timeoutMs: 5000 });
      const grpcSide = comm.stringToProxy(QueryProxy, `127.0.0.1:${addr.port}`, { timeoutMs: 5000 });
      const found = await waitFor("the seeded Obj", async () => (await grpcSide.findObject({ obj: seeded.full }, auth).catch(() => undefined))?.active.length === 2 || undefined);
      expect(found).to.equal(true);
      const [a, b] = await Promise.all([native.findObject({ obj: seeded.full }, auth), grpcSide.findObject({ obj: seeded.full }, auth)]);
      expect(a.active).to.have.length(2);
      expect(a).to.deep.equal(b);
      const refused = await rejects(native.findObject({ obj: seeded.full }));
      expect(refused).to.be.instanceOf(UnauthenticatedError);
    } finally {
      await server.stop();
    }
    const err = await rejects(comm.stringToProxy(QueryProxy, addr.native!, { timeoutMs: 2000 }).findObject({ obj: "A.B.C" }));
    expect(err).to.be.instanceOf(UnavailableError);
    comm.close();
  });

  it("fails with BIND_FAILED naming the port when it is in use, and closes its database", async () => {
    const a = await startTestRegistry(sqlite);
    try {
      const dataDir = dir();
      const b = new RegistryServer({ dataDir, listen: `127.0.0.1:${a.server.address.port}`, adminPassword: "pw-for-test" });
      const err = await rejects(b.start());
      expect(err).to.be.instanceOf(BindError);
      expect(err.message).to.contain(String(a.server.address.port));
      // The native port's too, and the gRPC port it had bound is closed again.
      const free = await freePort();
      const n = new RegistryServer({ dataDir, listen: `127.0.0.1:${free}`, nativeListen: `127.0.0.1:${a.server.address.port}`, adminPassword: "pw-for-test" });
      const nativeErr = await rejects(n.start());
      expect(nativeErr).to.be.instanceOf(BindError);
      expect(nativeErr.message).to.contain(String(a.server.address.port));
      const again = new RegistryServer({ dataDir, listen: `127.0.0.1:${free}`, adminPassword: "pw-for-test" });
      await again.start();
      await again.stop();
      // Its database was closed: another registry can open and migrate it at once.
      const c = new RegistryServer({ dataDir, listen: "127.0.0.1:0", adminPassword: "pw-for-test" });
      await c.start();
      await c.stop();
    } finally {
      await a.cleanup();
    }
  });

  it("ends open watches cleanly on stop instead of cutting them", async () => {
    const reg = await startTestRegistry(sqlite, { shutdownGraceMs: 20_000 });
    const s = await seedObj(reg.server.store, { nodes: 1 });
    reg.server.changes.kick();
    await waitFor("the Obj", async () => (await reg.query.findObject({ obj: s.full })).active.length === 1);
    const got: number[] = [];
    const watching = (async () => {
      for await (const r of reg.query.watchObject({ obj: s.full })) got.push(r.active.length);
    })();
    await waitFor("the watch to open", () => reg.querySvc.openWatches === 1);
    await reg.cleanup();
    // The stream ended with OK status: the loop finished without an error.
    await watching;
    expect(got).to.deep.equal([1]);
  });

  describe("TLS", function () {
    let hasOpenssl = true;
    try {
      execFileSync("openssl", ["version"], { stdio: "ignore" });
    } catch {
      hasOpenssl = false;
    }

    it("serves over TLS with --tls-cert/--tls-key and refuses plaintext", async function () {
      if (!hasOpenssl) this.skip();
      const d = dir();
      const cert = path.join(d, "cert.pem");
      const key = path.join(d, "key.pem");
      execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], { stdio: "ignore" });
      const server = new RegistryServer({ dataDir: d, listen: "127.0.0.1:0", tls: { cert, key }, adminPassword: "pw-for-test" });
      const addr = await server.start();
      try {
        expect(addr.tls).to.equal(true);
        // Agents and servants take the advertised list as SGRID_REGISTRY: it must say TLS.
        expect(addr.advertise).to.equal(`grpcs://127.0.0.1:${addr.port}`);
        const call = (creds: grpc.ChannelCredentials) => {
          const client = new grpc.Client(`127.0.0.1:${addr.port}`, creds);
          const m = QueryService.methods.findObject;
          return new Promise<grpc.ServiceError | null>((resolve) => {
            client.makeUnaryRequest(m.path, (x: unknown) => Buffer.from(m.requestCodec.encode(x as never)), (b: Buffer) => m.responseCodec.decode(b),
              { obj: "No.Such.Obj" }, { deadline: Date.now() + 5000 }, (err) => {
                client.close();
                resolve(err);
              });
          });
        };
        const overTls = await call(grpc.credentials.createSsl(fs.readFileSync(cert)));
        expect(overTls?.code).to.equal(grpc.status.NOT_FOUND); // reached the servant
        const plain = await call(grpc.credentials.createInsecure());
        expect(plain?.code).to.equal(grpc.status.UNAVAILABLE);
      } finally {
        await server.stop();
      }
    });

    it("refuses a missing certificate file with CONFIG_INVALID naming it", async () => {
      const d = dir();
      const server = new RegistryServer({ dataDir: d, listen: "127.0.0.1:0", tls: { cert: path.join(d, "missing.pem"), key: path.join(d, "k.pem") }, adminPassword: "pw-for-test" });
      const err = await rejects(server.start());
      expect(err).to.be.instanceOf(ConfigError);
      expect(err.message).to.contain("missing.pem");
    });
  });
});
