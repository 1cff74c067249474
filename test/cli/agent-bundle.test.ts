/**
 * `sgrid node` runs from its bundle when asked (SGRID_AGENT_BUNDLE=1) and
 * only while the bundle is current (cli/agent-bundle.ts): a newer input (a
 * `tsc --watch` rebuild), a missing bundle or list, or no SGRID_AGENT_BUNDLE=1
 * run it from dist/ instead; the build leaves a current bundle.
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { AGENT_BUNDLE, AGENT_BUNDLE_INPUTS, agentBundle, bundleIsStale } from "../../cli/agent-bundle";
import { CLI } from "../helpers/paths";

describe("cli: the agent's bundle", () => {
  let dir: string;
  const at = (file: string, seconds: number) => fs.utimesSync(path.join(dir, file), seconds, seconds);
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "sgrid-agent-bundle-"));
    fs.mkdirSync(path.join(dir, "cli"));
    fs.writeFileSync(path.join(dir, "cli", AGENT_BUNDLE), "// bundle\n");
    fs.writeFileSync(path.join(dir, "cli", AGENT_BUNDLE_INPUTS), JSON.stringify(["main.js", "../nodeagent/index.js", "../../not/installed/here.js"]));
    fs.writeFileSync(path.join(dir, "cli/main.js"), "");
    fs.mkdirSync(path.join(dir, "nodeagent"));
    fs.writeFileSync(path.join(dir, "nodeagent/index.js"), "");
    at("cli/main.js", 1000);
    at("nodeagent/index.js", 1000);
    at(`cli/${AGENT_BUNDLE}`, 2000);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("is used when no input is newer (inputs not found are not compared), with the same mtimes too (npm's packed files)", () => {
    expect(agentBundle(path.join(dir, "cli"), { SGRID_AGENT_BUNDLE: "1" })).to.equal(`${path.join(dir, "cli")}/${AGENT_BUNDLE}`);
    at("nodeagent/index.js", 2000);
    expect(bundleIsStale(path.join(dir, "cli"))).to.equal(false);
  });

  it("is not used without SGRID_AGENT_BUNDLE=1, once an input is newer, or when it or its list is missing", () => {
    expect(agentBundle(path.join(dir, "cli"), {})).to.equal(undefined);
    expect(agentBundle(path.join(dir, "cli"), { SGRID_AGENT_BUNDLE: "0" })).to.equal(undefined);
    at("nodeagent/index.js", 3000);
    expect(agentBundle(path.join(dir, "cli"), { SGRID_AGENT_BUNDLE: "1" })).to.equal(undefined);
    at("nodeagent/index.js", 1000);
    fs.rmSync(path.join(dir, "cli", AGENT_BUNDLE_INPUTS));
    expect(agentBundle(path.join(dir, "cli"), { SGRID_AGENT_BUNDLE: "1" })).to.equal(undefined);
    fs.rmSync(path.join(dir, "cli", AGENT_BUNDLE));
    expect(bundleIsStale(path.join(dir, "cli"))).to.equal(true);
  });

  it("is current after the build, and lists the agent's first-party modules as its inputs", () => {
    const cliDir = path.dirname(CLI);
    expect(agentBundle(cliDir, { SGRID_AGENT_BUNDLE: "1" })).to.equal(`${cliDir}/${AGENT_BUNDLE}`);
    const inputs = JSON.parse(fs.readFileSync(path.join(cliDir, AGENT_BUNDLE_INPUTS), "utf8")) as string[];
    expect(inputs).to.include.members(["main.js", "node.js", "../nodeagent/agent/node-agent.js"]);
    expect(inputs.filter((i) => i.includes("node_modules"))).to.deep.equal([]);
  });
});
