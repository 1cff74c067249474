/**
 * A servant process that makes no proxy before it serves (call-context-lazy.test.ts):
 * a back Obj and a front Obj whose servant makes its proxy to the back one
 * lazily, inside its first call. TEST_PROTOCOL (grpc or sgrid) is the
 * transport of both Objs. Prints `READY {"port", "enabled"}`, `enabled`
 * being whether calls carried their context across awaits before any call.
 *
 * The front's Say answers with the deadlines both servants saw, as JSON in
 * `text`; its request text picks how it calls the back one:
 *   "sync"        makes the proxy (first time) and calls it before any await;
 *   "after-await" awaits first, then calls;
 *   "own"         calls through a proxy made with inheritCallContext: false.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Application, type DeepPartial, type ServerContext } from "sgridnext";
import { callContextEnabled } from "sgridnext/internal/servant/call-context";
import { EchoProxy } from "../gen/demo/echo.sgrid";
import type { EchoReply, EchoRequest } from "../gen/demo/echo";
import { EchoImpl } from "../helpers/echo-servant";

async function main(): Promise<void> {
  const protocol = process.env.TEST_PROTOCOL === "grpc" ? "grpc" : "sgrid";
  const listen = `${protocol === "sgrid" ? "sgrid://" : ""}127.0.0.1:0`;
  const backImpl = new EchoImpl("back");
  const back = new Application({ app: "Test", server: "LazyBack", handleSignals: false, agent: "", registry: "", adapters: { EchoObj: listen } });
  back.addServant("EchoObj", backImpl);
  await back.start();
  const target = `Test.LazyBack.EchoObj@${protocol === "sgrid" ? "sgrid" : "tcp"} -h 127.0.0.1 -p ${back.adapters()[0]!.endpoint.port}`;

  const front = new Application({ app: "Test", server: "LazyFront", handleSignals: false, agent: "", registry: "", adapters: { EchoObj: listen } });
  class Front extends EchoImpl {
    private peer: EchoProxy | undefined;

    override async say(request: EchoRequest, ctx: ServerContext): Promise<DeepPartial<EchoReply>> {
      if (request.text === "after-await") await sleep(1);
      let peer: EchoProxy;
      if (request.text === "own") peer = front.communicator.stringToProxy(EchoProxy, target, { inheritCallContext: false });
      else peer = this.peer ??= front.communicator.stringToProxy(EchoProxy, target);
      await peer.say({ text: request.text });
      return { text: JSON.stringify({ front: ctx.deadline, back: backImpl.lastDeadline, enabled: callContextEnabled() }) };
    }
  }
  front.addServant("EchoObj", new Front("front"));
  await front.start();
  process.stdout.write(`READY ${JSON.stringify({ port: front.adapters()[0]!.endpoint.port, enabled: callContextEnabled() })}\n`);
  process.on("SIGTERM", () => {
    void Promise.all([front.stop(200), back.stop(200)]).then(() => process.exit(0));
  });
}

main().catch((err: Error) => {
  process.stdout.write(`ERROR ${err.name}: ${err.message}\n`);
  process.exit(1);
});
