/**
 * A bad `bodyIdleTimeoutMs` in the gateway's routes file (gateway/routes.ts;
 * the HTTP front refuses a body that sends nothing for that long, 408) is
 * refused with CONFIG_INVALID naming the field and the value: `sgrid
 * gateway` does not start with it, and a reload with it keeps the routes in
 * use. A value past what a Node timer can wait (2^31 - 1 ms) is refused
 * too: setTimeout would fire it after 1 ms and refuse every body at once.
 */
import { expect } from "chai";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { ConfigError } from "sgridnext";
import { Gateway } from "../../gateway/gateway";
import { parseRoutes } from "../../gateway/routes";
import { CLI, outputDir } from "../helpers/paths";

const BAD: Array<[string, RegExp]> = [
  ["-1", /got -1/],
  ["0", /got 0/],
  ["1.5", /got 1\.5/],
  [".nan", /got NaN/],
  ['"30s"', /got "30s"/],
  ['"30000"', /got "30000"/],
  ["2147483648", /got 2147483648/],
];
const RULE = /bodyIdleTimeoutMs: must be a whole number of milliseconds from 1 to 2147483647/;

/** Runs `sgrid gateway` with `routes` as its routes file; resolves with its exit code and output once it exits (or kills it after `ms`). */
function gateway(dir: string, routes: string, ms = 20_000): Promise<{ code: number | null; out: string }> {
  const file = path.join(dir, `routes-${Math.random().toString(36).slice(2)}.yaml`);
  fs.writeFileSync(file, routes);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, "gateway", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--routes", file], {
      env: { ...process.env, SGRID_LOG_LEVEL: "warn", SGRID_REGISTRY: "" }, stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), ms);
    child.on("exit", (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
}

describe("gateway routes: a bad bodyIdleTimeoutMs", function () {
  this.timeout(60_000);

  for (const [value, got] of BAD) {
    it(`${value}: refused with CONFIG_INVALID naming the field and the value, in defaults and in a route`, () => {
      for (const [text, field] of [[`defaults: { bodyIdleTimeoutMs: ${value} }`, "defaults.bodyIdleTimeoutMs"], [`routes:\n  - service: "*"\n    bodyIdleTimeoutMs: ${value}`, "routes.0.bodyIdleTimeoutMs"]]) {
        let err: unknown;
        try { parseRoutes(text!, "", "gateway.yaml"); } catch (e) { err = e; }
        expect(err, text).to.be.instanceOf(ConfigError);
        expect((err as ConfigError).message).to.match(RULE).and.match(got).and.contain(`gateway.yaml: ${field}:`);
        expect((err as ConfigError).data).to.deep.equal({ field });
      }
    });
  }

  it("the largest a timer can wait, 2147483647 ms, is taken", () => {
    expect(parseRoutes("defaults: { bodyIdleTimeoutMs: 2147483647 }").match("a.B")!.bodyIdleTimeoutMs).to.equal(2147483647);
  });

  it("sgrid gateway does not start with one: it exits 1 saying which field and why", async () => {
    const dir = outputDir("gateway-routes-bad");
    const runs = await Promise.all([gateway(dir, "defaults: { bodyIdleTimeoutMs: -5 }"), gateway(dir, 'routes:\n  - service: "*"\n    bodyIdleTimeoutMs: "30s"')]);
    for (const r of runs) {
      expect(r.code, r.out).to.equal(1);
      expect(r.out).to.match(RULE).and.match(/^sgrid: .*routes-\w+\.yaml: /m);
      expect(r.out).to.not.match(/serving gRPC/);
    }
    expect(runs[0]!.out).to.contain("defaults.bodyIdleTimeoutMs").and.match(/got -5/);
    expect(runs[1]!.out).to.contain("routes.0.bodyIdleTimeoutMs").and.match(/got "30s"/);
  });

  it("a reload with one is refused, and the running gateway keeps the routes it had", async () => {
    const file = path.join(outputDir("gateway-routes-reload"), "routes.yaml");
    fs.writeFileSync(file, "defaults: { bodyIdleTimeoutMs: 300 }");
    const gw = new Gateway({ listen: "127.0.0.1:0", httpListen: "127.0.0.1:0", routesFile: file });
    try {
      await gw.start();
      fs.writeFileSync(file, "defaults: { bodyIdleTimeoutMs: 2147483648 }");
      let err: unknown;
      try { await gw.reloadRoutes(); } catch (e) { err = e; }
      expect(err).to.be.instanceOf(ConfigError);
      expect((err as Error).message).to.match(RULE).and.contain("got 2147483648");
      expect(gw.routes().match("demo.echo.v1.Echo")!.bodyIdleTimeoutMs).to.equal(300);
    } finally {
      await gw.stop(0);
    }
  });
});
