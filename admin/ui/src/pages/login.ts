/** The login page (the only page reachable without a session). */
import { useState } from "preact/hooks";
import { ApiError, post, type Session } from "../api.js";
import { html } from "../html.js";

export function LoginPage({ onLogin }: { onLogin: (s: Session) => void }) {
  const [user, setUser] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<ApiError | Error | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      onLogin(await post<Session>("/api/login", { user, password }));
    } catch (err) {
      setError(err as Error);
    } finally {
      setBusy(false);
    }
  };
  return html`<div class="login">
    <form class="card" onSubmit=${submit} aria-label="login">
      <h1>Sgrid admin</h1>
      <label>User <input name="user" autocomplete="username" value=${user} onInput=${(e: any) => setUser(e.currentTarget.value)} required /></label>
      <label>Password <input name="password" type="password" autocomplete="current-password" value=${password}
        onInput=${(e: any) => setPassword(e.currentTarget.value)} required /></label>
      ${error ? html`<div class="error" role="alert">${error.message}</div>` : null}
      <button type="submit" disabled=${busy}>${busy ? "Logging in…" : "Log in"}</button>
    </form>
  </div>`;
}
