/**
 * The admin page: session, shell (top navigation, application -> server
 * tree) and routes. Every view talks to /api only.
 */
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { CHANGED_EVENT, get, isAdmin, post, setCsrfToken, setUnauthenticatedHandler, type Session } from "./api.js";
import { DegradedBanner, useDegraded, useLoad } from "./components/common.js";
import { html } from "./html.js";
import { match, navigate, useLocation } from "./router.js";
import { LoginPage } from "./pages/login.js";
import { AppPage, HomePage } from "./pages/apps.js";
import { ServerPage } from "./pages/server.js";
import { InstancePage } from "./pages/instance.js";
import { DeployPage } from "./pages/deploy.js";
import { TaskPage, TasksPage } from "./pages/tasks.js";
import { NodesPage } from "./pages/nodes.js";
import { EventsPage } from "./pages/events.js";
import { UsersPage } from "./pages/users.js";

function Tree({ path }: { path: string }) {
  const { data, reload } = useLoad(() => get("/api/servers"), [], 10000);
  // A deploy or a delete from any page shows here at once, not at the next poll.
  useEffect(() => {
    window.addEventListener(CHANGED_EVENT, reload);
    return () => window.removeEventListener(CHANGED_EVENT, reload);
  }, [reload]);
  const servers: any[] = data?.servers ?? [];
  const apps: string[] = data?.applications ?? [...new Set(servers.map((s) => s.application))];
  return html`<nav class="tree" aria-label="applications">
    <div class="tree-title">Applications</div>
    ${apps.length === 0 ? html`<div class="muted">none yet</div>` : null}
    <ul>${apps.map((app) => html`<li key=${app}>
      <a href=${`/apps/${encodeURIComponent(app)}`} class=${path === `/apps/${app}` ? "active" : ""}>${app}</a>
      <ul>${servers.filter((s) => s.application === app).map((s) => {
        const href = `/apps/${encodeURIComponent(app)}/${encodeURIComponent(s.name)}`;
        return html`<li key=${s.name}><a href=${href} class=${path.startsWith(href) ? "active" : ""}>${s.name}</a></li>`;
      })}</ul>
    </li>`)}</ul>
  </nav>`;
}

function Shell({ session, onLogout }: { session: Session; onLogout: () => void }) {
  const { path, query } = useLocation();
  let page;
  let m;
  if (path === "/" || path === "") page = html`<${HomePage} session=${session} />`;
  else if ((m = match("/apps/:app", path))) page = html`<${AppPage} session=${session} app=${m.app} />`;
  else if ((m = match("/apps/:app/:server", path))) page = html`<${ServerPage} session=${session} app=${m.app} server=${m.server} tab=${query.get("tab") ?? "instances"} />`;
  else if ((m = match("/apps/:app/:server/instances/:id", path))) page = html`<${InstancePage} session=${session} app=${m.app} server=${m.server} id=${Number(m.id)} />`;
  else if (path === "/deploy") page = html`<${DeployPage} session=${session} />`;
  else if (path === "/tasks") page = html`<${TasksPage} session=${session} />`;
  else if ((m = match("/tasks/:id", path))) page = html`<${TaskPage} session=${session} id=${Number(m.id)} />`;
  else if (path === "/nodes") page = html`<${NodesPage} session=${session} />`;
  else if (path === "/events") page = html`<${EventsPage} session=${session} />`;
  else if (path === "/users") page = html`<${UsersPage} session=${session} />`;
  else page = html`<div><h1>Not found</h1><p>No page at ${path}.</p></div>`;
  const degraded = useDegraded();
  const nav = (href: string, label: string) =>
    html`<a href=${href} class=${path === href || (href !== "/" && path.startsWith(href)) ? "active" : ""}>${label}</a>`;
  return html`<div class="shell">
    <header class="top">
      <a href="/" class="brand">Sgrid</a>
      <nav class="main-nav" aria-label="main">
        ${nav("/", "Servers")} ${nav("/deploy", "Deploy")} ${nav("/tasks", "Tasks")} ${nav("/nodes", "Nodes")} ${nav("/events", "Events")}
        ${isAdmin(session) ? nav("/users", "Users") : null}
      </nav>
      <span class="who">${session.user}</span>
      <button type="button" class="link" onClick=${onLogout}>Log out</button>
    </header>
    <div class="body">
      <${Tree} path=${path} />
      <main>
        <${DegradedBanner} state=${degraded} />
        <fieldset class="page-lock" disabled=${degraded !== undefined}>${page}</fieldset>
      </main>
    </div>
  </div>`;
}

function App() {
  const { path, query } = useLocation();
  const [session, setSession] = useState<Session | undefined>(undefined);
  const [checked, setChecked] = useState(false);

  useEffect(() => {
    setUnauthenticatedHandler(() => {
      setSession(undefined);
      if (location.pathname !== "/login") navigate(`/login?next=${encodeURIComponent(location.pathname + location.search)}`, true);
    });
    get<Session>("/api/session").then(
      (s) => {
        setCsrfToken(s.csrfToken);
        setSession(s);
        setChecked(true);
      },
      () => setChecked(true),
    );
  }, []);

  if (!checked) return html`<p class="boot">Loading…</p>`;
  if (path === "/login" || !session) {
    return html`<${LoginPage} onLogin=${(s: Session) => {
      setCsrfToken(s.csrfToken);
      setSession(s);
      const next = query.get("next");
      navigate(next && next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/login") ? next : "/", true);
    }} />`;
  }
  const logout = (): void => {
    void post("/api/logout").finally(() => {
      setSession(undefined);
      setCsrfToken("");
      navigate("/login", true);
    });
  };
  return html`<${Shell} session=${session} onLogout=${logout} />`;
}

render(html`<${App} />`, document.getElementById("app")!);
