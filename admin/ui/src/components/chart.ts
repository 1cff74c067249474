/** Inline SVG line charts with labelled axes (no chart library). */
import { html } from "../html.js";

export interface LineChartProps {
  /** [time ms, value] in time order. */
  points: Array<[number, number]>;
  label: string;
  /** Formats a value on the y axis and in the caption, with its unit ("12 calls/min", "3.2 GiB"). */
  format: (v: number) => string;
  /** Top of the y axis (e.g. memory total); default the largest value. */
  max?: number;
  /** The time range of the x axis, ms; default the points' own. */
  from?: number;
  to?: number;
}

const LW = 340;
const LH = 130;
const PAD = { left: 64, right: 8, top: 8, bottom: 20 };

function hhmm(ms: number, spanMs: number): string {
  const d = new Date(ms);
  const pad = (x: number): string => String(x).padStart(2, "0");
  const t = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return spanMs > 24 * 3600_000 ? `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${t}` : t;
}

/** A line chart with labelled axes: values (with their unit) up the side, local time along the bottom. */
export function LineChart({ points, label, format, max, from, to }: LineChartProps) {
  const t0 = from ?? points[0]?.[0] ?? Date.now() - 3600_000;
  const t1 = Math.max(to ?? points[points.length - 1]?.[0] ?? Date.now(), t0 + 1);
  const top = Math.max(max ?? 0, ...points.map((p) => p[1]), 1e-9);
  const iw = LW - PAD.left - PAD.right;
  const ih = LH - PAD.top - PAD.bottom;
  const x = (t: number): number => PAD.left + ((t - t0) / (t1 - t0)) * iw;
  const y = (v: number): number => PAD.top + ih - (Math.max(0, v) / top) * ih;
  const line = points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  const yTicks = [0, top / 2, top];
  const xTicks = [t0, (t0 + t1) / 2, t1];
  const last = points[points.length - 1];
  return html`<figure class="chart line-chart" aria-label=${label}>
    <svg viewBox="0 0 ${LW} ${LH}" width=${LW} height=${LH} role="img">
      <title>${label}</title>
      <rect x=${PAD.left} y=${PAD.top} width=${iw} height=${ih} class="chart-bg" />
      ${yTicks.map((v) => html`<g><line x1=${PAD.left - 3} x2=${PAD.left + iw} y1=${y(v)} y2=${y(v)} class="chart-grid" />
        <text x=${PAD.left - 5} y=${y(v) + 3} text-anchor="end" class="chart-axis">${format(v)}</text></g>`)}
      ${xTicks.map((t, i) => html`<text x=${x(t)} y=${LH - 5} text-anchor=${i === 0 ? "start" : i === 2 ? "end" : "middle"} class="chart-axis">${hhmm(t, t1 - t0)}</text>`)}
      ${points.length > 1 ? html`<polyline points=${line} class="chart-line" />` : null}
      ${points.length === 1 ? html`<circle cx=${x(points[0]![0])} cy=${y(points[0]![1])} r="2.5" class="chart-dot" />` : null}
    </svg>
    <figcaption>${label} <b>${last ? format(last[1]) : "no data"}</b></figcaption>
  </figure>`;
}
