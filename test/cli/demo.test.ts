import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { CLI } from "../helpers/paths";

describe("sgrid demo", function () {
  this.timeout(30_000);
  it("serves the Hello servant and calls it through a generated proxy", () => {
    const res = spawnSync(process.execPath, [CLI, "demo", "--once", "--port", "0"], { encoding: "utf8", env: { ...process.env, SGRID_LOG_LEVEL: "warn" } });
    expect(res.status, res.stderr).to.equal(0);
    expect(res.stdout).to.match(/sayHello -> Hello, Sgrid \(from 127\.0\.0\.1:\d+ over grpc\) #1/);
    expect(res.stdout.match(/greetings -> Greeting \d for Sgrid/g)).to.have.length(3);
  });

  it("exits non-zero naming the port when it is taken", async () => {
    const net = await import("node:net");
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
    const port = (srv.address() as { port: number }).port;
    const res = spawnSync(process.execPath, [CLI, "demo", "--once", "--port", String(port)], { encoding: "utf8" });
    srv.close();
    expect(res.status).to.not.equal(0);
    expect(res.stderr).to.include(`port ${port} is already in use`);
  });
});
