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
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { Application, Communicator } from "sgridnext";
import { FIXTURES, REPO_ROOT, outputDir } from "../helpers/paths";
import { CASES, runCase } from "./interop-cases";
import { InteropServant } from "./interop-servant";

/** Debian's python3, which has python3-grpcio (a pyenv or venv python on PATH may not); SGRID_TEST_PYTHON overrides. */
const PYTHON = process.env.SGRID_TEST_PYTHON ?? "/usr/bin/python3";
const SCRIPTS = path.join(REPO_ROOT, "test/interop/python");

function hasGrpcio(): boolean {
  try {
    execFileSync(PYTHON, ["-c", "import grpc, grpc_tools.protoc"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Generates the grpc.testing Python stubs under `dir` (module path src.proto.grpc.testing). */
function generateStubs(dir: string): void {
  const protoDir = path.join(dir, "src/proto/grpc/testing");
  fs.mkdirSync(protoDir, { recursive: true });
  for (const name of ["empty", "messages", "test"]) {
    const text = fs.readFileSync(path.join(FIXTURES, `protos/grpc/testing/${name}.proto`), "utf8");
    fs.writeFileSync(path.join(protoDir, `${name}.proto`), text.replaceAll('import "grpc/testing/', 'import "src/proto/grpc/testing/'));
  }
  const protos = ["empty", "messages", "test"].map((n) => `src/proto/grpc/testing/${n}.proto`);
  execFileSync(PYTHON, ["-m", "grpc_tools.protoc", "-I", ".", "--python_out=.", "--grpc_python_out=.", ...protos], { cwd: dir, stdio: "pipe" });
}

interface CaseResult {
  case: string;
  ok: boolean;
  error?: string;
}

function runPythonClient(stubs: string, target: string): Promise<{ results: CaseResult[]; code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [path.join(SCRIPTS, "interop_client.py"), stubs, target, ...CASES], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => { out += d; });
    child.stderr.setEncoding("utf8").on("data", (d: string) => { err += d; });
    child.on("error", reject);
    child.on("exit", (code) => {
      const results = out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as CaseResult);
      resolve({ results, code, stderr: err });
    });
  });
}

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
      const run = await runPythonClient(stubs, `127.0.0.1:${port}`);
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
