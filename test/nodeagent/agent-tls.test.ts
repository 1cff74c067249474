/**
 * The node agent against a registry serving TLS (`--tls-cert/--tls-key`):
 * listed as `grpcs://host:port` with the registry's CA in SGRID_TLS_CA, the
 * agent opens its session over TLS (the cluster token never crosses in the
 * clear), installs a placed servant, and the servant inherits the CA and the
 * grpcs:// registry address, so its config loads from the same registry at
 * startup. Listed as `sgrids://host:port` (the registry's native port, with
 * the same certificate) it does all that over the native transport. A
 * plaintext listing, or a CA that did not sign the certificate, never opens
 * a session; an unreadable CA file fails the agent's start.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { Readable } from "node:stream";
import { ConfigError } from "sgridnext";
import { RegistryServer } from "../../registry/server";
import { NodeAgent } from "../../nodeagent";
import { writePackage } from "../fixtures/packages/tar-builder";
import { RUNTIME_DIR } from "../helpers/paths";
import { freePort } from "../helpers/processes";
import { fastAgentOptions } from "./helpers/agent-harness";
import { httpGet } from "./helpers/agent-packages";
import { killProcessesWith, makeTempDir, removeTempDir, removeV1Groups, testGroupName, waitFor } from "./helpers/agent-test-env";

const TOKEN = "agent-tls-token";

function haveOpenssl(): boolean {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function selfSigned(dir: string, name: string): { cert: string; key: string } {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], { stdio: "ignore" });
  return { cert, key };
}

/** A node servant that loads app.json through the framework at startup and answers what it got over HTTP. */
async function configReaderPackage(dir: string, app: string, server: string): Promise<Buffer> {
  const framework = RUNTIME_DIR;
  const main = `
const http = require("http");
const { Application } = require(${JSON.stringify(framework)});
(async () => {
  const app = new Application({ handleSignals: false });
  const cfg = await app.config.load("app.json");
  const body = JSON.stringify({ source: cfg.source, value: cfg.value, registry: process.env.SGRID_REGISTRY, ca: process.env.SGRID_TLS_CA });
  http.createServer((req, res) => res.end(body)).listen(Number(process.env.SGRID_TARGET_PORT), "127.0.0.1", () => console.log("serving " + body));
})().catch((err) => { console.error("config load failed: " + err.message); process.exit(3); });
process.on("SIGTERM", () => process.exit(0));
`;
  const file = await writePackage(dir, `${app}.${server}-tls.tgz`, {
    "sgrid.json": JSON.stringify({ app, server, type: "node", entry: "main.js", version: "1" }),
    "main.js": main,
  });
  return fs.readFileSync(file);
}

describe("nodeagent/agent: a registry serving TLS", function () {
  this.timeout(120_000);
  const tmp = makeTempDir("sgrid-agent-tls-");
  const group = testGroupName("-agenttls");
  const marker = `sgrid-agenttls-${process.pid}`;
  const savedCa = process.env.SGRID_TLS_CA;
  let registry: RegistryServer | undefined;
  let port = 0;
  let native = "";
  let certs: { cert: string; key: string };
  const agents: NodeAgent[] = [];

  async function startAgent(name: string, endpoint: string): Promise<NodeAgent> {
    const agent = new NodeAgent(fastAgentOptions(endpoint, path.join(tmp, name), group, { name, token: TOKEN }));
    agents.push(agent);
    await agent.start();
    return agent;
  }

  before(async function () {
    if (!haveOpenssl()) this.skip();
    certs = selfSigned(tmp, "registry");
    port = await freePort();
    registry = new RegistryServer({
      db: `sqlite:${path.join(tmp, "registry.db")}`, listen: `127.0.0.1:${port}`, advertise: `127.0.0.1:${port}`, dataDir: path.join(tmp, "registry"),
      clusterToken: TOKEN, adminPassword: "test-admin-pw", tls: certs, heartbeatIntervalMs: 500, heartbeatTimeoutMs: 600_000, shutdownGraceMs: 500,
      nativeListen: "127.0.0.1:0",
    });
    native = (await registry.start()).native!;
    expect(native).to.match(/^sgrids:\/\/127\.0\.0\.1:\d+$/);
  });

  afterEach(() => {
    if (savedCa === undefined) delete process.env.SGRID_TLS_CA; else process.env.SGRID_TLS_CA = savedCa;
  });

  after(async () => {
    for (const a of agents) {
      await a.supervisor.stopAll().catch(() => undefined);
      await a.shutdown().catch(() => undefined);
    }
    await registry?.stop().catch(() => undefined);
    killProcessesWith(marker);
    await removeV1Groups(group);
    removeTempDir(tmp);
  });

  for (const via of ["grpcs", "sgrids"] as const) it(`opens the session over TLS (${via}://) with the CA from SGRID_TLS_CA; the servant inherits both and loads its config from the registry`, async () => {
    process.env.SGRID_TLS_CA = certs.cert;
    const store = registry!.store;
    await store.nodes.upsert({ name: `tls-node-${via}`, address: "127.0.0.1", agentVersion: "0" });
    await store.servers.create({ application: "Demo", name: `TlsServer${via}`, type: "node" });
    await store.configs.put({ level: "server", application: "Demo", server: `TlsServer${via}` }, "app.json", { content: JSON.stringify({ greeting: "over tls" }), author: "test" });
    const data = await configReaderPackage(tmp, "Demo", `TlsServer${via}`);
    const sha256 = crypto.createHash("sha256").update(data).digest("hex");
    const { key } = await registry!.context.storage.put(Readable.from([data]), { sha256, size: data.length, maxBytes: 1 << 30 });
    const patch = await store.patches.create({ application: "Demo", server: `TlsServer${via}`, sha256, size: data.length, uploader: "test", storageKey: key });
    const servantPort = await freePort();
    const id = (await store.instances.create({
      application: "Demo", server: `TlsServer${via}`, node: `tls-node-${via}`,
      adapters: [{ obj: "HttpObj", host: "127.0.0.1", port: servantPort }],
      launch: { args: [marker] }, desiredState: "active", desiredPatchId: patch.id,
    })).id;

    const agent = await startAgent(`tls-node-${via}`, via === "grpcs" ? `grpcs://127.0.0.1:${port}` : native);
    await waitFor("the session over TLS", () => agent.session.connected, 20_000);
    expect((await store.nodes.get(`tls-node-${via}`)).online).to.equal(true);

    const body = await waitFor("the servant answers", () => httpGet(servantPort), 40_000);
    const seen = JSON.parse(body) as { source: string; value: unknown; registry: string; ca: string };
    expect(seen.registry).to.equal(`grpcs://127.0.0.1:${port}`);
    expect(seen.ca).to.equal(certs.cert);
    expect(seen.source).to.equal("registry");
    expect(seen.value).to.deep.equal({ greeting: "over tls" });
    const inst = await waitFor("registry records the instance active", async () => {
      const i = await store.instances.get(id);
      return i.observedState === "active" ? i : undefined;
    }, 20_000);
    expect(inst.pid).to.be.a("number");
    // Heartbeats arrive over the session (the registry's record of the node moves on).
    const seen1 = registry!.context.sessions.lastSeenAt(`tls-node-${via}`)!;
    await waitFor("a later heartbeat", () => (registry!.context.sessions.lastSeenAt(`tls-node-${via}`)! > seen1 ? true : undefined), 10_000);
  });

  it("never opens a session when the TLS registry is listed as plaintext, or its certificate is not signed by the CA", async () => {
    const other = selfSigned(tmp, "other");
    process.env.SGRID_TLS_CA = other.cert;
    const wrongCa = await startAgent("wrong-ca-node", `grpcs://127.0.0.1:${port}`);
    const plain = await startAgent("plain-node", `127.0.0.1:${port}`);
    const plainNative = await startAgent("plain-native-node", native.replace("sgrids://", "sgrid://"));
    const reasons: string[] = [];
    wrongCa.session.on("disconnected", (r) => reasons.push(r));
    let plainFailures = 0;
    plain.session.on("disconnected", () => plainFailures++);
    let plainNativeFailures = 0;
    plainNative.session.on("disconnected", () => plainNativeFailures++);
    await waitFor("the agents to fail twice", () => reasons.length >= 2 && plainFailures >= 2 && plainNativeFailures >= 2, 30_000);
    expect(wrongCa.session.connected).to.equal(false);
    expect(plain.session.connected).to.equal(false);
    expect(plainNative.session.connected).to.equal(false);
    expect(reasons.join("\n")).to.match(/certificate|self[- ]signed|UNAVAILABLE|No connection established/i);
    for (const name of ["wrong-ca-node", "plain-node", "plain-native-node"]) {
      const n = await registry!.store.nodes.get(name).catch(() => undefined);
      expect(n?.online ?? false, name).to.equal(false);
    }
  });

  it("refuses to start with an unreadable SGRID_TLS_CA, naming the file", async () => {
    const missing = path.join(tmp, "no-such-ca.pem");
    process.env.SGRID_TLS_CA = missing;
    const agent = new NodeAgent(fastAgentOptions(`grpcs://127.0.0.1:${port}`, path.join(tmp, "bad-ca-node"), group, { name: "bad-ca-node", token: TOKEN }));
    agents.push(agent);
    const err = await agent.start().then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(ConfigError);
    expect((err as Error).message).to.contain(missing);
  });
});
