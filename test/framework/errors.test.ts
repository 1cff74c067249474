/**
 * Every error code defined anywhere in Sgrid is documented in ERRORS.md, and
 * every code documented there is defined somewhere.
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as path from "node:path";
import { SgridError, errorFromWire, errorToWire, InternalError, Status, UnavailableError, NotFoundError } from "sgridnext";
import { REPO_ROOT, partDist } from "../helpers/paths";

function errorModules(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) errorModules(full, out);
    else if (e.name === "errors.js") out.push(full);
  }
  return out;
}

function definedCodes(): Map<string, string> {
  const codes = new Map<string, string>();
  for (const part of ["framework", "tools", "registry", "nodeagent", "admin", "cli"] as const) {
    const dir = partDist(part);
    if (!fs.existsSync(dir)) continue;
    for (const mod of errorModules(dir)) {
      const exports = require(mod) as Record<string, unknown>;
      for (const [name, value] of Object.entries(exports)) {
        if (typeof value !== "function" || !(value.prototype instanceof SgridError)) continue;
        const code = (value as { CODE?: string }).CODE ?? (() => {
          try { return (new (value as new (m: string) => SgridError)("probe")).code; } catch { return undefined; }
        })();
        if (code) codes.set(code, `${path.relative(REPO_ROOT, mod)}:${name}`);
      }
    }
  }
  return codes;
}

function documentedCodes(): Set<string> {
  const text = fs.readFileSync(path.join(REPO_ROOT, "ERRORS.md"), "utf8");
  const codes = new Set<string>();
  for (const m of text.matchAll(/^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|/gm)) codes.add(m[1]!);
  return codes;
}

describe("error codes", () => {
  it("every defined code is documented in ERRORS.md, and every documented code is defined", () => {
    const defined = definedCodes();
    const documented = documentedCodes();
    const undocumented = [...defined.keys()].filter((c) => !documented.has(c)).map((c) => `${c} (${defined.get(c)})`);
    const stale = [...documented].filter((c) => !defined.has(c));
    expect(undocumented, "defined but not in ERRORS.md").to.deep.equal([]);
    expect(stale, "in ERRORS.md but defined nowhere").to.deep.equal([]);
    expect(defined.size).to.be.greaterThan(10);
  });

  it("codes are stable SCREAMING_SNAKE", () => {
    for (const code of definedCodes().keys()) expect(code).to.match(/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/);
  });

  it("maps known errors to their status and anything else to INTERNAL without details", () => {
    expect(errorToWire(new NotFoundError("server Demo.X not found"))).to.deep.include({ status: Status.NOT_FOUND, code: "NOT_FOUND", message: "server Demo.X not found" });
    const wire = errorToWire(new Error("password=hunter2"));
    expect(wire).to.deep.equal({ status: Status.INTERNAL, message: "internal error", code: "INTERNAL" });
    expect(errorFromWire(Status.INTERNAL, "internal error", "INTERNAL")).to.be.instanceOf(InternalError);
    const unavailable = errorFromWire(Status.UNAVAILABLE, "connect refused");
    expect(unavailable).to.be.instanceOf(UnavailableError);
    expect(unavailable.retryable).to.equal(true);
    const custom = errorFromWire(Status.FAILED_PRECONDITION, "x", "SOMETHING_ELSE", { a: 1 });
    expect(custom.code).to.equal("SOMETHING_ELSE");
    expect(custom.status).to.equal(Status.FAILED_PRECONDITION);
    expect(custom.data).to.deep.equal({ a: 1 });
  });
});
