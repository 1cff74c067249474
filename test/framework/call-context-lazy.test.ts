/**
 * The call context (servant/call-context.ts) is turned on lazily: a servant
 * process that has made no proxy runs its calls outside AsyncLocalStorage
 * (no async hooks on every promise), and a proxy made afterwards, inside a
 * servant method, still gives its calls the incoming call's deadline: on the
 * first call (made before the method's first await) and on every later one
 * (after awaits too). A proxy made with inheritCallContext: false does not.
 * Each protocol gets a fresh child process: the switch is per process.
 */
import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import { Communicator } from "sgridnext";
import { EchoProxy } from "../gen/demo/echo.sgrid";

interface Seen { front: number | undefined; back: number | undefined; enabled: boolean }

function startChild(protocol: string): Promise<{ child: ChildProcess; port: number; enabled: boolean }> {
  const child = spawn(process.execPath, [path.join(__dirname, "call-context-lazy-main.js")], {
    env: { ...process.env, TEST_PROTOCOL: protocol, SGRID_LOG_LEVEL: "warn" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      const ready = /READY (.*)\n/.exec(out);
      if (ready) resolve({ child, ...(JSON.parse(ready[1]!) as { port: number; enabled: boolean }) });
      const failed = /ERROR (.*)\n/.exec(out);
      if (failed) reject(new Error(failed[1]));
    });
    child.once("exit", (code) => reject(new Error(`the servant process exited with ${code}: ${out}`)));
  });
}

for (const protocol of ["sgrid", "grpc"] as const) {
  describe(`framework call context turned on lazily, over ${protocol}`, function () {
    this.timeout(30_000);
    let child: ChildProcess;
    let enabledAtStart: boolean;
    let comm: Communicator;
    let proxy: EchoProxy;

    before(async () => {
      const started = await startChild(protocol);
      child = started.child;
      enabledAtStart = started.enabled;
      comm = new Communicator({ registry: "", env: {} });
      proxy = comm.stringToProxy(EchoProxy, `Test.LazyFront.EchoObj@${protocol === "sgrid" ? "sgrid" : "tcp"} -h 127.0.0.1 -p ${started.port}`);
    });

    after(() => {
      comm.close();
      child.kill("SIGKILL");
    });

    /** One call through the front servant, with a 1 s deadline; what both servants saw. */
    async function call(how: string): Promise<Seen & { sentAt: number }> {
      const sentAt = Date.now();
      const reply = await proxy.say({ text: how }, { timeoutMs: 1000 });
      return { ...(JSON.parse(reply.text) as Seen), sentAt };
    }

    it("is off in a servant process that has made no proxy", () => {
      expect(enabledAtStart).to.equal(false);
    });

    it("a proxy made inside the first call, and called before its first await, gets the incoming deadline", async () => {
      const seen = await call("sync");
      expect(seen.enabled, "making the proxy turned the call context on").to.equal(true);
      expect(seen.front).to.be.a("number");
      // The back servant sees the caller's deadline, not now + 3 s. It travels as a relative timeout, so the back's
      // copy is later by the hop's transit time, tens of ms on a loaded machine: 500 ms of slack still tells the
      // inherited deadline (front + transit) from the proxy's own (about 2 s later).
      expect(seen.back).to.be.a("number");
      expect(seen.back!).to.be.at.most(seen.front! + 500);
      expect(seen.back!).to.be.below(seen.sentAt + 2000);
    });

    it("later calls inherit it after an await too", async () => {
      const seen = await call("after-await");
      expect(seen.back!).to.be.at.most(seen.front! + 500);
      expect(seen.back!).to.be.below(seen.sentAt + 2000);
    });

    it("a proxy made with inheritCallContext: false keeps its own timeout", async () => {
      const seen = await call("own");
      expect(seen.back!).to.be.above(seen.sentAt + 2000);
    });
  });
}
