/**
 * A servant process for tests: serves Echo on the adapters in SGRID_ADAPTERS
 * (or SGRID_TARGET_PORT) and prints "READY <json adapters>" once listening.
 */
import { Application } from "sgridnext";
import { EchoImpl } from "./echo-servant";

async function main(): Promise<void> {
  const app = new Application({ app: "Test", server: "EchoServer", shutdownGraceMs: Number(process.env.TEST_GRACE_MS ?? 5000) });
  app.addServant("EchoObj", new EchoImpl(process.env.TEST_NAME ?? "echo"));
  await app.start();
  process.stdout.write(`READY ${JSON.stringify(app.adapters().map((a) => ({ obj: a.obj, port: a.endpoint.port, protocol: a.endpoint.protocol })))}\n`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
});
