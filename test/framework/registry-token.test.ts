/**
 * A registry that protects Query and Config reads with a query token: a
 * servant reaches it with the token under either name (SGRID_QUERY_TOKEN,
 * as the registry and the CLI call it, or SGRID_REGISTRY_TOKEN), for config
 * at startup and for Obj names; without it the registry's refusal is thrown,
 * never hidden behind a cached copy.
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as path from "node:path";
import { Application, Communicator, UnauthenticatedError } from "sgridnext";
import { dialects } from "../registry/helpers/db";
import { seedObj, startTestRegistry, tempDir, type TestRegistry } from "../registry/helpers/registry";

describe("framework: a registry with a query token", function () {
  this.timeout(60_000);
  const QUERY_TOKEN = "query-token-for-test";
  let reg: TestRegistry;
  let confDir: string;
  const comms: Communicator[] = [];

  before(async () => {
    reg = await startTestRegistry(dialects()[0]!, { queryToken: QUERY_TOKEN });
    await reg.server.store.servers.create({ application: "Tok", name: "Reader", type: "node" });
    await reg.server.store.configs.put({ level: "server", application: "Tok", server: "Reader" }, "app.json", { content: '{"greeting":"guarded"}', author: "test" });
    confDir = tempDir("sgrid-token-conf-");
  });

  after(async () => {
    for (const c of comms) c.close();
    await reg?.cleanup();
    fs.rmSync(confDir, { recursive: true, force: true });
  });

  function app(env: Record<string, string>): Application {
    const a = new Application({
      app: "Tok", server: "Reader", handleSignals: false, agent: "",
      env: { SGRID_REGISTRY: reg.target, SGRID_NODE: "n1", SGRID_CONF_DIR: path.join(confDir, Object.keys(env).join("-") || "none"), ...env },
    });
    comms.push(a.communicator);
    return a;
  }

  for (const name of ["SGRID_QUERY_TOKEN", "SGRID_REGISTRY_TOKEN"]) {
    it(`loads config and resolves Obj names with the token in ${name}`, async () => {
      const a = app({ [name]: QUERY_TOKEN });
      const cfg = await a.config.load("app.json");
      expect(cfg.source).to.equal("registry");
      expect(cfg.value).to.deep.equal({ greeting: "guarded" });
      const seeded = await seedObj(reg.server.store, { nodes: 1, basePort: 23000 });
      const source = a.communicator.registry()!.resolve(seeded.full);
      await source.ready();
      // The registry's endpoint cache follows the store within its 200 ms change poll; the watch brings the update.
      const until = Date.now() + 10_000;
      while (source.current().length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect(source.current().map((e) => e.port)).to.deep.equal([23000]);
    });
  }

  it("without the token, the refusal is thrown (no cached copy hides it)", async () => {
    const a = app({});
    const err = await a.config.load("app.json").then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(UnauthenticatedError);
  });
});
