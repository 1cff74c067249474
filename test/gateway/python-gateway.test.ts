/**
 * A Python grpcio client (no Sgrid code) calls a Sgrid servant through
 * `sgrid gateway` by service name only: the standard interop cases (unary,
 * server-, client- and bidi streaming, metadata both ways, status codes and
 * messages, cancellation, deadlines, an unknown service) against a real
 * registry, a servant registered with it, and the gateway as its own process.
 */
import { expect } from "chai";
import { Application } from "sgridnext";
import { outputDir } from "../helpers/paths";
import { startGatewayProcess, type GatewayProcess } from "./gateway-process";
import { waitFor } from "../helpers/wait";
import { InteropServant } from "../interop/interop-servant";
import { CASES } from "../interop/interop-cases";
import { PYTHON, generateStubs, hasGrpcio, runPythonClient, type CaseResult } from "../interop/python-grpcio";
import { dialects, uniq } from "../registry/helpers/db";
import { startTestRegistry, type TestRegistry } from "../registry/helpers/registry";
import type { ServiceIndex } from "../../registry/query/service-index";

/**
 * Message compression is per hop: grpc-js inflates the client's message before the gateway sees it, and the
 * gateway's call to the servant is not compressed, so the servant's check that the request arrived compressed
 * cannot hold behind it.
 */
const PER_HOP = new Set<string>(["client_compressed_unary"]);
const GATEWAY_CASES = CASES.filter((c) => !PER_HOP.has(c));

describe("gateway: a Python grpcio client calls a Sgrid servant through sgrid gateway by service name @slow", function () {
  this.timeout(120_000);
  let reg: TestRegistry;
  let app: Application;
  let gateway: GatewayProcess | undefined;
  let results: CaseResult[];
  const APP = uniq("GwPy");

  before(async function () {
    if (!hasGrpcio()) throw new Error(`${PYTHON} cannot import grpc and grpc_tools: install python3-grpcio and python3-grpc-tools (.ci/run does)`);
    const stubs = outputDir("gateway-python");
    generateStubs(stubs);
    reg = await startTestRegistry(dialects().find((d) => d.name === "sqlite")!);
    const store = reg.server.store;
    await store.servers.create({ application: APP, name: "TestServer", type: "node" });
    app = new Application({ handleSignals: false, app: APP, server: "TestServer", agent: "", registry: "", adapters: { TestObj: "127.0.0.1:0" } });
    app.addServant("TestObj", new InteropServant());
    await app.start();
    const node = uniq("node");
    await store.nodes.upsert({ name: node, address: "127.0.0.1", agentVersion: "test" });
    const inst = await store.instances.create({ application: APP, server: "TestServer", node, adapters: [{ obj: "TestObj", host: "127.0.0.1", port: app.adapters()[0]!.endpoint.port }], desiredState: "active" });
    await store.instances.reportObserved(inst.id, { state: "active", pid: process.pid });
    reg.server.changes.kick();
    await waitFor("the service map to list grpc.testing.TestService", () => {
      try { return reg.server.part<{ services: ServiceIndex }>("query")!.services.find("grpc.testing.TestService").objs.length > 0; } catch { return false; }
    }, 15_000);
    gateway = await startGatewayProcess(["--listen", "127.0.0.1:0", "--registry", reg.target]);
    const run = await runPythonClient(stubs, `127.0.0.1:${gateway.port}`, GATEWAY_CASES);
    results = run.results;
    expect(results.length, `one result per case; stderr: ${run.stderr}; gateway: ${gateway.stderr()}`).to.equal(GATEWAY_CASES.length);
  });

  after(async () => {
    gateway?.child.kill("SIGTERM");
    await app?.stop(500);
    await reg?.cleanup();
  });

  for (const name of GATEWAY_CASES) {
    it(name, () => {
      const r = results.find((x) => x.case === name);
      expect(r, "the case ran").to.not.equal(undefined);
      expect(r!.error ?? "", name).to.equal("");
      expect(r!.ok).to.equal(true);
    });
  }
});
