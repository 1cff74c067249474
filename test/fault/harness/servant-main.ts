/**
 * The servant of the fault suite, started by a node agent from a package
 * whose main.js loads this file: a framework Application serving Echo on
 * every adapter the agent gives it (SGRID_ADAPTERS), under the application
 * and server names of its environment. `say` answers who served the call
 * (`<node>#<instance>`), so a caller can tell instances apart.
 */
import { Application } from "sgridnext";
import { EchoImpl } from "../../helpers/echo-servant";

async function main(): Promise<void> {
  const env = process.env;
  const app = new Application({ shutdownGraceMs: 3000 });
  for (const obj of Object.keys(JSON.parse(env.SGRID_ADAPTERS ?? "{}") as Record<string, string>)) {
    app.addServant(obj, new EchoImpl(`${env.SGRID_NODE ?? "?"}#${env.SGRID_INSTANCE_ID ?? "?"}`));
  }
  await app.start();
}

main().catch((err) => {
  process.stderr.write(`fault servant: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
