/**
 * A standalone client as a user writes one: makes a proxy, calls, prints the
 * answer, and neither calls close() nor process.exit(). TEST_TARGET is an Obj
 * name (resolved through SGRID_REGISTRY) or endpoints; TEST_STREAM=1 also
 * reads a server stream.
 */
import { Communicator } from "sgridnext";
import { EchoProxy } from "../gen/demo/echo.sgrid";

async function main(): Promise<void> {
  const proxy = new Communicator().stringToProxy(EchoProxy, process.env.TEST_TARGET ?? "Test.EchoServer.EchoObj");
  const r = await proxy.say({ text: "standalone" });
  let streamed = 0;
  if (process.env.TEST_STREAM === "1") for await (const _ of proxy.repeat({ text: "s", count: 3 })) streamed++;
  process.stdout.write(`RESULT ${r.text} ${streamed}\n`);
}

main().catch((err: Error) => {
  process.stdout.write(`ERROR ${err.name}: ${err.message}\n`);
  process.exitCode = 1;
});
