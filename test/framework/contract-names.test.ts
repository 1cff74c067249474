/**
 * One name grammar for every layer: the registry (what it stores), the
 * admin API (what it takes from people), the node agent (what it installs
 * and which node it is), the config loader (what a servant loads), and the
 * CLI (`sgrid create`, `sgrid up`) accept and refuse exactly the same names,
 * those of the contract (framework/contract/names.ts). Each row of the table
 * goes through every layer that takes that kind of name.
 */
import { expect } from "chai";
import { checkNameOf, type NameKind } from "sgridnext";
import { checkConfigFileName } from "sgridnext/internal/config/config-loader";
import * as validate from "../../registry/store/validate";
import * as adminSchemas from "../../admin/api/schemas";
import { resolveNodeAgentOptions } from "../../nodeagent";
import { ReleaseManager } from "../../nodeagent/install";
import { parseServerName, serviceOfObj } from "../../cli/create";
import { resolveUpOptions } from "../../cli/up";

type Layer = (value: string) => unknown;

/** True when the layer accepts the value (returns), false when it refuses it (throws). */
function accepts(layer: Layer, value: string): boolean {
  try {
    layer(value);
    return true;
  } catch {
    return false;
  }
}

const zodLayer = (schema: { parse(v: unknown): unknown }): Layer => (v) => schema.parse(v);

const LAYERS: Record<NameKind, Record<string, Layer>> = {
  application: {
    "contract": (v) => checkNameOf("application", v),
    "registry store": (v) => validate.validateApplication(v),
    "admin API": zodLayer(adminSchemas.Application),
    "agent install": (v) => new ReleaseManager({ dataDir: "/nonexistent", app: v, server: "S" }),
    "sgrid create": (v) => parseServerName(`${v}.HelloServer`),
  },
  server: {
    "contract": (v) => checkNameOf("server", v),
    "registry store": (v) => validate.validateServerName(v),
    "admin API": zodLayer(adminSchemas.ServerName),
    "agent install": (v) => new ReleaseManager({ dataDir: "/nonexistent", app: "A", server: v }),
    "sgrid create": (v) => parseServerName(`Demo.${v}`),
  },
  Obj: {
    "contract": (v) => checkNameOf("Obj", v),
    "registry store": (v) => validate.validateObjName(v),
    "admin API": zodLayer(adminSchemas.ObjName),
    "sgrid create": (v) => serviceOfObj(v),
  },
  node: {
    "contract": (v) => checkNameOf("node", v),
    "registry store": (v) => validate.validateNodeName(v),
    "admin API": zodLayer(adminSchemas.NodeName),
    "node agent": (v) => resolveNodeAgentOptions({ name: v, registry: ["127.0.0.1:1"], dataDir: "/nonexistent" }),
    "sgrid up": (v) => resolveUpOptions({ nodeName: v }, {}),
  },
  "config file": {
    "contract": (v) => checkNameOf("config file", v),
    "registry store": (v) => validate.validateConfigFileName(v),
    "admin API": zodLayer(adminSchemas.FileName),
    "config loader": (v) => checkConfigFileName(v),
  },
};

const long = (n: number) => `A${"b".repeat(n - 1)}`;

/** [kind, value, valid] */
const TABLE: Array<[NameKind, string, boolean]> = [
  ["application", "Demo", true],
  ["application", "Demo_2-x", true],
  ["application", long(64), true],
  ["application", long(65), false],
  ["application", "1Demo", false],
  ["application", "_Demo", false],
  ["application", "De.mo", false],
  ["application", "De/mo", false],
  ["application", "De mo", false],
  ["application", "", false],
  ["server", "HelloServer", true],
  ["server", "hello-server", true],
  ["server", "9Server", false],
  ["server", "Hello.Server", false],
  ["Obj", "GreeterObj", true],
  ["Obj", "Greeter", true],
  ["Obj", "Greeter_v2", true],
  ["Obj", "2Obj", false],
  ["Obj", "Greeter.Obj", false],
  ["node", "node-a", true],
  ["node", "10.0.0.5", true],
  ["node", "host.example.com", true],
  ["node", "_local", true],
  ["node", "a..b", false],
  ["node", ".hidden", false],
  ["node", "a/b", false],
  ["node", `n${"x".repeat(127)}`, true],
  ["node", `n${"x".repeat(128)}`, false],
  ["config file", "HelloServer.json", true],
  ["config file", "app.yaml", true],
  ["config file", "_defaults.conf", true],
  ["config file", "1.txt", true],
  ["config file", ".env", false],
  ["config file", "..", false],
  ["config file", "a..json", false],
  ["config file", "conf/a.json", false],
  ["config file", "a\\b.json", false],
  ["config file", "a b.json", false],
  ["config file", `f${"x".repeat(127)}`, true],
  ["config file", `f${"x".repeat(128)}`, false],
];

describe("one name grammar in every layer", () => {
  for (const [kind, value, valid] of TABLE) {
    it(`${kind} ${JSON.stringify(value.length > 20 ? `${value.slice(0, 12)}…(${value.length})` : value)}: ${valid ? "accepted" : "refused"} by every layer`, () => {
      const verdicts = Object.fromEntries(Object.entries(LAYERS[kind]).map(([layer, fn]) => [layer, accepts(fn, value)]));
      const expected = Object.fromEntries(Object.keys(LAYERS[kind]).map((layer) => [layer, valid]));
      expect(verdicts).to.deep.equal(expected);
    });
  }

  it("a refusal names the kind, the value and the problem", () => {
    expect(() => checkNameOf("application", "1Demo")).to.throw(/^invalid application name "1Demo": must start with a letter$/);
    expect(() => checkNameOf("config file", ".env")).to.throw(/^invalid config file name "\.env": must start with a letter, a digit or "_"$/);
    expect(() => checkNameOf("node", "a..b")).to.throw(/^invalid node name "a\.\.b": must not contain "\.\."$/);
    expect(() => checkNameOf("server", "a b")).to.throw(/may contain only letters, digits, "_" and "-"$/);
    expect(() => checkNameOf("Obj", "")).to.throw(/^invalid Obj name: must not be empty$/);
  });
});
