/** A small inline SVG line chart of recent samples (no chart library). */
import { html } from "../html.js";

export interface ChartProps {
  values: number[];
  /** Top of the scale (e.g. memory total); default the largest value. */
  max?: number;
  label: string;
  /** Text for the latest value. */
  current: string;
}

const W = 160;
const H = 36;

export function Sparkline({ values, max, label, current }: ChartProps) {
  const top = Math.max(max ?? 0, ...values, 1e-9);
  const n = values.length;
  const points = values.map((v, i) => {
    const x = n <= 1 ? W : (i / (n - 1)) * W;
    const y = H - 2 - (Math.max(0, v) / top) * (H - 4);
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  }).join(" ");
  return html`<figure class="chart" aria-label=${label}>
    <svg viewBox="0 0 ${W} ${H}" width=${W} height=${H} role="img">
      <title>${label}: ${current}</title>
      <rect x="0" y="0" width=${W} height=${H} class="chart-bg" />
      ${n > 0 ? html`<polyline points=${points} class="chart-line" />` : null}
    </svg>
    <figcaption>${label} <b>${current}</b></figcaption>
  </figure>`;
}
