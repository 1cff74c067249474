/**
 * Name and value validation of the registry store (no database needed), and
 * the registry's storage error classes.
 */
import { expect } from "chai";
import { InvalidArgumentError, SgridError, Status, errorFromWire, errorToWire } from "sgridnext";
import { DatabaseUnavailableError, MigrationFailedError, MigrationLockedError, DatabaseUrlError } from "../../registry/errors";
import { describeConfig, instanceScopes, scopeKey, validate } from "../../registry/store";

function refusal(fn: () => unknown): InvalidArgumentError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(InvalidArgumentError);
    return err as InvalidArgumentError;
  }
  throw new Error("expected a refusal");
}

describe("registry store: validation", () => {
  const checks: Array<[string, (v: unknown) => string, string[], string[]]> = [
    ["application name", validate.validateApplication, ["Demo", "my-app_2"], ["a/b", "a\\b", "a..b", "", "x".repeat(65), "a.b", "a b", "日本"]],
    ["server name", validate.validateServerName, ["HelloServer"], ["../x", "S/1", ""]],
    ["Obj name", validate.validateObjName, ["GreeterObj"], ["Greeter.Obj", "..", "a\\b"]],
    ["node name", validate.validateNodeName, ["node-1.example.com", "10.0.0.1"], ["a/b", "a..b", "..", "", "x".repeat(129), "a@b"]],
    ["config file name", validate.validateConfigFileName, ["app.conf", "log4j2.xml", "_env"], ["a/b", "..\\x", "..", ".", ".env", "", "x".repeat(129), "a\nb"]],
    ["user name", validate.validateUserName, ["alice", "ci-bot@example.com"], ["a/b", "", "a b"]],
  ];

  for (const [kind, fn, good, bad] of checks) {
    it(`accepts good and refuses bad ${kind}s, naming the ${kind} and the value`, () => {
      for (const v of good) expect(fn(v)).to.equal(v);
      for (const v of bad) {
        const err = refusal(() => fn(v));
        expect(err.message, JSON.stringify(v)).to.contain(kind);
        if (v.length > 0 && v.length <= 80) expect(err.message).to.contain(JSON.stringify(v));
        expect(err.status).to.equal(Status.INVALID_ARGUMENT);
      }
    });
  }

  it("says which rule a name broke", () => {
    expect(refusal(() => validate.validateConfigFileName("a/b")).message).to.contain("must not contain a path separator");
    expect(refusal(() => validate.validateConfigFileName("a\\b")).message).to.contain("must not contain a path separator");
    expect(refusal(() => validate.validateConfigFileName(".env")).message).to.contain('must start with a letter, a digit or "_"');
    expect(refusal(() => validate.validateConfigFileName("..")).message).to.contain('must not contain ".."');
    expect(refusal(() => validate.validateConfigFileName("")).message).to.contain("must not be empty");
    expect(refusal(() => validate.validateConfigFileName("x".repeat(200))).message).to.contain("longer than 128");
    expect(refusal(() => validate.validateConfigFileName(42)).message).to.contain("expected a string");
  });

  it("parses full Obj names and refuses malformed ones", () => {
    expect(validate.parseFullObjName("Demo.HelloServer.GreeterObj")).to.deep.equal({ application: "Demo", server: "HelloServer", obj: "GreeterObj" });
    for (const bad of ["Demo.Hello", "a.b.c.d", "", "Demo/x.S.O", "..Obj"]) {
      expect(refusal(() => validate.parseFullObjName(bad)).message).to.match(/Obj name|application name|server name/);
    }
  });

  it("builds config scope keys that cannot collide, and refuses bad scopes", () => {
    expect(scopeKey({ level: "application", application: "Demo" })).to.equal("Demo");
    expect(scopeKey({ level: "server", application: "Demo", server: "Hello" })).to.equal("Demo.Hello");
    expect(scopeKey({ level: "instance", application: "Demo", server: "Hello", node: "n1.x" })).to.equal("Demo.Hello@n1.x");
    expect(instanceScopes("A", "S", "n").map(scopeKey)).to.deep.equal(["A", "A.S", "A.S@n"]);
    expect(describeConfig({ level: "server", application: "A", server: "S" }, "x.conf")).to.equal('config file "x.conf" at server A.S');
    refusal(() => scopeKey({ level: "instance", application: "A", server: "S", node: "n@x" }));
    refusal(() => scopeKey({ level: "cluster" } as any));
  });

  it("normalises adapters and checks env and limits", () => {
    expect(validate.validateAdapters([{ obj: "A", host: "h", port: 1 }])).to.deep.equal([{ obj: "A", host: "h", port: 1, protocol: "grpc", weight: 100 }]);
    expect(validate.validateEnv(undefined)).to.deep.equal({});
    expect(validate.validateLimits({ memoryBytes: 1024, cpuCores: 0.25, pids: 5 })).to.deep.equal({ memoryBytes: 1024, cpuCores: 0.25, pids: 5 });
    expect(refusal(() => validate.validateEnv({ A: 1 })).message).to.contain('"A"');
    expect(validate.validateSha256("AB".repeat(32))).to.equal("ab".repeat(32));
  });
});

describe("registry store: error classes", () => {
  it("carry stable codes and statuses, and survive the wire as the same class", () => {
    const cases: Array<[SgridError, string, Status, boolean]> = [
      [new DatabaseUnavailableError("db down"), "DATABASE_UNAVAILABLE", Status.UNAVAILABLE, true],
      [new MigrationLockedError("locked"), "MIGRATION_LOCKED", Status.UNAVAILABLE, true],
      [new MigrationFailedError("failed"), "MIGRATION_FAILED", Status.INTERNAL, false],
      [new DatabaseUrlError("bad url"), "DATABASE_URL_INVALID", Status.INVALID_ARGUMENT, false],
    ];
    for (const [err, code, status, retryable] of cases) {
      expect(err).to.include({ code, status, retryable });
      const wire = errorToWire(err);
      const back = errorFromWire(wire.status, wire.message, wire.code, wire.data);
      expect(back.constructor).to.equal(err.constructor);
      expect(back.message).to.equal(err.message);
    }
  });
});
