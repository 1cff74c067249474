/** One instance: its settings and state, an admin command with its reply, and its log (stdout, stderr). */
import { useState } from "preact/hooks";
import { get, mayChange, post, qs, type Session } from "../api.js";
import { ErrorBanner, StatusBadge, useLoad } from "../components/common.js";
import { InstanceEdit } from "../components/instance-edit.js";
import { LogPanel } from "../components/log-panel.js";
import { bytes, duration, time } from "../format.js";
import { html } from "../html.js";

export function InstancePage({ session, app, server, id }: { session: Session; app: string; server: string; id: number }) {
  const can = mayChange(session, app);
  const { data, error, reload } = useLoad(() => get(`/api/instances${qs({ application: app, server })}`), [app, server, id], 3000);
  const inst = (data?.instances ?? []).find((i: any) => i.id === id);
  // What happened to this instance: crashes, OOM kills, failures (events of its server on its node).
  const events = useLoad(() => (inst ? get(`/api/events${qs({ targetPrefix: `${app}.${server}@${inst.node}`, limit: 50 })}`) : Promise.resolve({ events: [] })), [app, server, inst?.node], 5000);
  const mine = ((events.data?.events ?? []) as any[]).filter((e) => e.kind.startsWith("instance.") && RESOURCE_KINDS.has(e.kind) && [undefined, id].includes(dataOf(e).instanceId as number | undefined));
  const [command, setCommand] = useState("sgrid.viewstatus");
  const [args, setArgs] = useState("");
  const [reply, setReply] = useState<string | undefined>(undefined);
  const [actionError, setActionError] = useState<unknown>(undefined);
  const send = async (e: Event): Promise<void> => {
    e.preventDefault();
    setActionError(undefined);
    setReply(undefined);
    try {
      setReply((await post(`/api/instances/${id}/command`, { command, args })).output);
    } catch (err) {
      setActionError(err);
    }
  };
  const base = `/apps/${encodeURIComponent(app)}/${encodeURIComponent(server)}`;
  return html`<section>
    <h1><a href=${base}>${app}.${server}</a> #${id}</h1>
    <${ErrorBanner} error=${error} />
    ${inst ? html`<dl class="facts">
      <dt>Node</dt><dd>${inst.node}</dd>
      <dt>Desired</dt><dd><${StatusBadge} value=${inst.desiredState} /> ${inst.desiredVersion ? `v${inst.desiredVersion}` : ""}</dd>
      <dt>Observed</dt><dd><${StatusBadge} value=${inst.observedState} /> ${inst.observedVersion ? `v${inst.observedVersion}` : ""} (${time(inst.observedAt)})</dd>
      <dt>Pid</dt><dd>${inst.pid || "—"}</dd>
      <dt>Uptime</dt><dd>${inst.startedAt ? duration(inst.startedAt) : "—"}</dd>
      <dt>Restarts</dt><dd>${inst.restarts}</dd>
      <dt>Last exit</dt><dd>${inst.lastExitReason || "—"}</dd>
      <dt>Memory</dt><dd>${bytes(inst.memoryBytes)}${inst.limits?.memoryBytes ? ` / ${bytes(inst.limits.memoryBytes)}` : ""}</dd>
      <dt>CPU</dt><dd>${(inst.cpuCoresUsed ?? 0).toFixed(2)}${inst.limits?.cpuCores ? ` / ${inst.limits.cpuCores}` : ""} cores</dd>
      <dt>Adapters</dt><dd>${(inst.adapters ?? []).map((a: any) => `${a.obj} ${a.host}:${a.port} (${a.protocol || "grpc"})`).join(", ")}</dd>
      <dt>Env</dt><dd><code>${Object.entries(inst.env ?? {}).map(([k, v]) => `${k}=${v}`).join(" ")}</code></dd>
      <dt>Launch</dt><dd>${launchText(inst.launch)}</dd>
    </dl>` : html`<p class="muted">Loading…</p>`}
    ${can && inst ? html`<${InstanceEdit} inst=${inst} onSaved=${reload} />` : null}
    <div class="card" aria-label="instance events">
      <h3>Events</h3>
      <${ErrorBanner} error=${events.error} />
      ${mine.length === 0 ? (!events.data || events.error ? null : html`<p class="muted">No crash, OOM kill or failure recorded.</p>`) : html`<table class="grid events">
        <thead><tr><th>Time</th><th>Kind</th><th>Message</th></tr></thead>
        <tbody>${mine.map((e) => html`<tr key=${e.id} data-kind=${e.kind}><td>${time(e.time)}</td><td>${LIMIT_BADGES[e.kind] ? html`<span class="badge badge-failed">${LIMIT_BADGES[e.kind]}</span>` : e.kind}</td><td>${e.message}</td></tr>`)}</tbody>
      </table>`}
    </div>
    <${ErrorBanner} error=${actionError} />
    ${can ? html`<form class="card" onSubmit=${send} aria-label="admin command">
      <h3>Admin command</h3>
      <div class="row">
        <input name="command" value=${command} onInput=${(e: any) => setCommand(e.currentTarget.value)} list="commands" />
        <datalist id="commands"><option value="sgrid.viewstatus" /><option value="sgrid.setloglevel" /><option value="sgrid.loadconfig" /></datalist>
        <input name="args" placeholder="arguments" value=${args} onInput=${(e: any) => setArgs(e.currentTarget.value)} />
        <button type="submit">Send</button>
      </div>
      ${reply !== undefined ? html`<pre class="reply" aria-label="command reply">${reply}</pre>` : null}
    </form>` : null}
    ${can ? html`<${LogPanel} id=${id} />` : null}
  </section>`;
}

/** The launch options that are set, each argument quoted so spaces inside one stay visible. */
function launchText(l: any): string {
  if (!l) return "—";
  const q = (xs: string[] | undefined): string => (xs ?? []).map((x) => JSON.stringify(x)).join(" ");
  const parts = [
    l.entry ? `entry ${l.entry}` : "",
    l.args?.length ? `args ${q(l.args)}` : "",
    l.jvmOptions?.length ? `JVM ${q(l.jvmOptions)}` : "",
    l.nodeOptions?.length ? `node ${q(l.nodeOptions)}` : "",
    l.runAsUser ? `as ${l.runAsUser}` : "",
  ].filter(Boolean);
  return parts.length ? parts.join("; ") : "defaults";
}

/** Events about what happened to the process (not what people did to it). */
const RESOURCE_KINDS = new Set([
  "instance.crash", "instance.oom", "instance.pids_limit", "instance.cpu_throttled", "instance.failed", "instance.keepalive", "instance.install_failed",
]);

/** Badges of the resource-limit events. */
const LIMIT_BADGES: Record<string, string> = {
  "instance.oom": "memory limit (OOM)",
  "instance.pids_limit": "pids limit",
  "instance.cpu_throttled": "CPU quota (throttled)",
};

/** An event's data (sent as JSON text). */
function dataOf(e: any): Record<string, unknown> {
  try {
    return JSON.parse(e.dataJson || "{}") as Record<string, unknown>;
  } catch {
    return {};
  }
}
