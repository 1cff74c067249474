/**
 * Python grpcio (Debian's python3-grpcio) as an independent gRPC client in
 * tests: stubs generated at test time, the interop client run as a child
 * process (test/interop/python/interop_client.py).
 */
import { spawn, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { FIXTURES, REPO_ROOT } from "../helpers/paths";

/** Debian's python3, which has python3-grpcio (a pyenv or venv python on PATH may not); SGRID_TEST_PYTHON overrides. */
export const PYTHON = process.env.SGRID_TEST_PYTHON ?? "/usr/bin/python3";
export const SCRIPTS = path.join(REPO_ROOT, "test/interop/python");

export function hasGrpcio(): boolean {
  try {
    execFileSync(PYTHON, ["-c", "import grpc, grpc_tools.protoc"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Generates the grpc.testing Python stubs under `dir` (module path src.proto.grpc.testing). */
export function generateStubs(dir: string): void {
  const protoDir = path.join(dir, "src/proto/grpc/testing");
  fs.mkdirSync(protoDir, { recursive: true });
  for (const name of ["empty", "messages", "test"]) {
    const text = fs.readFileSync(path.join(FIXTURES, `protos/grpc/testing/${name}.proto`), "utf8");
    fs.writeFileSync(path.join(protoDir, `${name}.proto`), text.replaceAll('import "grpc/testing/', 'import "src/proto/grpc/testing/'));
  }
  const protos = ["empty", "messages", "test"].map((n) => `src/proto/grpc/testing/${n}.proto`);
  execFileSync(PYTHON, ["-m", "grpc_tools.protoc", "-I", ".", "--python_out=.", "--grpc_python_out=.", ...protos], { cwd: dir, stdio: "pipe" });
}

export interface CaseResult {
  case: string;
  ok: boolean;
  error?: string;
}

export function runPythonClient(stubs: string, target: string, cases: readonly string[]): Promise<{ results: CaseResult[]; code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [path.join(SCRIPTS, "interop_client.py"), stubs, target, ...cases], { stdio: ["ignore", "pipe", "pipe"] });
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

