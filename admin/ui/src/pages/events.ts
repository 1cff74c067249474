/** The event log: who did what, when, with what result. */
import { useState } from "preact/hooks";
import { get, qs, type Session } from "../api.js";
import { ErrorBanner, useLoad } from "../components/common.js";
import { time } from "../format.js";
import { html } from "../html.js";

export function EventsPage({ session }: { session: Session }) {
  // Someone granted on some applications only may list only theirs: start with the first.
  const own = session.roles.some((g) => g.application === "*") ? "" : (session.roles[0]?.application ?? "");
  const [kind, setKind] = useState("");
  const [target, setTarget] = useState(own);
  const [actor, setActor] = useState("");
  const { data, error } = useLoad(() => get(`/api/events${qs({ kind, targetPrefix: target, actor, limit: 200 })}`), [kind, target, actor], 5000);
  const events: any[] = data?.events ?? [];
  return html`<section>
    <h1>Events</h1>
    <div class="row">
      <input name="kind" placeholder="kind" value=${kind} onChange=${(e: any) => setKind(e.currentTarget.value)} />
      <input name="target" placeholder="target prefix (Demo.HelloServer)" value=${target} onChange=${(e: any) => setTarget(e.currentTarget.value)} />
      <input name="actor" placeholder="who" value=${actor} onChange=${(e: any) => setActor(e.currentTarget.value)} />
    </div>
    <${ErrorBanner} error=${error} />
    <table class="grid events">
      <thead><tr><th>Time</th><th>Who</th><th>Kind</th><th>Target</th><th>Message</th></tr></thead>
      <tbody>${events.map((e) => html`<tr key=${e.id}><td>${time(e.time)}</td><td>${e.actor}</td><td>${e.kind}</td><td>${e.target}</td><td>${e.message}</td></tr>`)}</tbody>
    </table>
    ${events.length === 0 && data ? html`<p class="muted">No events.</p>` : null}
  </section>`;
}
