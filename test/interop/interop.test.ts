/**
 * Interop with an independent gRPC implementation (Python grpcio, from
 * Debian's python3-grpcio): the standard interop cases, both ways.
 *
 * - A Python grpcio client drives the interop TestService served by a Sgrid
 *   servant (InteropServant) on a gRPC adapter.
 * - A Sgrid proxy drives the same TestService served by a Python grpcio server.
 *
 * The Python stubs are generated at test time with grpc_tools.protoc into
 * test-output/, from test/fixtures/protos/grpc/testing (laid out as grpc's own
 * src/proto/grpc/testing, so the modules do not shadow the grpc package).
 */
import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import { Application, Communicator } from "sgridnext";
import { outputDir } from "../helpers/paths";
import { CASES, runCase } from "./interop-cases";
import { PYTHON, SCRIPTS, generateStubs, hasGrpcio, runPythonClient, type CaseResult } from "./python-grpcio";
import { InteropServant } from "./interop-servant";

function startPythonServer(stubs: string): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [path.join(SCRIPTS, "interop_server.py"), stubs, "0"], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => { err += d; });
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      const m = /listening (\d+)/.exec(out);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.on("error", reject);
    child.on("exit", (code) => reject(new Error(`the Python interop server exited with ${code}: ${err}`)));
  });
}

describe("interop with Python grpcio, the standard cases both ways @slow", function () {
  this.timeout(120_000);
  let stubs: string;

  before(function () {
    if (!hasGrpcio()) {
      throw new Error(`${PYTHON} cannot import grpc and grpc_tools: install python3-grpcio and python3-grpc-tools (.ci/run does)`);
    }
    stubs = outputDir("interop-python");
    generateStubs(stubs);
  });

  describe("a Python grpcio client calls a Sgrid servant", () => {
    let app: Application;
    let port: number;
    let results: CaseResult[];

    before(async () => {
      app = new Application({ handleSignals: false, app: "Interop", server: "TestServer", adapters: { TestObj: "127.0.0.1:0" } });
      app.addServant("TestObj", new InteropServant());
      await app.start();
      port = app.adapters()[0]!.endpoint.port;
      const run = await runPythonClient(stubs, `127.0.0.1:${port}`, CASES);
      results = run.results;
      expect(results.length, `one result per case; stderr: ${run.stderr}`).to.equal(CASES.length);
    });

    after(async () => {
      await app?.stop(500);
    });

    for (const name of CASES) {
      it(name, () => {
        const r = results.find((x) => x.case === name);
        expect(r, "the case ran").to.not.equal(undefined);
        expect(r!.error ?? "", name).to.equal("");
        expect(r!.ok).to.equal(true);
      });
    }
  });

  describe("a Sgrid proxy calls a Python grpcio server", () => {
    let server: { child: ChildProcess; port: number };
    let comm: Communicator;

    before(async () => {
      server = await startPythonServer(stubs);
      comm = new Communicator();
    });

    after(() => {
      comm?.close();
      server?.child.stdin!.end();
      server?.child.kill("SIGTERM");
    });

    for (const name of CASES) {
      it(name, async () => {
        await runCase(name, comm, `127.0.0.1:${server.port}`);
      });
    }
  });

  describe("a Sgrid proxy calls the Sgrid servant (the same cases, on both transports)", () => {
    for (const protocol of ["grpc", "sgrid"] as const) {
      describe(protocol, () => {
        let app: Application;
        let comm: Communicator;
        let target: string;

        before(async () => {
          app = new Application({ handleSignals: false, app: "Interop", server: "TestServer", adapters: { TestObj: `${protocol === "sgrid" ? "sgrid://" : ""}127.0.0.1:0` } });
          app.addServant("TestObj", new InteropServant());
          await app.start();
          target = `Interop.TestServer.TestObj@${protocol === "sgrid" ? "sgrid" : "tcp"} -h 127.0.0.1 -p ${app.adapters()[0]!.endpoint.port}`;
          comm = new Communicator();
        });

        after(async () => {
          comm?.close();
          await app?.stop(500);
        });

        for (const name of CASES) {
          it(name, async () => {
            await runCase(name, comm, target);
          });
        }
      });
    }
  });
});
