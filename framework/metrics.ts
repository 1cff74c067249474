/**
 * Prometheus `/metrics` for a servant process: the per-method statistics of
 * servants and proxies (stats.ts), plus Node process metrics from prom-client
 * (CPU, memory, event-loop lag, GC; prefixed `sgrid_process_`/`nodejs_` as
 * prom-client names them).
 *
 * Enabled by `new Application({ metricsPort })` or `SGRID_METRICS_PORT`
 * (0 = any free port); off by default (one more open port is a choice).
 * Bound to `SGRID_METRICS_HOST`, default 0.0.0.0 so that Prometheus on
 * another machine can scrape it.
 *
 * The per-method figures are read from the in-process stats at scrape time:
 * nothing is added to the call path. Series:
 *
 * | name | labels | kind |
 * |---|---|---|
 * | `sgrid_server_calls_total` | obj, method | counter |
 * | `sgrid_server_errors_total` | obj, method, code | counter |
 * | `sgrid_server_latency_seconds` | obj, method | histogram |
 * | `sgrid_client_calls_total` | service, method | counter |
 * | `sgrid_client_errors_total` | service, method, code | counter |
 * | `sgrid_client_latency_seconds` | service, method | histogram |
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import { ENV } from "./contract/env";
import { bindErrorFrom, ConfigError } from "./errors";
import { getLogger } from "./logger";
import { LATENCY_BUCKETS_MS, clientStats, serverStats, type StatsRegistry } from "./stats";

const log = getLogger("metrics");

let processRegistry: Registry | undefined;

function defaultRegistry(): Registry {
  if (!processRegistry) {
    // Loaded when metrics are first served: a process that never serves them (the node agent, most servants) does not load prom-client.
    const prom = require("prom-client") as typeof import("prom-client");
    processRegistry = new prom.Registry();
    prom.collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

const BUCKET_LE = LATENCY_BUCKETS_MS.map((ms) => String(ms / 1000));

/**
 * Appends one StatsRegistry as `<prefix>_calls_total`, `<prefix>_errors_total`
 * (by code) and `<prefix>_latency_seconds` (histogram), each entry's scope
 * under the label `scopeLabel`. Also used by other processes with their own
 * registries (the gateway's routes).
 */
export function renderStats(out: string[], prefix: string, scopeLabel: string, stats: StatsRegistry): void {
  const entries = stats.entries();
  const p = prefix;
  out.push(`# HELP ${p}_calls_total Calls finished, per ${scopeLabel} and method.`, `# TYPE ${p}_calls_total counter`);
  for (const e of entries) out.push(`${p}_calls_total{${scopeLabel}="${escapeLabel(e.scope)}",method="${escapeLabel(e.method)}"} ${e.stats.calls}`);
  out.push(`# HELP ${p}_errors_total Calls that failed, per ${scopeLabel}, method and error code.`, `# TYPE ${p}_errors_total counter`);
  for (const e of entries) {
    for (const [code, n] of e.stats.errorsByCode) {
      out.push(`${p}_errors_total{${scopeLabel}="${escapeLabel(e.scope)}",method="${escapeLabel(e.method)}",code="${escapeLabel(code)}"} ${n}`);
    }
  }
  out.push(`# HELP ${p}_latency_seconds Call latency.`, `# TYPE ${p}_latency_seconds histogram`);
  for (const e of entries) {
    const labels = `${scopeLabel}="${escapeLabel(e.scope)}",method="${escapeLabel(e.method)}"`;
    let cumulative = 0;
    for (let i = 0; i < e.stats.buckets.length; i++) {
      cumulative += e.stats.buckets[i]!;
      out.push(`${p}_latency_seconds_bucket{${labels},le="${BUCKET_LE[i] ?? "+Inf"}"} ${cumulative}`);
    }
    out.push(`${p}_latency_seconds_sum{${labels}} ${e.stats.totalMs / 1000}`, `${p}_latency_seconds_count{${labels}} ${e.stats.calls}`);
  }
}

/** The whole exposition text (Prometheus text format 0.0.4). */
export async function renderMetrics(): Promise<string> {
  const out: string[] = [];
  renderStats(out, "sgrid_server", "obj", serverStats);
  renderStats(out, "sgrid_client", "service", clientStats);
  return `${out.join("\n")}\n${await defaultRegistry().metrics()}`;
}

/** The `/metrics` port asked for by SGRID_METRICS_PORT (0 = any), undefined when unset; ConfigError naming the value otherwise. */
export function metricsPortFromEnv(env: NodeJS.ProcessEnv): number | undefined {
  const raw = env[ENV.METRICS_PORT];
  if (raw === undefined || raw === "") return undefined;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`SGRID_METRICS_PORT must be a port number 0-65535, got "${raw}"`);
  return port;
}

export interface MetricsServer {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

export interface MetricsServerOptions {
  /** Port; 0 = any free port. Required. */
  port: number;
  /** Default 0.0.0.0. */
  host?: string;
}

/** Serves GET /metrics. Rejects with BindError naming the port when it cannot listen. */
export function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const host = options.host ?? "0.0.0.0";
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) throw new TypeError(`metrics port must be 0-65535, got ${options.port}`);
  const server = http.createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: try GET /metrics\n");
      return;
    }
    renderMetrics().then((text) => {
      res.writeHead(200, { "content-type": defaultRegistry().contentType }).end(text);
    }, (err) => {
      log.error({ err }, "cannot render metrics");
      res.writeHead(500, { "content-type": "text/plain" }).end("metrics failed\n");
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", (err) => reject(bindErrorFrom(err as NodeJS.ErrnoException, host, options.port)));
    server.listen(options.port, host, () => {
      const port = (server.address() as AddressInfo).port;
      log.info({ host, port }, "metrics endpoint listening");
      resolve({
        host, port,
        close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
      });
    });
  });
}
