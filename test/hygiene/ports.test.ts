/**
 * Reserved test ports (helpers/ports.ts): outside the kernel's ephemeral
 * range, never handed out twice, never shared by two test processes, never
 * one something already listens on.
 */
import { expect } from "chai";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { reservePort } from "../helpers/ports";

function ephemeralRange(): [number, number] {
  const [lo, hi] = fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
  return [lo!, hi!];
}

describe("test hygiene: reserved ports", function () {
  this.timeout(30_000);

  it("hands out distinct ports outside the ephemeral range and the registry's port range, skipping one in use", async () => {
    const [lo, hi] = ephemeralRange();
    const first = await reservePort();
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(first + 1, "0.0.0.0", () => r()));
    try {
      const ports = [first];
      for (let i = 0; i < 150; i++) ports.push(await reservePort());
      expect(new Set(ports).size).to.equal(ports.length);
      expect(ports, "the port in use is skipped").to.not.include(first + 1);
      for (const p of ports) {
        expect(p < lo || p > hi, `${p} in the ephemeral range`).to.equal(true);
        expect(p >= 20000 && p <= 29999, `${p} in the registry's range`).to.equal(false);
      }
    } finally {
      busy.close();
    }
  });

  it("gives processes running at the same time disjoint ports", async () => {
    const mod = path.join(__dirname, "../helpers/ports.js");
    // Each child reserves 20 ports, then holds them (stays alive) until told to go, as a test run does.
    const script = `const { reservePort } = require(${JSON.stringify(mod)}); (async () => { const out = []; for (let i = 0; i < 20; i++) out.push(await reservePort()); console.log(JSON.stringify(out)); process.stdin.on("end", () => process.exit(0)); process.stdin.resume(); })();`;
    const run = () => {
      const child = spawn(process.execPath, ["-e", script], { stdio: ["pipe", "pipe", "inherit"] });
      const ports = new Promise<number[]>((resolve) => {
        let out = "";
        child.stdout!.on("data", (d: Buffer) => {
          out += d.toString();
          if (out.includes("\n")) resolve(JSON.parse(out) as number[]);
        });
      });
      return { child, ports };
    };
    const a = run();
    const b = run();
    try {
      const [pa, pb] = await Promise.all([a.ports, b.ports]);
      const mine: number[] = [];
      for (let i = 0; i < 20; i++) mine.push(await reservePort());
      const all = [...pa, ...pb, ...mine];
      expect(new Set(all).size, JSON.stringify({ pa, pb, mine })).to.equal(all.length);
    } finally {
      a.child.stdin!.end();
      b.child.stdin!.end();
    }
  });
});
