/**
 * Echo servant process for benchmarks: serves demo.echo.v1.Echo on the
 * adapters given in SGRID_ADAPTERS and prints "READY <json>".
 */
import { Application } from "sgridnext";
import { EchoImpl } from "../test/helpers/echo-servant";

async function main(): Promise<void> {
  const app = new Application({ app: "Bench", server: "EchoServer" });
  app.addServant("EchoObj", new EchoImpl("bench"));
  await app.start();
  process.stdout.write(`READY ${JSON.stringify(app.adapters().map((a) => ({ protocol: a.endpoint.protocol, port: a.endpoint.port })))}\n`);
  process.on("message", (m) => {
    if (m === "cpu") process.send!({ cpu: process.cpuUsage() });
  });
}

void main();
