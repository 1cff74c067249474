/**
 * A client process for the registry tests: resolves TEST_OBJ by name
 * (SGRID_REGISTRY, cache under SGRID_DATA_DIR), makes TEST_CALLS calls and
 * prints "RESULT {served_by: count}" (exit 0), or the error (exit 1).
 */
import { Communicator } from "sgridnext";
import { EchoProxy } from "../gen/demo/echo.sgrid";

async function main(): Promise<void> {
  const comm = new Communicator();
  const proxy = comm.stringToProxy(EchoProxy, process.env.TEST_OBJ ?? "Test.EchoServer.EchoObj");
  const counts: Record<string, number> = {};
  for (let i = 0; i < Number(process.env.TEST_CALLS ?? 6); i++) {
    const r = await proxy.say({ text: "x" });
    const by = r.metadata.served_by ?? "?";
    counts[by] = (counts[by] ?? 0) + 1;
  }
  process.stdout.write(`RESULT ${JSON.stringify(counts)} SOURCE ${proxy.$invoker.source.describe()}\n`);
  comm.close();
}

main().then(() => process.exit(0), (err: Error) => {
  process.stdout.write(`ERROR ${err.name}: ${err.message}\n`);
  process.exit(1);
});
