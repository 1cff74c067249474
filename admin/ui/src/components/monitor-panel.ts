/**
 * The service monitor of one server: per Obj (or called service) and
 * method, calls, errors by code and latency over a time range, from the
 * per-minute stats servants report (GET /api/stats); charts of the chosen
 * method; the same numbers as CSV.
 */
import { useState } from "preact/hooks";
import { get, qs } from "../api.js";
import { html } from "../html.js";
import { LineChart } from "./chart.js";
import { ErrorBanner, useLoad } from "./common.js";

const RANGES: Array<[string, number]> = [["1 h", 3600_000], ["6 h", 6 * 3600_000], ["24 h", 24 * 3600_000], ["7 d", 7 * 24 * 3600_000]];

interface Row {
  key: string;
  side: string;
  scope: string;
  method: string;
  calls: number;
  errors: number;
  codes: Record<string, number>;
  p99: number;
  points: any[];
}

function summarize(points: any[]): Row[] {
  const rows = new Map<string, Row>();
  for (const p of points) {
    const key = `${p.side} ${p.scope} ${p.method}`;
    const r: Row = rows.get(key) ?? { key, side: p.side, scope: p.scope, method: p.method, calls: 0, errors: 0, codes: {}, p99: 0, points: [] };
    r.calls += Number(p.calls);
    r.errors += Number(p.errors);
    for (const [c, n] of Object.entries(JSON.parse(p.errorsByCodeJson || "{}") as Record<string, number>)) r.codes[c] = (r.codes[c] ?? 0) + n;
    r.p99 = Math.max(r.p99, p.p99Ms);
    r.points.push(p);
    rows.set(key, r);
  }
  // Problems first: the highest error rate, then the busiest.
  return [...rows.values()].sort((a, b) => b.errors / b.calls - a.errors / a.calls || b.calls - a.calls);
}

export function MonitorPanel({ app, server }: { app: string; server: string }) {
  const [range, setRange] = useState(RANGES[0]![1]);
  const [side, setSide] = useState("server");
  const [chosen, setChosen] = useState<string | undefined>(undefined);
  const query = () => {
    const to = Date.now();
    return { application: app, server, side, from: to - range, to };
  };
  const { data, error } = useLoad(() => get(`/api/stats${qs(query())}`), [app, server, range, side], 30_000);
  const rows = summarize(data?.points ?? []);
  const row = rows.find((r) => r.key === chosen) ?? rows[0];
  const perMin = (n: number): number => n / ((data?.stepMs ?? 60_000) / 60_000);
  return html`<div class="monitor">
    <div class="row">
      <label>Range <select name="range" value=${range} onChange=${(e: any) => setRange(Number(e.currentTarget.value))}>
        ${RANGES.map(([l, ms]) => html`<option value=${ms}>last ${l}</option>`)}</select></label>
      <label>Calls <select name="side" value=${side} onChange=${(e: any) => setSide(e.currentTarget.value)}>
        <option value="server">served by this server</option><option value="client">made by this server</option></select></label>
      <a class="button-link" href=${`/api/stats${qs({ ...query(), format: "csv" })}`} download>Export CSV</a>
    </div>
    <${ErrorBanner} error=${error} />
    ${rows.length === 0 && data ? html`<p class="muted" data-empty="monitor">No calls in this range. Servants built on the framework report their calls through their agent about every keepalive.</p>` : null}
    ${rows.length > 0 ? html`<table class="grid monitor-table">
      <thead><tr><th>Obj / service</th><th>Method</th><th class="num">Calls</th><th class="num">Errors</th><th class="num">Error rate</th><th>Errors by code</th><th class="num">p99 (worst point)</th></tr></thead>
      <tbody>${rows.map((r) => html`<tr key=${r.key} data-method=${r.method} class=${r === row ? "selected" : ""}>
        <td>${r.scope}</td><td><button type="button" class="link" onClick=${() => setChosen(r.key)}>${r.method}</button></td>
        <td class="num calls">${r.calls}</td><td class="num errors">${r.errors}</td>
        <td class=${`num ${r.errors > 0 ? "health-bad" : ""}`}>${r.calls ? ((100 * r.errors) / r.calls).toFixed(1) : "0.0"} %</td>
        <td>${Object.entries(r.codes).map(([c, n]) => `${c} ${n}`).join(", ") || "—"}</td><td class="num">${r.p99} ms</td>
      </tr>`)}</tbody>
    </table>` : null}
    ${row ? html`<div class="charts" aria-label="method charts">
      <${LineChart} label=${`${row.method}: calls`} from=${data.fromMs} to=${data.toMs} points=${row.points.map((p: any) => [Number(p.at), perMin(Number(p.calls))])} format=${(v: number) => `${v.toFixed(v < 10 ? 1 : 0)}/min`} />
      <${LineChart} label=${`${row.method}: errors`} from=${data.fromMs} to=${data.toMs} points=${row.points.map((p: any) => [Number(p.at), perMin(Number(p.errors))])} format=${(v: number) => `${v.toFixed(v < 10 ? 1 : 0)}/min`} />
      <${LineChart} label=${`${row.method}: p99 latency`} from=${data.fromMs} to=${data.toMs} points=${row.points.map((p: any) => [Number(p.at), p.p99Ms])} format=${(v: number) => `${v.toFixed(v < 10 ? 1 : 0)} ms`} />
    </div>` : null}
  </div>`;
}
