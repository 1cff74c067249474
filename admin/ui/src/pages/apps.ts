/** Overview (every application and its servers) and one application's page. */
import { useState } from "preact/hooks";
import { del, get, mayChange, qs, type Session } from "../api.js";
import { ErrorBanner, useLoad } from "../components/common.js";
import { ConfigPanel } from "../components/config-panel.js";
import { time } from "../format.js";
import { html } from "../html.js";
import { navigate } from "../router.js";

function ServerTable({ servers, session }: { servers: any[]; session: Session }) {
  if (servers.length === 0) return html`<p class="muted">No servers yet. <a href="/deploy">Deploy one.</a></p>`;
  return html`<table class="grid">
    <thead><tr><th>Application</th><th>Server</th><th>Type</th><th>Default version</th><th>Instances</th><th>Created</th></tr></thead>
    <tbody>${servers.map((s) => html`<tr key=${s.application + "." + s.name}>
      <td><a href=${`/apps/${encodeURIComponent(s.application)}`}>${s.application}</a></td>
      <td><a href=${`/apps/${encodeURIComponent(s.application)}/${encodeURIComponent(s.name)}`}>${s.name}</a></td>
      <td>${s.type}</td><td>${s.defaultVersion || "—"}</td><td>${s.instanceCount}</td>
      <td class="time">${time(s.createdAt)}</td>
    </tr>`)}</tbody>
  </table>
  ${servers.some((s) => mayChange(session, s.application)) ? null : html`<p class="muted">You have read-only access.</p>`}`;
}

export function HomePage({ session }: { session: Session }) {
  const { data, error } = useLoad(() => get("/api/servers"), [], 10000);
  return html`<section>
    <h1>Servers</h1>
    <${ErrorBanner} error=${error} />
    ${data ? html`<${ServerTable} servers=${data.servers} session=${session} />` : html`<p class="muted">Loading…</p>`}
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
