/**
 * `sgrid admin` as an object: the Koa app on an HTTP or HTTPS listener.
 *
 *   const server = new AdminServer({ registry: "127.0.0.1:9500", listen: "127.0.0.1:0" });
 *   const { url } = await server.start();
 *   ...
 *   await server.stop();
 */
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import { bindErrorFrom, getLogger, useHostingLogLevel } from "sgridnext";
import { createAdminApp, type AdminApp } from "./app";
import { parseListen, type AdminOptions } from "./options";

export class AdminServer {
  readonly admin: AdminApp;
  private server: http.Server | https.Server | undefined;
  private readonly log = getLogger("admin");

  /** Validates the options at once (ConfigError naming the bad key). */
  constructor(private readonly options: AdminOptions) {
    useHostingLogLevel();
    this.admin = createAdminApp(options);
  }

  /** Listens; resolves with the URL people open (BindError when the port is taken). */
  async start(): Promise<{ url: string; port: number }> {
    if (this.server) throw new TypeError("admin server already started");
    const { host, port } = parseListen(this.admin.services.options.listen);
    const handler = this.admin.app.callback();
    const tls = this.options.tls;
    // Koa's handler answers its own errors; its promise is not ours to await.
    const listener: http.RequestListener = (req, res) => { void handler(req, res); };
    const server = tls ? https.createServer({ cert: tls.cert, key: tls.key }, listener) : http.createServer(listener);
    // Uploads of large packages over slow links: no whole-request timeout; headers must still come quickly.
    server.requestTimeout = 0;
    server.headersTimeout = 60_000;
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err: NodeJS.ErrnoException) => reject(bindErrorFrom(err, host, port)));
      server.listen(port, host, () => resolve());
    });
    this.server = server;
    const bound = (server.address() as AddressInfo).port;
    const shownHost = host.includes(":") ? `[${host}]` : host;
    const url = `${tls ? "https" : "http"}://${shownHost}:${bound}`;
    this.log.info({ url, registry: this.admin.services.options.registry }, "admin listening");
    return { url, port: bound };
  }

  /** Stops listening, drops open connections (live task views) and closes registry channels. Idempotent. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    }
    this.admin.close();
  }
}
