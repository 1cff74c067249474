/**
 * `sgrid admin` as people run it: a child process in front of a real
 * registry, printing where it serves, answering, stopping on SIGTERM.
 */
import { expect } from "chai";
import { spawn } from "node:child_process";
import { CLI } from "../helpers/paths";
import { startStack, waitFor, type Stack } from "./helpers";

describe("sgrid admin (command line)", function () {
  this.timeout(60_000);
  let stack: Stack;

  before(async () => {
    stack = await startStack();
  });
  after(async () => {
    await stack?.stop();
  });

  it("serves on --listen in front of --registry, and stops on SIGTERM with exit 0", async () => {
    const child = spawn(process.execPath, [CLI, "admin", "--registry", stack.registryTarget, "--listen", "127.0.0.1:0"], {
      env: { ...process.env, SGRID_LOG_LEVEL: "warn", SGRID_ADMIN_APP_TOKEN: "" }, stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      const url = await waitFor(`the serving line (stderr: ${err})`, () => /sgrid admin serving on (http:\/\/127\.0\.0\.1:\d+) \(registry /.exec(out)?.[1]);
      const page = await fetch(`${url}/login`);
      expect(page.status).to.equal(200);
      const api = await fetch(`${url}/api/servers`);
      expect(api.status).to.equal(401);
      const login = await fetch(`${url}/api/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ user: "admin", password: "wrong-password" }) });
      expect(login.status).to.equal(401);
      // No admin app token in this environment: the operator is told what that means.
      await waitFor("the token warning", () => err.includes("no SGRID_ADMIN_APP_TOKEN set"));
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).to.equal(0);
  });

  it("refuses a bad --listen with one line and exit 1", async () => {
    const child = spawn(process.execPath, [CLI, "admin", "--registry", stack.registryTarget, "--listen", "nowhere"], {
      env: { ...process.env, SGRID_LOG_LEVEL: "warn" }, stdio: ["ignore", "pipe", "pipe"],
    });
    let err = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
    const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
    expect(code).to.equal(1);
    expect(err).to.contain('admin listen address "nowhere" is not host:port');
  });
});
