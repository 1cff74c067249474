/**
 * `sgrid demo`: a servant and a proxy calling it, in one process — the
 * smallest end-to-end picture of the framework. It keeps serving until Ctrl-C
 * so other gRPC clients can call it too.
 */
import type { Command } from "commander";
import { Application, Communicator, type DeepPartial, type ServerContext } from "sgridnext";
import { HelloServant, HelloProxy } from "sgridnext/gen/sgrid/demo/v1/hello.sgrid";
import type { HelloReply, HelloRequest } from "sgridnext/gen/sgrid/demo/v1/hello";

class HelloImpl extends HelloServant {
  private count = 0;
  async sayHello(request: HelloRequest, ctx: ServerContext): Promise<DeepPartial<HelloReply>> {
    this.count++;
    return { message: `Hello, ${request.name || "stranger"} (from ${ctx.peer} over ${ctx.protocol})`, count: this.count };
  }
  async *greetings(request: HelloRequest): AsyncIterable<DeepPartial<HelloReply>> {
    for (let i = 1; i <= 3; i++) yield { message: `Greeting ${i} for ${request.name}`, count: i };
  }
}

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description("serve a demo Hello servant and call it through a generated proxy")
    .option("--port <port>", "port to serve on", "10000")
    .option("--once", "call, print and exit instead of serving until Ctrl-C")
    .action(async (opts: { port: string; once?: boolean }) => {
      const app = new Application({ app: "Demo", server: "HelloServer", adapters: { HelloObj: `127.0.0.1:${opts.port}` } });
      app.addServant("HelloObj", new HelloImpl());
      await app.start();
      const port = app.adapters()[0]!.endpoint.port;
      const target = `Demo.HelloServer.HelloObj@tcp -h 127.0.0.1 -p ${port}`;
      const out = (s: string) => process.stdout.write(`${s}\n`);
      out(`serving Demo.HelloServer.HelloObj on 127.0.0.1:${port} (gRPC; grpc.health.v1 too)`);
      const comm = new Communicator();
      const proxy = comm.stringToProxy(HelloProxy, target);
      out(`proxy: ${target}`);
      const reply = await proxy.sayHello({ name: "Sgrid" });
      out(`sayHello -> ${reply.message} #${reply.count}`);
      for await (const g of proxy.greetings({ name: "Sgrid" })) out(`greetings -> ${g.message}`);
      comm.close();
      if (opts.once) {
        await app.stop(1000);
        return;
      }
      out("serving until Ctrl-C");
    });
}
