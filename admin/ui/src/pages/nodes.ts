/** Nodes: online state, last heartbeat, load / memory / disk charts, and the instances on each. */
import { get, type Session } from "../api.js";
import { LineChart } from "../components/chart.js";
import { ErrorBanner, StatusBadge, useLoad } from "../components/common.js";
import { ago, bytes } from "../format.js";
import { html } from "../html.js";

function NodeCard({ node, instances }: { node: any; instances: any[] }) {
  const samples: any[] = node.samples ?? [];
  const last = samples[samples.length - 1];
  const memTotal = last?.memoryTotal ?? 0;
  const diskTotal = last?.diskTotal ?? 0;
  return html`<div class="card node" data-node=${node.name}>
    <h3>${node.name} <span class=${node.online ? "badge badge-active" : "badge badge-failed"}>${node.online ? "online" : "offline"}</span></h3>
    <div class="muted">${node.address} · agent ${node.agentVersion || "?"} · last heartbeat ${ago(node.lastHeartbeatAt)}</div>
    <div class="charts">
      <${LineChart} label="CPU (cores used)" points=${samples.map((s) => [s.at, s.cpuUsed])} format=${(v: number) => `${v.toFixed(2)} cores`} />
      <${LineChart} label=${`memory used (of ${bytes(memTotal)})`} points=${samples.map((s) => [s.at, s.memoryUsed])} max=${memTotal} format=${bytes} />
      <${LineChart} label=${`disk used (of ${bytes(diskTotal)})`} points=${samples.map((s) => [s.at, s.diskUsed])} max=${diskTotal} format=${bytes} />
      <${LineChart} label="load (1 min)" points=${samples.map((s) => [s.at, s.load1])} format=${(v: number) => v.toFixed(2)} />
    </div>
    <table class="grid">
      <thead><tr><th>Instance</th><th>Server</th><th>State</th><th>Version</th></tr></thead>
      <tbody>${instances.map((i) => html`<tr key=${i.id}>
        <td><a href=${`/apps/${encodeURIComponent(i.application)}/${encodeURIComponent(i.server)}/instances/${i.id}`}>${i.id}</a></td>
        <td>${i.application}.${i.server}</td><td><${StatusBadge} value=${i.observedState} /></td><td>${i.observedVersion ? `v${i.observedVersion}` : "—"}</td>
      </tr>`)}</tbody>
    </table>
    ${instances.length === 0 ? html`<div class="muted">no instances</div>` : null}
  </div>`;
}

export function NodesPage({ session: _session }: { session: Session }) {
  const nodes = useLoad(() => get("/api/nodes"), [], 5000);
  const insts = useLoad(() => get("/api/instances"), [], 5000);
  const all: any[] = insts.data?.instances ?? [];
  const list: any[] = nodes.data?.nodes ?? [];
  return html`<section>
    <h1>Nodes</h1>
    <${ErrorBanner} error=${nodes.error ?? insts.error} />
    ${list.length === 0 && nodes.data ? html`<p class="muted">No nodes have registered yet.</p>` : null}
    <div class="nodes">${list.map((n) => html`<${NodeCard} key=${n.name} node=${n} instances=${all.filter((i) => i.node === n.name)} />`)}</div>
  </section>`;
}

