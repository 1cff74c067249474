/**
 * The config merge rule (registry/services/config-merge.ts), level by level.
 */
import { expect } from "chai";
import YAML from "yaml";
import { NotFoundError, Status } from "sgridnext";
import { ConfigLayerInvalidError, configFormat, mergeConfig } from "../../registry/services";
import type { ConfigLayers, ConfigLevel, ConfigVersionRecord } from "../../registry/store";

const KEYS: Record<ConfigLevel, string> = { application: "Demo", server: "Demo.Hello", instance: "Demo.Hello@node1" };

function layer(level: ConfigLevel, content: string, version = 1, fileName = "x"): ConfigVersionRecord {
  return { fileId: 1, level, scopeKey: KEYS[level], fileName, version, content, author: "ann", comment: "", rolledBackFrom: null, createdAt: 0 };
}

function layers(file: string, app?: string, server?: string, instance?: string, versions: [number, number, number] = [1, 1, 1]): ConfigLayers {
  return {
    application: app === undefined ? null : layer("application", app, versions[0], file),
    server: server === undefined ? null : layer("server", server, versions[1], file),
    instance: instance === undefined ? null : layer("instance", instance, versions[2], file),
  };
}

function expectLayerError(fn: () => unknown, ...parts: string[]): ConfigLayerInvalidError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).to.be.instanceOf(ConfigLayerInvalidError);
  const err = caught as ConfigLayerInvalidError;
  expect(err.status).to.equal(Status.FAILED_PRECONDITION);
  for (const p of parts) expect(err.message).to.include(p);
  return err;
}

describe("registry config: merge rule", () => {
  it("picks the format by extension, case-insensitively", () => {
    expect(["a.json", "A.JSON", "b.yaml", "c.YML", "d.conf", "e.json.bak", "yaml"].map(configFormat))
      .to.deep.equal(["json", "json", "yaml", "yaml", "text", "text", "text"]);
  });

  it("returns a single level verbatim, comments and formatting kept, once it parses; one that does not is CONFIG_LAYER_INVALID naming line and column", () => {
    const yaml = "# tuning\nworkers:   4   # per core\n";
    expect(mergeConfig("app.yaml", layers("app.yaml", undefined, yaml)).content).to.equal(yaml);
    expect(mergeConfig("app.json", layers("app.json", '[1,  2]')).content).to.equal('[1,  2]');
    const err = expectLayerError(() => mergeConfig("app.json", layers("app.json", '{\n "secret": x }')), '"app.json"', "application level", "line 2, column 12");
    expect(err.message).to.not.include("secret");
    expect(mergeConfig("a.conf", layers("a.conf", undefined, undefined, "#sgrid:append\nx=1\n")).content).to.equal("x=1\n");
  });

  it("merges JSON objects key by key, recursively; the more specific level wins; arrays, scalars and null replace whole", () => {
    const app = JSON.stringify({ db: { host: "db0", port: 3306, opts: { ssl: true, pool: 5 } }, tags: ["a", "b"], log: "info", keep: 1, gone: { x: 1 } });
    const server = JSON.stringify({ db: { host: "db1", opts: { pool: 10 } }, tags: ["c"], log: null, gone: "scalar now" });
    const instance = JSON.stringify({ db: { port: 3307 }, extra: { new: true }, keep: { now: "an object" } });
    const merged = mergeConfig("app.json", layers("app.json", app, server, instance));
    expect(JSON.parse(merged.content)).to.deep.equal({
      db: { host: "db1", port: 3307, opts: { ssl: true, pool: 10 } },
      tags: ["c"],
      log: null,
      keep: { now: "an object" },
      gone: "scalar now",
      extra: { new: true },
    });
    // Key order: where a key first appears, general levels first; 2-space indent and a final newline.
    expect(Object.keys(JSON.parse(merged.content))).to.deep.equal(["db", "tags", "log", "keep", "gone", "extra"]);
    expect(merged.content.endsWith("}\n")).to.equal(true);
    expect(merged.content).to.include('\n  "db": {');
  });

  it("merges YAML (.yaml and .yml) the same way and writes YAML", () => {
    for (const name of ["svc.yaml", "svc.yml"]) {
      const merged = mergeConfig(name, layers(name, "a: 1\nnested:\n  x: 1\n  y: [1, 2]\n", "nested:\n  y: [3]\n  z: true\n", "# only a comment\n"));
      expect(YAML.parse(merged.content)).to.deep.equal({ a: 1, nested: { x: 1, y: [3], z: true } });
    }
  });

  it("skips missing levels and treats an empty level as an empty object", () => {
    expect(JSON.parse(mergeConfig("a.json", layers("a.json", '{"a":1}', undefined, '{"b":2}')).content)).to.deep.equal({ a: 1, b: 2 });
    expect(JSON.parse(mergeConfig("a.json", layers("a.json", '{"a":1}', "  \n")).content)).to.deep.equal({ a: 1 });
  });

  it("fails with CONFIG_LAYER_INVALID naming the file and level when a level does not parse, without quoting the content", () => {
    const err = expectLayerError(() => mergeConfig("db.json", layers("db.json", '{"user":"u"}', '{"password": hunter2}', undefined, [1, 7, 0])),
      '"db.json"', "server level", "Demo.Hello", "version 7", "not valid JSON");
    expect(err.message).to.not.include("hunter2");
    expect(err.data).to.include({ fileName: "db.json", level: "server" });
    const yerr = expectLayerError(() => mergeConfig("db.yaml", layers("db.yaml", "a: 1\n", undefined, "password: hunter2: x\n")),
      '"db.yaml"', "instance level", "Demo.Hello@node1", "not valid YAML", "line 1");
    expect(yerr.message).to.not.include("hunter2");
  });

  it("fails when a level's top is not an object (array or scalar)", () => {
    expectLayerError(() => mergeConfig("a.json", layers("a.json", '{"a":1}', "[1,2]")), "server level", "an array");
    expectLayerError(() => mergeConfig("a.yaml", layers("a.yaml", "just text", "a: 1")), "application level", "a string");
  });

  it("keeps a key named __proto__ as data and never touches a prototype", () => {
    const merged = mergeConfig("p.json", layers("p.json", '{"__proto__": {"polluted": 1}, "a": {}}', '{"a": {"__proto__": {"x": 2}}}'));
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    const back = JSON.parse(merged.content) as Record<string, unknown>;
    expect(Object.prototype.hasOwnProperty.call(back, "__proto__")).to.equal(true);
    expect(merged.content).to.include('"polluted": 1').and.include('"x": 2');
  });

  describe("other files", () => {
    it("takes the most specific level's content", () => {
      expect(mergeConfig("a.conf", layers("a.conf", "app\n", "server\n", "instance\n")).content).to.equal("instance\n");
      expect(mergeConfig("a.conf", layers("a.conf", "app\n", "server\n")).content).to.equal("server\n");
    });

    it("appends a level that starts with #sgrid:append to the result below it, without the marker", () => {
      expect(mergeConfig("a.conf", layers("a.conf", "app\n", "#sgrid:append\nserver\n", "#sgrid:append\ninstance\n")).content)
        .to.equal("app\nserver\ninstance\n");
      // The server level has no marker: it replaces the application's; the instance appends to it.
      expect(mergeConfig("a.conf", layers("a.conf", "app\n", "server\n", "#sgrid:append\ninstance\n")).content).to.equal("server\ninstance\n");
      // A marker below a replacing level has no effect on the result.
      expect(mergeConfig("a.conf", layers("a.conf", "app\n", "#sgrid:append\nserver\n", "instance\n")).content).to.equal("instance\n");
    });

    it("puts a newline between parts that lack one, accepts CRLF and trailing spaces on the marker, and only at the very start", () => {
      expect(mergeConfig("a.conf", layers("a.conf", "app", "#sgrid:append  \r\nserver")).content).to.equal("app\nserver");
      expect(mergeConfig("a.conf", layers("a.conf", "app\n", "x\n#sgrid:append\ny\n")).content).to.equal("x\n#sgrid:append\ny\n");
      expect(mergeConfig("a.conf", layers("a.conf", "app\n", "#sgrid:appendix\n")).content).to.equal("#sgrid:appendix\n");
      expect(mergeConfig("a.conf", layers("a.conf", "app\n", "#sgrid:append")).content).to.equal("app\n");
    });
  });

  describe("version", () => {
    it("lists each level's version (0 when missing) and a hash of the content", () => {
      const v = mergeConfig("a.conf", layers("a.conf", "x", undefined, "y", [3, 0, 5])).version;
      expect(v).to.match(/^a3\.s0\.i5\.[0-9a-f]{12}$/);
    });

    it("is stable for the same input and changes when any level changes", () => {
      const base = mergeConfig("a.json", layers("a.json", '{"a":1}', '{"b":1}', '{"c":1}', [1, 1, 1])).version;
      expect(mergeConfig("a.json", layers("a.json", '{"a":1}', '{"b":1}', '{"c":1}', [1, 1, 1])).version).to.equal(base);
      const seen = new Set([base]);
      for (const v of [
        mergeConfig("a.json", layers("a.json", '{"a":1}', '{"b":1}', '{"c":1}', [2, 1, 1])).version,
        mergeConfig("a.json", layers("a.json", '{"a":1}', '{"b":1}', '{"c":1}', [1, 2, 1])).version,
        mergeConfig("a.json", layers("a.json", '{"a":1}', '{"b":1}', '{"c":1}', [1, 1, 2])).version,
        // Same version numbers, other content (a level deleted and re-created).
        mergeConfig("a.json", layers("a.json", '{"a":2}', '{"b":1}', '{"c":1}', [1, 1, 1])).version,
        mergeConfig("a.json", layers("a.json", '{"a":1}', '{"b":1}', undefined, [1, 1, 0])).version,
      ]) {
        expect(seen.has(v), v).to.equal(false);
        seen.add(v);
      }
    });
  });

  it("is NOT_FOUND when no level has the file", () => {
    expect(() => mergeConfig("none.conf", layers("none.conf"))).to.throw(NotFoundError, '"none.conf"');
  });
});
