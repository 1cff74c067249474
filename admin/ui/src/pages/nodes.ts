/** Nodes: online state, last heartbeat, load / memory / disk charts, and the instances on each. */
import { useState } from "preact/hooks";
import { get, put, type Session } from "../api.js";
import { LineChart } from "../components/chart.js";
import { ErrorBanner, StatusBadge, useLoad } from "../components/common.js";
import { ago, bytes } from "../format.js";
import { html } from "../html.js";

/** People's tags as one line: `rack=r1 zone=b -ssd` (a leading "-" hides the agent's tag of that key). */
function peopleTagsText(node: any): string {
  return [...(node.adminTags ?? []), ...(node.adminUnset ?? []).map((k: string) => `-${k}`)].join(" ");
}

/** Tags of a node: the effective ones, the agent's, and an editor of people's (operators and admins). */
function TagsEditor({ node, canEdit, reload }: { node: any; canEdit: boolean; reload: () => void }) {
  const [text, setText] = useState<string | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const save = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(undefined);
    setBusy(true);
    try {
      const words = (text ?? "").split(/[\s,]+/).filter(Boolean);
      await put(`/api/nodes/${encodeURIComponent(node.name)}/tags`, {
        tags: words.filter((w) => !w.startsWith("-")), unset: words.filter((w) => w.startsWith("-")).map((w) => w.slice(1)),
      });
      setText(undefined);
      reload();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const tags: string[] = node.tags ?? [];
  return html`<div class="tags" data-tags=${node.name}>
    <div>Tags: ${tags.length === 0 ? html`<span class="muted">none</span>` : tags.map((t) => html`<span class="badge tag" key=${t}>${t}</span> `)}
      <span class="muted"> · agent: ${(node.agentTags ?? []).join(" ") || "none"} · set here: ${peopleTagsText(node) || "none"}</span></div>
    ${canEdit ? html`<form class="row" onSubmit=${save} aria-label=${`tags of ${node.name}`}>
      <label>Tags set here (win over the agent's; "-key" hides an agent tag)
        <input name="tags" value=${text ?? peopleTagsText(node)} placeholder="rack=r1 zone=b -ssd" onInput=${(e: any) => setText(e.currentTarget.value)} /></label>
      <button type="submit" class="small" disabled=${busy}>Save tags</button>
    </form>` : null}
    <${ErrorBanner} error=${error} />
  </div>`;
}

function NodeCard({ node, instances, canEdit, reload }: { node: any; instances: any[]; canEdit: boolean; reload: () => void }) {
  const samples: any[] = node.samples ?? [];
  const last = samples[samples.length - 1];
  const memTotal = last?.memoryTotal ?? 0;
  const diskTotal = last?.diskTotal ?? 0;
  return html`<div class="card node" data-node=${node.name}>
    <h3>${node.name} <span class=${node.online ? "badge badge-active" : "badge badge-failed"}>${node.online ? "online" : "offline"}</span></h3>
    <div class="muted">${node.address} · agent ${node.agentVersion || "?"} · last heartbeat ${ago(node.lastHeartbeatAt)}</div>
    <${TagsEditor} node=${node} canEdit=${canEdit} reload=${reload} />
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

export function NodesPage({ session }: { session: Session }) {
  const nodes = useLoad(() => get("/api/nodes"), [], 5000);
  const insts = useLoad(() => get("/api/instances"), [], 5000);
  const all: any[] = insts.data?.instances ?? [];
  const list: any[] = nodes.data?.nodes ?? [];
  const canEditTags = (session?.roles ?? []).some((g) => g.role === "operator" || g.role === "admin");
  return html`<section>
    <h1>Nodes</h1>
    <${ErrorBanner} error=${nodes.error ?? insts.error} />
    ${list.length === 0 && nodes.data ? html`<p class="muted">No nodes have registered yet.</p>` : null}
    <div class="nodes">${list.map((n) => html`<${NodeCard} key=${n.name} node=${n} instances=${all.filter((i) => i.node === n.name)} canEdit=${canEditTags} reload=${nodes.reload} />`)}</div>
  </section>`;
}

