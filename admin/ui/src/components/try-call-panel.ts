/**
 * "Try a call" on one server: choose an Obj and a method (from the
 * servant's server reflection, GET /api/try/methods), edit the request as
 * JSON (prefilled with the message's defaults), send it (POST /api/try/call)
 * and see the status, reply (or stream messages), headers, trailers and
 * latency. Operator on the application; every call is in the event log.
 */
import { useEffect, useState } from "preact/hooks";
import { ApiError, get, mayChange, post, qs, type Session } from "../api.js";
import { html } from "../html.js";
import { ErrorBanner, FieldError, isFieldError, useLoad } from "./common.js";

const STREAM_IN = new Set(["client_stream", "bidi"]);

function fullObj(app: string, server: string, obj: string): string {
  return obj.split(".").length === 3 ? obj : `${app}.${server}.${obj}`;
}

function skeletonText(m: any): string {
  const one = m?.skeleton ?? {};
  return JSON.stringify(STREAM_IN.has(m?.kind) ? [one] : one, null, 2);
}

function Metadata({ label, values }: { label: string; values: Record<string, string> }) {
  const entries = Object.entries(values ?? {});
  return html`<div class=${`try-${label.toLowerCase()}`}><h3>${label}</h3>
    ${entries.length === 0 ? html`<p class="muted">none</p>` : html`<table class="grid"><tbody>${entries.map(([k, v]) => html`<tr key=${k}><td>${k}</td><td>${v}</td></tr>`)}</tbody></table>`}
  </div>`;
}

function Result({ result }: { result: any }) {
  const ok = result.status.name === "OK";
  const shown = result.messages !== undefined ? result.messages : result.reply;
  return html`<div class="card try-result" aria-label="call result">
    <p class=${`try-status ${ok ? "health-ok" : "health-bad"}`} data-status=${result.status.name}>
      <strong>${result.status.name}</strong>${result.status.code !== result.status.name && result.status.code !== "OK" ? ` (${result.status.code})` : ""}${result.status.message ? `: ${result.status.message}` : ""}
      <span class="muted"> — ${result.latencyMs.toFixed(1)} ms via ${result.endpoint}</span></p>
    ${result.messages !== undefined ? html`<p class="muted">${result.messages.length} message(s)${result.truncated ? " — only the first ones are shown; the call was cancelled after them" : ""}</p>` : null}
    ${ok || (result.messages?.length ?? 0) > 0 ? html`<h3>Reply</h3><pre class="try-reply">${JSON.stringify(shown, null, 2)}</pre>` : null}
    <div class="row"><${Metadata} label="Headers" values=${result.headers} /><${Metadata} label="Trailers" values=${result.trailers} /></div>
  </div>`;
}

export function TryCallPanel({ session, app, server, instances }: { session: Session; app: string; server: string; instances: any[] }) {
  const objs = [...new Set(instances.flatMap((i) => (i.adapters ?? []).map((a: any) => fullObj(app, server, a.obj))))].sort();
  const [obj, setObj] = useState<string>("");
  const chosenObj = obj || objs[0] || "";
  const can = mayChange(session, app);
  const methods = useLoad(() => (chosenObj && can ? get(`/api/try/methods${qs({ obj: chosenObj })}`) : Promise.resolve(undefined)), [chosenObj, can]);
  const all: any[] = (methods.data?.services ?? []).flatMap((s: any) => s.methods);
  const [method, setMethod] = useState<string>("");
  const m = all.find((x) => x.fullName === method) ?? all[0];
  const [text, setText] = useState("");
  const [timeoutMs, setTimeoutMs] = useState(5000);
  const [result, setResult] = useState<any>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  useEffect(() => setText(skeletonText(m)), [m?.fullName, chosenObj]);

  if (!can) return html`<p class="muted" data-readonly="try">Trying calls needs the operator role on ${app}.</p>`;
  if (objs.length === 0) return html`<p class="muted">This server has no Obj deployed yet.</p>`;
  const send = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(undefined);
    setResult(undefined);
    let request: unknown;
    try {
      request = JSON.parse(text);
    } catch (err) {
      setError(new ApiError(400, "INVALID_ARGUMENT", `request is not JSON: ${(err as Error).message}`, "request"));
      return;
    }
    setBusy(true);
    try {
      setResult(await post("/api/try/call", { obj: chosenObj, method: m.fullName, request, timeoutMs }));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const fields = ["request", "timeoutMs", "method"];
  return html`<div class="try-call">
    <form class="card" aria-label="try a call" onSubmit=${send}>
      <div class="row">
        <label>Obj <select name="obj" value=${chosenObj} onChange=${(e: any) => { setObj(e.currentTarget.value); setMethod(""); setResult(undefined); }}>
          ${objs.map((o) => html`<option value=${o}>${o}</option>`)}</select></label>
        <label>Method <select name="method" value=${m?.fullName ?? ""} onChange=${(e: any) => { setMethod(e.currentTarget.value); setResult(undefined); }}>
          ${(methods.data?.services ?? []).map((s: any) => html`<optgroup label=${s.name}>${s.methods.map((x: any) => html`<option value=${x.fullName}>${x.name} (${x.kind.replace("_", " ")})</option>`)}</optgroup>`)}
        </select></label>
        <label>Timeout (ms, at most 60000) <input type="number" name="timeoutMs" min="1" max="60000" value=${timeoutMs} onInput=${(e: any) => setTimeoutMs(Number(e.currentTarget.value))} /></label>
      </div>
      <${ErrorBanner} error=${methods.error} />
      ${m ? html`<p class="muted">${m.requestType} → ${m.responseType}${STREAM_IN.has(m.kind) ? "; a stream of requests: a JSON array" : ""}</p>` : null}
      <label>Request (JSON)
        <textarea name="request" rows="10" spellcheck="false" value=${text} onInput=${(e: any) => setText(e.currentTarget.value)}></textarea></label>
      <${FieldError} error=${error} field="request" />
      <${FieldError} error=${error} field="timeoutMs" />
      <${ErrorBanner} error=${isFieldError(error, fields) ? undefined : error} />
      <div class="row"><button type="submit" disabled=${!m || busy}>${busy ? "Calling…" : "Send"}</button>
        <span class="muted">Each call is written to the event log (who, method, status, latency; not the request or reply).</span></div>
    </form>
    ${result ? html`<${Result} result=${result} />` : null}
  </div>`;
}

