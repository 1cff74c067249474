/** TCP health check: healthy when a connection can be opened; it is closed at once. */
import * as net from "node:net";
import { messageOf, type HealthCheck, type HealthResult, type HealthTarget } from "./base";

export const tcpCheck: HealthCheck = {
  name: "tcp",
  check(target: HealthTarget, timeoutMs: number): Promise<HealthResult> {
    return new Promise((resolve) => {
      let sock: net.Socket | undefined;
      let settled = false;
      const finish = (r: HealthResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        sock?.destroy();
        resolve(r);
      };
      const timer = setTimeout(() => finish({ ok: false, detail: `timed out after ${timeoutMs} ms` }), timeoutMs);
      try {
        sock = net.connect({ host: target.host, port: target.port });
        sock.once("connect", () => finish({ ok: true, detail: "connected" }));
        sock.once("error", (err) => finish({ ok: false, detail: messageOf(err) }));
      } catch (err) {
        finish({ ok: false, detail: messageOf(err) });
      }
    });
  },
};
