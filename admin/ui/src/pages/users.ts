/** Users and their roles per application (admins only; the registry enforces it). */
import { useState } from "preact/hooks";
import { del, get, post, put, type Session } from "../api.js";
import { ErrorBanner, FieldError, isFieldError, useLoad } from "../components/common.js";
import { time } from "../format.js";
import { html } from "../html.js";

export function UsersPage({ session: _session }: { session: Session }) {
  const { data, error, reload } = useLoad(() => get("/api/users"), []);
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [app, setApp] = useState("*");
  const [role, setRole] = useState("viewer");
  const [formError, setFormError] = useState<unknown>(undefined);
  const create = async (e: Event): Promise<void> => {
    e.preventDefault();
    setFormError(undefined);
    try {
      await post("/api/users", { name, password, roles: [{ application: app, role }] });
      setName("");
      setPassword("");
      reload();
    } catch (err) {
      setFormError(err);
    }
  };
  const act = async (fn: () => Promise<unknown>): Promise<void> => {
    setFormError(undefined);
    try {
      await fn();
      reload();
    } catch (err) {
      setFormError(err);
    }
  };
  const users: any[] = data?.users ?? [];
  return html`<section>
    <h1>Users</h1>
    <${ErrorBanner} error=${error ?? (isFieldError(formError, ["name", "password", "roles"]) ? undefined : formError)} />
    <table class="grid users">
      <thead><tr><th>User</th><th>Roles</th><th>Created</th><th></th></tr></thead>
      <tbody>${users.map((u) => html`<tr key=${u.name}>
        <td>${u.name}</td>
        <td>${(u.roles ?? []).map((g: any) => html`<span class="grant">${g.role} on ${g.application}
          <button type="button" class="link" title="revoke" onClick=${() => act(() => del(`/api/users/${encodeURIComponent(u.name)}/grants/${encodeURIComponent(g.application)}`))}>×</button></span> `)}</td>
        <td>${time(u.createdAt)}</td>
        <td class="btns">
          <button type="button" class="small" onClick=${() => { const p = prompt(`New password for ${u.name}`); if (p) void act(() => put(`/api/users/${encodeURIComponent(u.name)}/password`, { password: p })); }}>Set password</button>
          <button type="button" class="small" onClick=${() => { const a = prompt("Application (or *)", "*"); const r = a && prompt("Role: admin, operator or viewer", "viewer"); if (a && r) void act(() => post(`/api/users/${encodeURIComponent(u.name)}/grants`, { application: a, role: r })); }}>Grant</button>
          <button type="button" class="small danger" onClick=${() => confirm(`Delete user ${u.name}?`) && act(() => del(`/api/users/${encodeURIComponent(u.name)}`))}>Delete</button>
        </td>
      </tr>`)}</tbody>
    </table>
    <form class="card" onSubmit=${create} aria-label="new user">
      <h3>New user</h3>
      <div class="row">
        <label>Name <input name="name" value=${name} onInput=${(e: any) => setName(e.currentTarget.value)} /></label>
        <label>Password <input name="password" type="password" autocomplete="new-password" value=${password} onInput=${(e: any) => setPassword(e.currentTarget.value)} /></label>
        <label>Application <input name="application" value=${app} onInput=${(e: any) => setApp(e.currentTarget.value)} /></label>
        <label>Role <select name="role" value=${role} onChange=${(e: any) => setRole(e.currentTarget.value)}>
          <option value="viewer">viewer</option><option value="operator">operator</option><option value="admin">admin</option></select></label>
        <button type="submit">Create</button>
      </div>
      <${FieldError} error=${formError} field="name" /><${FieldError} error=${formError} field="password" /><${FieldError} error=${formError} field="roles" />
    </form>
  </section>`;
}
