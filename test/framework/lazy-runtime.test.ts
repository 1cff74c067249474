/**
 * A servant loads what it uses: a gRPC servant started from `sgridnext`'s
 * index (as every generated project does) and answering a call loads none
 * of what only some servants need: zod (package manifests, native-transport
 * options), prom-client (metrics), @bufbuild/protobuf's descriptors
 * (reflection), yaml (YAML config files), @opentelemetry/api (without an SDK),
 * the native transport's modules (a gRPC-only servant).
 * Checked in a child process that records every module it loaded.
 */
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { outputDir } from "../helpers/paths";

const EXTRAS = /[\\/]node_modules[\\/](zod|prom-client|@opentelemetry[\\/]api|yaml)[\\/]|[\\/]@bufbuild[\\/]protobuf[\\/]dist[\\/]cjs[\\/](wkt[\\/])?index\.js$/;

describe("sgridnext loads only what a servant uses", function () {
  this.timeout(60_000);

  it("a gRPC servant serving a call loads no zod, prom-client, reflection descriptors, yaml or OpenTelemetry", () => {
    const dir = outputDir("lazy-runtime");
    const record = path.join(dir, "modules.json");
    const script = `
      const { Application, Communicator } = require("sgridnext");
      const { EchoImpl } = require(${JSON.stringify(path.join(__dirname, "../helpers/echo-servant"))});
      const { EchoProxy } = require(${JSON.stringify(path.join(__dirname, "../../test/gen/demo/echo.sgrid"))});
      (async () => {
        const app = new Application({ app: "Lazy", server: "EchoServer", handleSignals: false, agent: "", registry: "", adapters: { EchoObj: "127.0.0.1:0" } });
        app.addServant("EchoObj", new EchoImpl("lazy"));
        await app.start();
        const port = app.adapters()[0].endpoint.port;
        const comm = new Communicator();
        const reply = await comm.stringToProxy(EchoProxy, "grpc://127.0.0.1:" + port).say({ text: "hi" });
        comm.close();
        await app.stop();
        require("fs").writeFileSync(${JSON.stringify(record)}, JSON.stringify({ reply, modules: Object.keys(require.cache) }));
        process.exit(0);
      })().catch((err) => { console.error(err); process.exit(1); });`;
    const res = spawnSync(process.execPath, ["-e", script], { cwd: dir, encoding: "utf8", env: { ...process.env, SGRID_LOG_LEVEL: "warn" } });
    expect(res.status, res.stderr).to.equal(0);
    const { reply, modules } = JSON.parse(fs.readFileSync(record, "utf8")) as { reply: { text: string }; modules: string[] };
    fs.rmSync(dir, { recursive: true, force: true });
    expect(reply.text).to.include("hi");
    expect(modules.some((m) => m.includes(`${path.sep}@grpc${path.sep}grpc-js${path.sep}`)), "grpc-js loaded").to.equal(true);
    expect(modules.filter((m) => EXTRAS.test(m))).to.deep.equal([]);
    // The native transport is loaded when a native channel or server is first made (framework/transport/index.ts).
    expect(modules.filter((m) => /[\\/]transport[\\/]sgrid[\\/]/.test(m)), "native transport modules").to.deep.equal([]);
  });
});
