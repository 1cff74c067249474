/**
 * Endpoint weights over real servers on both transports: the default
 * balancer (round-robin) sends each endpoint its weight's share of calls,
 * whether the proxy speaks gRPC or the native protocol. This is what a
 * canary's share of calls rests on (registry/admin/canary.ts).
 */
import { expect } from "chai";
import { Application, Communicator } from "sgridnext";
import { EchoProxy } from "../gen/demo/echo.sgrid";
import { EchoImpl } from "../helpers/echo-servant";

describe("framework: endpoint weights on both transports", function () {
  this.timeout(30_000);

  for (const [protocol, word, listen] of [["gRPC", "tcp", "127.0.0.1:0"], ["native", "sgrid", "sgrid://127.0.0.1:0"]] as const) {
    it(`${protocol}: a weight 10 endpoint beside a weight 90 one gets 10 % of the calls`, async () => {
      const apps = await Promise.all(["heavy", "light"].map(async (name) => {
        const app = new Application({ handleSignals: false, adapters: { EchoObj: listen } });
        app.addServant("EchoObj", new EchoImpl(name));
        await app.start();
        return app;
      }));
      const comm = new Communicator();
      try {
        const [heavy, light] = apps.map((a) => a.adapters()[0]!.endpoint.port);
        const proxy = comm.stringToProxy(EchoProxy, `Test.EchoServer.EchoObj@${word} -h 127.0.0.1 -p ${heavy} -w 90:${word} -h 127.0.0.1 -p ${light} -w 10`);
        const seen = new Map<string, number>();
        for (let i = 0; i < 200; i++) {
          const by = (await proxy.say({ text: String(i) })).metadata.served_by!;
          seen.set(by, (seen.get(by) ?? 0) + 1);
        }
        expect(seen.get("light")).to.equal(20);
        expect(seen.get("heavy")).to.equal(180);
      } finally {
        comm.close();
        await Promise.all(apps.map((a) => a.stop(200)));
      }
    });
  }
});
