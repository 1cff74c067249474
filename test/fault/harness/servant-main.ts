/**
 * The servant of the fault suite, started by a node agent from a package
 * whose main.js loads this file: a framework Application serving Echo on
 * every adapter the agent gives it (SGRID_ADAPTERS), under the application
 * and server names of its environment. `say` answers who served the call
 * (`<node>#<instance>`), so a caller can tell instances apart. It loads
 * `fault.json` at start when the registry has one.
 */
import { Application, InternalError, NotFoundError, type ServerContext } from "sgridnext";
import type { EchoRequest } from "../../gen/demo/echo";
import { EchoImpl } from "../../helpers/echo-servant";

/** A bad version (FAULT_FAIL_SAY set by its package's main.js): every Say fails. */
class FailingEcho extends EchoImpl {
  override async say(_request: EchoRequest, _ctx: ServerContext): Promise<never> {
    throw new InternalError(`bad version: Say fails (${this.name})`);
  }
}

/** The config file the servant loads at start when the registry has it. */
const FAULT_CONFIG = "fault.json";

async function main(): Promise<void> {
  const env = process.env;
  const app = new Application({ shutdownGraceMs: 3000 });
  for (const obj of Object.keys(JSON.parse(env.SGRID_ADAPTERS ?? "{}") as Record<string, string>)) {
    const name = `${env.SGRID_NODE ?? "?"}#${env.SGRID_INSTANCE_ID ?? "?"}`;
    app.addServant(obj, env.FAULT_FAIL_SAY === "1" ? new FailingEcho(name) : new EchoImpl(name));
  }
  // Its config, when the registry has one: a view that cannot be loaded (and no last good copy) fails the start, as in any servant.
  await app.config.load(FAULT_CONFIG).catch((err: unknown) => {
    if (!(err instanceof NotFoundError)) throw err;
  });
  await app.start();
}

main().catch((err) => {
  process.stderr.write(`fault servant: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
