/** Overview (every application and its servers) and one application's page. */
import { useState } from "preact/hooks";
import { del, get, mayChange, qs, type Session } from "../api.js";
import { ErrorBanner, StatusBadge, useLoad } from "../components/common.js";
import { ConfigPanel } from "../components/config-panel.js";
import { time } from "../format.js";
import { html } from "../html.js";
import { navigate } from "../router.js";

/** Every server at a glance: instances by state, versions, the last 5 minutes' calls; problems first (the API sorts). */
function HealthTable({ servers, session }: { servers: any[]; session: Session }) {
  if (servers.length === 0) return html`<p class="muted">No servers yet. <a href="/deploy">Deploy one.</a></p>`;
  return html`<table class="grid health">
    <thead><tr><th>Server</th><th>Type</th><th>Instances</th><th>Versions</th><th class="num">Calls/min</th><th class="num">Errors</th><th class="num">p99</th><th>Problem</th><th>Created</th></tr></thead>
    <tbody>${servers.map((s) => html`<tr key=${s.application + "." + s.server} data-server=${`${s.application}.${s.server}`}>
      <td><a href=${`/apps/${encodeURIComponent(s.application)}`}>${s.application}</a>.<a href=${`/apps/${encodeURIComponent(s.application)}/${encodeURIComponent(s.server)}`}>${s.server}</a></td>
      <td>${s.type}</td>
      <td class="states">${Object.entries(s.states).map(([st, n]) => html`<${StatusBadge} value=${st} /> ${n} `)}${s.instances === 0 ? "none" : ""}</td>
      <td>${s.versions.map((v: number) => `v${v}`).join(", ") || "—"}${s.defaultVersion ? html` <span class="muted">(default v${s.defaultVersion})</span>` : null}</td>
      <td class="num">${s.callsPerMin.toFixed(s.callsPerMin < 10 ? 1 : 0)}</td>
      <td class=${`num ${s.errorRate >= 0.01 ? "health-bad" : ""}`}>${(s.errorRate * 100).toFixed(1)} %</td>
      <td class="num">${s.p99Ms ? `${s.p99Ms} ms` : "—"}</td>
      <td class="problem health-bad">${s.problem}</td>
      <td class="time">${time(s.createdAt)}</td>
    </tr>`)}</tbody>
  </table>
  <p class="hint">Calls, errors and p99 over the last 5 minutes, as servants report them (Monitor tab of a server for more).</p>
  ${servers.some((s) => mayChange(session, s.application)) ? null : html`<p class="muted">You have read-only access.</p>`}`;
}

export function HomePage({ session }: { session: Session }) {
  const { data, error } = useLoad(() => get("/api/dashboard"), [], 10000);
  return html`<section>
    <h1>Servers</h1>
    <${ErrorBanner} error=${error} />
    ${data ? html`<${HealthTable} servers=${data.servers} session=${session} />` : html`<p class="muted">Loading…</p>`}
  </section>`;
}

export function AppPage({ session, app }: { session: Session; app: string }) {
  const { data, error, reload } = useLoad(() => get(`/api/servers${qs({ application: app })}`), [app], 10000);
  const [actionError, setActionError] = useState<unknown>(undefined);
  const can = mayChange(session, app);
  const servers: any[] = data?.servers ?? [];
  const remove = async (name: string): Promise<void> => {
    if (!confirm(`Delete server ${app}.${name}? Its instances must be undeployed first.`)) return;
    try {
      await del(`/api/servers/${encodeURIComponent(app)}/${encodeURIComponent(name)}`);
      reload();
    } catch (e) {
      setActionError(e);
    }
  };
  return html`<section>
    <h1>${app}</h1>
    <${ErrorBanner} error=${error ?? actionError} />
    <table class="grid">
      <thead><tr><th>Server</th><th>Type</th><th>Default version</th><th>Instances</th><th></th></tr></thead>
      <tbody>${servers.map((s) => html`<tr key=${s.name}>
        <td><a href=${`/apps/${encodeURIComponent(app)}/${encodeURIComponent(s.name)}`}>${s.name}</a></td>
        <td>${s.type}</td><td>${s.defaultVersion || "—"}</td><td>${s.instanceCount}</td>
        <td>${can ? html`<button type="button" class="danger small" onClick=${() => remove(s.name)}>Delete</button>` : null}</td>
      </tr>`)}</tbody>
    </table>
    ${can ? html`<p><button type="button" onClick=${() => navigate(`/deploy?application=${encodeURIComponent(app)}`)}>Deploy a server in ${app}</button></p>` : null}
    <h2>Application config</h2>
    <${ConfigPanel} session=${session} app=${app} />
  </section>`;
}
