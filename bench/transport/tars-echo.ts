/**
 * The TarsNode.js side of the benchmark, written by hand as tars2node would
 * generate it for this one-method interface (tars2node is not on npm):
 *
 *   module Bench { interface Echo { string echo(string text); }; };
 *
 * The proxy encodes the argument with @tars/stream and calls
 * `tars_invoke`; the servant's onDispatch decodes it, and `sendResponse`
 * encodes the return value, exactly as the generated code does for the TARS
 * protocol (the TUP branches of generated code are left out: unused here).
 */
const TarsStream: any = require("@tars/stream");
const TarsRpc: any = require("@tars/rpc");

/** Client proxy, shaped like tars2node's `<Interface>Proxy`. */
export function EchoProxy(this: any): void {
  this._name = undefined;
  this._worker = undefined;
}

EchoProxy.prototype.setTimeout = function (this: any, ms: number): void {
  this._worker.timeout = ms;
};

EchoProxy.prototype.echo = function (this: any, text: string): Promise<string> {
  const os = new TarsStream.TarsOutputStream();
  os.writeString(1, text);
  return this._worker.tars_invoke("echo", os.getBinBuffer()).then((data: any) => {
    const is = new TarsStream.TarsInputStream(data.response.sBuffer);
    return is.readString(0, true, TarsStream.String) as string;
  });
};

/** Servant implementation, shaped like tars2node's `<Interface>Imp`. */
export function EchoImp(this: any): void {
  this._name = undefined;
  this._worker = undefined;
}

EchoImp.prototype.initialize = function (): void {
  // nothing to prepare
};

EchoImp.prototype.onDispatch = function (this: any, current: any, funcName: string, binBuffer: any): number {
  if (funcName !== "echo") return TarsRpc.error.SERVER.FUNC_NOT_FOUND;
  const is = new TarsStream.TarsInputStream(binBuffer);
  const text = is.readString(1, true) as string;
  current.sendResponse = (ret: string) => {
    const os = new TarsStream.TarsOutputStream();
    os.writeString(0, ret);
    current.doResponse(os.getBinBuffer());
  };
  this.echo(current, text);
  return TarsRpc.error.SUCCESS;
};

EchoImp.prototype.echo = function (current: any, text: string): void {
  current.sendResponse(text);
};

/** Starts a TARS-protocol server on host:port (0 is not supported by @tars/rpc: pass a free port). */
export function startTarsServer(host: string, port: number): void {
  const svr = TarsRpc.server.createServer(EchoImp);
  svr.start({
    name: "Bench.EchoServer.EchoObjAdapter",
    servant: "Bench.EchoServer.EchoObj",
    endpoint: `tcp -h ${host} -p ${port} -t 60000`,
    protocol: "tars",
    maxconns: 200000,
  });
}

/** A proxy to the server above, with a direct endpoint (no registry). */
export function tarsProxy(host: string, port: number, timeoutMs: number): { echo(text: string): Promise<string> } {
  const prx = TarsRpc.client.stringToProxy(EchoProxy, `Bench.EchoServer.EchoObj@tcp -h ${host} -p ${port} -t ${timeoutMs}`);
  prx.setTimeout(timeoutMs);
  return prx;
}
