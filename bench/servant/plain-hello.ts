/**
 * The baseline of `npm run bench servant-start`: the scaffolded hello
 * service on a plain @grpc/grpc-js server, with the project's own generated
 * messages (so only the framework differs). Argv: the scaffold's built gen
 * module, the service's full name, the port.
 */
import * as grpc from "@grpc/grpc-js";

interface Codec<T> {
  encode(m: T): { finish(): Uint8Array };
  decode(b: Uint8Array): T;
}

const [genModule, serviceName, port] = process.argv.slice(2) as [string, string, string];
const gen = require(genModule) as { SayHelloRequest: Codec<{ name: string }>; SayHelloReply: Codec<{ message: string }> };

const server = new grpc.Server();
server.addService({
  SayHello: {
    path: `/${serviceName}/SayHello`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (m: { name: string }) => Buffer.from(gen.SayHelloRequest.encode(m).finish()),
    requestDeserialize: (b: Buffer) => gen.SayHelloRequest.decode(b),
    responseSerialize: (m: { message: string }) => Buffer.from(gen.SayHelloReply.encode(m).finish()),
    responseDeserialize: (b: Buffer) => gen.SayHelloReply.decode(b),
  },
}, {
  SayHello: (call: grpc.ServerUnaryCall<{ name: string }, { message: string }>, cb: grpc.sendUnaryData<{ message: string }>) => {
    cb(null, { message: `Hello, ${call.request.name || "stranger"}` });
  },
});
server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) {
    process.stderr.write(`plain-hello: ${err.message}\n`);
    process.exit(1);
  }
});
process.on("SIGTERM", () => server.tryShutdown(() => process.exit(0)));
