/** Small shared pieces: error banners, field errors, polling. */
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError, DEGRADED_EVENT, degradedState, type Degraded } from "../api.js";
import { time } from "../format.js";
import { html } from "../html.js";

export function ErrorBanner({ error }: { error: unknown }) {
  if (!error) return null;
  const msg = error instanceof Error ? error.message : String(error);
  const code = error instanceof ApiError ? error.code : "";
  return html`<div class="error" role="alert" data-code=${code}>${msg}</div>`;
}

/** The message of `error` when it is about `field`, shown under that field. */
export function FieldError({ error, field }: { error: unknown; field: string }) {
  if (!(error instanceof ApiError) || !error.field) return null;
  if (error.field !== field && !error.field.startsWith(field + ".")) return null;
  return html`<div class="field-error" role="alert" data-field=${field}>${error.message}</div>`;
}

/** True when `error` is a field error (shown next to its field, not in a banner). */
export function isFieldError(error: unknown, fields: string[]): boolean {
  return error instanceof ApiError && !!error.field && fields.some((f) => error.field === f || error.field!.startsWith(f + "."));
}

/**
 * Loads `fn()` now and every `everyMs` (0 = once); `reload()` loads again at once.
 * Keeps the last good value while a reload fails (the error is returned beside it).
 */
export function useLoad<T>(fn: () => Promise<T>, deps: unknown[], everyMs = 0): { data: T | undefined; error: unknown; reload: () => void } {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const seq = useRef(0);
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const reload = useCallback(() => {
    const mine = ++seq.current;
    fnRef.current().then(
      (d) => {
        if (mine === seq.current) {
          setData(d);
          setError(undefined);
        }
      },
      (e) => {
        if (mine === seq.current) setError(e);
      },
    );
  }, []);
  useEffect(() => {
    setData(undefined);
    reload();
    if (!everyMs) return undefined;
    const t = setInterval(reload, everyMs);
    return () => clearInterval(t);
  }, deps);
  return { data, error, reload };
}

export function StatusBadge({ value }: { value: string }) {
  const v = (value || "unknown").toLowerCase();
  return html`<span class=${`badge badge-${v.replace(/[^a-z_]/g, "")}`}>${v}</span>`;
}

/** Degraded mode as the page knows it (api.ts), re-rendering when it changes. */
export function useDegraded(): Degraded | undefined {
  const [state, setState] = useState<Degraded | undefined>(degradedState());
  useEffect(() => {
    const on = (): void => setState(degradedState());
    window.addEventListener(DEGRADED_EVENT, on);
    on();
    return () => window.removeEventListener(DEGRADED_EVENT, on);
  }, []);
  return state;
}

/** The banner of degraded mode: what is shown comes from the registry's memory, and changes are disabled. */
export function DegradedBanner({ state }: { state: Degraded | undefined }) {
  if (!state) return null;
  const what = state.asOf
    ? `database unavailable: showing the registry's memory as of ${time(state.asOf)}; changes are disabled`
    : "database unavailable: changes are disabled";
  return html`<div class="degraded" role="alert" data-as-of=${state.asOf}>
    <strong>${what}</strong>
    ${state.reason ? html`<div class="degraded-reason">${state.reason}</div>` : null}
  </div>`;
}
