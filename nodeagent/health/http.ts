/**
 * HTTP health check: GET `path`; a 2xx or 3xx answer is healthy (redirects
 * are not followed, as Kubernetes' httpGet probe counts 3xx as success).
 * A fresh connection per check (`agent: false`), closed after the answer,
 * so a check never rides on a connection that predates a restart.
 */
import * as http from "node:http";
import { messageOf, type HealthCheck, type HealthResult, type HealthTarget } from "./base";

export const httpCheck: HealthCheck = {
  name: "http",
  check(target: HealthTarget, timeoutMs: number): Promise<HealthResult> {
    return new Promise((resolve) => {
      let req: http.ClientRequest | undefined;
      let settled = false;
      const finish = (r: HealthResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req?.destroy();
        resolve(r);
      };
      const timer = setTimeout(() => finish({ ok: false, detail: `timed out after ${timeoutMs} ms` }), timeoutMs);
      try {
        req = http.request({
          host: target.host, port: target.port, path: target.path ?? "/", method: "GET", agent: false,
          headers: { "user-agent": "sgrid-agent-health", connection: "close" },
        }, (res) => {
          res.resume();
          const code = res.statusCode ?? 0;
          finish({ ok: code >= 200 && code < 400, detail: `HTTP ${code}` });
        });
        req.on("error", (err) => finish({ ok: false, detail: messageOf(err) }));
        req.end();
      } catch (err) {
        finish({ ok: false, detail: messageOf(err) });
      }
    });
  },
};
