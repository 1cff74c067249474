import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import * as http from "node:http";
import * as net from "node:net";
import {
  HealthMonitor, grpcCheck, httpCheck, tcpCheck, register, resolve, decodeHealthResponse, encodeHealthRequest,
  type HealthEvent, type HealthCheck,
} from "../../nodeagent/health";

function listen(server: net.Server | http.Server, port = 0): Promise<number> {
  return new Promise((res, rej) => {
    server.once("error", rej);
    server.listen(port, "127.0.0.1", () => res((server.address() as net.AddressInfo).port));
  });
}

function close(server: net.Server | http.Server): Promise<void> {
  return new Promise((res) => server.close(() => res()));
}

/** A port nothing listens on: bound once, then released. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await close(s);
  return port;
}

/** The test's own encoding of the health messages, independent of the code under test. */
const healthService: grpc.ServiceDefinition = {
  Check: {
    path: "/grpc.health.v1.Health/Check",
    requestStream: false,
    responseStream: false,
    requestSerialize: (v: Buffer) => v,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (v: Buffer) => v,
    responseDeserialize: (b: Buffer) => b,
  },
};

function serviceOf(req: Buffer): string {
  if (req.length === 0) return "";
  expect(req[0]).to.equal(0x0a);
  return req.subarray(2, 2 + req[1]).toString("utf8");
}

async function startGrpc(withHealth: boolean): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  if (withHealth) {
    server.addService(healthService, {
      Check: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        const service = serviceOf(call.request);
        if (service === "") return cb(null, Buffer.from([0x08, 0x01]));
        if (service === "demo.Down") return cb(null, Buffer.from([0x08, 0x02]));
        if (service === "demo.Slow") return setTimeout(() => cb(null, Buffer.from([0x08, 0x01])), 2000);
        cb({ code: grpc.status.NOT_FOUND, details: "unknown service" });
      },
    });
  }
  const port = await new Promise<number>((res, rej) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  return { server, port };
}

describe("nodeagent/health", () => {
  describe("checks", () => {
    let httpServer: http.Server;
    let httpPort: number;
    let dead: number;

    before(async () => {
      httpServer = http.createServer((req, res) => {
        if (req.url === "/ok") return res.end("ok");
        if (req.url === "/moved") {
          res.writeHead(302, { location: "/elsewhere" });
          return res.end();
        }
        if (req.url === "/slow") return; // never answers
        res.writeHead(503);
        res.end("down");
      });
      httpPort = await listen(httpServer);
      dead = await closedPort();
    });

    after(async () => {
      httpServer.closeAllConnections();
      await close(httpServer);
    });

    it("http: 2xx and 3xx are healthy; 5xx, refused and slow are not", async () => {
      expect(await httpCheck.check({ host: "127.0.0.1", port: httpPort, path: "/ok" }, 1000)).to.deep.equal({ ok: true, detail: "HTTP 200" });
      expect(await httpCheck.check({ host: "127.0.0.1", port: httpPort, path: "/moved" }, 1000)).to.deep.equal({ ok: true, detail: "HTTP 302" });
      expect(await httpCheck.check({ host: "127.0.0.1", port: httpPort, path: "/broken" }, 1000)).to.deep.equal({ ok: false, detail: "HTTP 503" });
      const refused = await httpCheck.check({ host: "127.0.0.1", port: dead }, 1000);
      expect(refused.ok).to.equal(false);
      expect(refused.detail).to.match(/ECONNREFUSED/);
      expect(await httpCheck.check({ host: "127.0.0.1", port: httpPort, path: "/slow" }, 100)).to.deep.equal({ ok: false, detail: "timed out after 100 ms" });
      expect((await httpCheck.check({ host: "127.0.0.1", port: httpPort, path: "/bad path\n" }, 100)).ok, "never throws").to.equal(false);
    });

    it("tcp: a listening port is healthy, a closed one is not", async () => {
      expect(await tcpCheck.check({ host: "127.0.0.1", port: httpPort }, 1000)).to.deep.equal({ ok: true, detail: "connected" });
      const r = await tcpCheck.check({ host: "127.0.0.1", port: dead }, 1000);
      expect(r.ok).to.equal(false);
      expect(r.detail).to.match(/ECONNREFUSED/);
    });

    it("grpc: SERVING is healthy; NOT_SERVING, unknown service, no health service, refused and slow are not", async () => {
      const up = await startGrpc(true);
      const bare = await startGrpc(false);
      try {
        const t = { host: "127.0.0.1", port: up.port };
        expect(await grpcCheck.check(t, 2000)).to.deep.equal({ ok: true, detail: "SERVING" });
        expect(await grpcCheck.check({ ...t, service: "demo.Down" }, 2000)).to.deep.equal({ ok: false, detail: "NOT_SERVING" });
        expect(await grpcCheck.check({ ...t, service: "demo.Nope" }, 2000)).to.deep.equal({ ok: false, detail: 'service "demo.Nope" unknown to the server' });
        expect(await grpcCheck.check({ ...t, service: "demo.Slow" }, 150)).to.deep.equal({ ok: false, detail: "timed out after 150 ms" });
        expect(await grpcCheck.check({ host: "127.0.0.1", port: bare.port }, 2000)).to.deep.equal({ ok: false, detail: "server does not implement grpc.health.v1.Health" });
        const refused = await grpcCheck.check({ host: "127.0.0.1", port: dead }, 2000);
        expect(refused.ok).to.equal(false);
        expect(refused.detail).to.match(/^UNAVAILABLE/);
      } finally {
        up.server.forceShutdown();
        bare.server.forceShutdown();
      }
    });

    it("grpc: encodes the request and decodes the response by hand, skipping unknown fields", () => {
      expect(encodeHealthRequest({})).to.deep.equal(Buffer.alloc(0));
      expect(encodeHealthRequest({ service: "a.B" })).to.deep.equal(Buffer.from([0x0a, 3, 0x61, 0x2e, 0x42]));
      const long = "s".repeat(200);
      expect(encodeHealthRequest({ service: long }).subarray(0, 3)).to.deep.equal(Buffer.from([0x0a, 0xc8, 0x01]));
      expect(decodeHealthResponse(Buffer.alloc(0))).to.deep.equal({ status: 0 });
      expect(decodeHealthResponse(Buffer.from([0x12, 2, 0x41, 0x42, 0x08, 0x02, 0x1d, 1, 2, 3, 4]))).to.deep.equal({ status: 2 });
      expect(() => decodeHealthResponse(Buffer.from([0x08]))).to.throw(/truncated/);
    });

    it("resolves by name, registers new kinds, and refuses unknown names", () => {
      expect(resolve("http")).to.equal(httpCheck);
      const custom: HealthCheck = { name: "always", check: async () => ({ ok: true, detail: "yes" }) };
      register("always", custom);
      expect(resolve("always")).to.equal(custom);
      expect(() => resolve("carrier-pigeon")).to.throw(TypeError, /unknown health check "carrier-pigeon"/);
    });
  });

  describe("HealthMonitor", () => {
    it("emits unhealthy after N consecutive failures, once, and healthy again on recovery", async () => {
      const server = net.createServer((s) => s.destroy());
      const port = await listen(server);
      const mon = new HealthMonitor({ check: "tcp", target: { host: "127.0.0.1", port }, initialDelayMs: 0, intervalMs: 10, timeoutMs: 500, failureThreshold: 3 });
      const events: string[] = [];
      const checks: HealthEvent[] = [];
      mon.on("check", (e: HealthEvent) => checks.push(e));
      const next = (name: string): Promise<HealthEvent> => new Promise((r) => mon.once(name, r));
      for (const name of ["healthy", "unhealthy"]) mon.on(name, () => events.push(name));
      try {
        mon.start();
        await next("healthy");
        expect(mon.state).to.equal("healthy");
        await close(server);
        const bad = await next("unhealthy");
        expect(bad.consecutiveFailures).to.equal(3);
        expect(bad.detail).to.match(/ECONNREFUSED/);
        const failuresSeen = checks.filter((c) => !c.ok).map((c) => c.consecutiveFailures);
        expect(failuresSeen.slice(0, 3)).to.deep.equal([1, 2, 3]);
        await new Promise((r) => setTimeout(r, 60));
        expect(events, "unhealthy emitted once per streak").to.deep.equal(["healthy", "unhealthy"]);
        await listen(server, port);
        await next("healthy");
        expect(mon.consecutiveFailures).to.equal(0);
        expect(events).to.deep.equal(["healthy", "unhealthy", "healthy"]);
      } finally {
        mon.stop();
        if (server.listening) await close(server);
      }
    });

    it("waits the initial delay, counts a throwing check as a failure, and stops cleanly", async () => {
      let calls = 0;
      const broken: HealthCheck = {
        name: "broken",
        check: async () => {
          calls++;
          throw new Error("contract broken");
        },
      };
      const mon = new HealthMonitor({ check: broken, target: { host: "127.0.0.1", port: 1 }, initialDelayMs: 150, intervalMs: 5, failureThreshold: 2 });
      mon.start();
      await new Promise((r) => setTimeout(r, 50));
      expect(calls, "nothing before the initial delay").to.equal(0);
      const ev = await new Promise<HealthEvent>((r) => mon.once("unhealthy", r));
      expect(ev.detail).to.equal("contract broken");
      mon.stop();
      const after = calls;
      await new Promise((r) => setTimeout(r, 50));
      expect(calls).to.equal(after);
      expect(() => new HealthMonitor({ check: "tcp", target: { host: "h", port: 0 } })).to.throw();
    });
  });
});
