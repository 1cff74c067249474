/**
 * Starts the {{obj}} servant in this process on a free loopback port and calls
 * it through its generated proxy, as a peer service would.
 */
import { expect } from "chai";
import { Application, Communicator, setLogLevel } from "sgridnext";
import { {{service}}Proxy } from "../src/gen/{{service}}.sgrid";
import { {{service}} } from "../src/{{serviceKebab}}";

// Quiet logs while testing; SGRID_LOG_LEVEL=info shows them.
setLogLevel(process.env.SGRID_LOG_LEVEL ?? "warn");

describe("{{app}}.{{server}}.{{obj}}", () => {
  let app: Application;
  let comm: Communicator;
  let greeting = "Hello";

  before(async () => {
    // Port 0: the system picks a free port; handleSignals off so mocha keeps its own.
    app = new Application({ app: "{{app}}", server: "{{server}}", adapters: { {{obj}}: "127.0.0.1:0" }, handleSignals: false });
    app.addServant("{{obj}}", new {{service}}(() => greeting));
    await app.start();
    comm = new Communicator();
  });

  after(async () => {
    comm?.close();
    await app?.stop(1000);
  });

  function proxy(): {{service}}Proxy {
    const port = app.adapters()[0]!.endpoint.port;
    return comm.stringToProxy({{service}}Proxy, `{{app}}.{{server}}.{{obj}}@tcp -h 127.0.0.1 -p ${port}`);
  }

  it("answers sayHello through the generated proxy", async () => {
    const reply = await proxy().sayHello({ name: "Ann" });
    expect(reply.message).to.equal("Hello, Ann");
  });

  it("uses the current greeting on every call", async () => {
    greeting = "Bonjour";
    const reply = await proxy().sayHello({ name: "Ann" });
    expect(reply.message).to.equal("Bonjour, Ann");
  });
});
