/**
 * Canary publish in the admin UI (issue 17): the form's Canary section
 * (share of calls or a number of instances, bake time, thresholds, what to
 * do after the bake) and the canary block of a task (state, figures against
 * the thresholds, reason, Promote / Roll back for a person). The registry
 * judges and acts (registry/admin/canary.ts); empty fields take its
 * defaults (GET /api/canary/defaults), and it checks every option again.
 */
import { useState } from "preact/hooks";
import { ApiError, get, post } from "../api.js";
import { ErrorBanner, FieldError, useLoad } from "./common.js";
import { time } from "../format.js";
import { html } from "../html.js";

export interface CanaryDefaults {
  bakeS: number;
  maxErrorRateDelta: number;
  maxP99Ratio: number;
  minCalls: number;
  p99FloorMs: number;
  maxBakeS: number;
}

/** What the form holds: text as typed (empty = the registry's default). */
export interface CanaryForm {
  on: boolean;
  by: "percent" | "instances";
  share: string;
  bakeS: string;
  maxErrorRateDelta: string;
  maxP99Ratio: string;
  minCalls: string;
  hold: boolean;
}

/** The fields the Canary section shows errors of (the others go under the section). */
export const CANARY_FIELDS = ["canary.percent", "canary.instances", "canary.bakeS", "canary.maxErrorRateDelta", "canary.maxP99Ratio", "canary.minCalls"];

export const NO_CANARY: CanaryForm = { on: false, by: "percent", share: "10", bakeS: "", maxErrorRateDelta: "", maxP99Ratio: "", minCalls: "", hold: false };

export function useCanaryDefaults(): CanaryDefaults | undefined {
  return useLoad(() => get("/api/canary/defaults") as Promise<CanaryDefaults>, []).data;
}

function bad(field: string, message: string): ApiError {
  return new ApiError(400, "INVALID_ARGUMENT", message, `canary.${field}`);
}

/** A number typed in a field, or undefined when empty; an ApiError on the field for anything else or out of [min, max]. */
function numberIn(text: string, field: string, what: string, min: number, max: number, whole: boolean): number | undefined {
  const t = text.trim();
  if (t === "") return undefined;
  const v = Number(t);
  if (!Number.isFinite(v) || (whole && !Number.isInteger(v)) || v < min || v > max) {
    throw bad(field, `${what} must be ${whole ? "a whole number" : "a number"} from ${min} to ${max}, got ${JSON.stringify(t)}`);
  }
  return v;
}

/**
 * The request's `canary` (undefined when the section is off), checked as far
 * as the form alone can tell; how many instances the publish covers is the
 * registry's to check. Throws an ApiError naming the field.
 */
export function canaryRequest(f: CanaryForm, maxBakeS: number): Record<string, unknown> | undefined {
  if (!f.on) return undefined;
  const share = f.share.trim().replace(/\s*%$/, "");
  const v = Number(share);
  if (share === "" || !Number.isFinite(v)) throw bad(f.by, `canary share must be a number of ${f.by === "percent" ? "percent" : "instances"}, got ${JSON.stringify(f.share)}`);
  if (f.by === "percent" && !(v > 0 && v < 100)) {
    throw bad("percent", `canary share ${v} % is out of range: it must be over 0 % and under 100 % (100 % leaves no instance on the old version to compare with; publish without a canary)`);
  }
  if (f.by === "instances" && !(Number.isInteger(v) && v >= 1)) throw bad("instances", `a canary of instances must be a whole number of at least 1, got ${v}`);
  const bakeS = numberIn(f.bakeS, "bakeS", "bake time (s)", 1, maxBakeS, true);
  const maxErrorRateDelta = numberIn(f.maxErrorRateDelta, "maxErrorRateDelta", "max error-rate delta (points)", 0, 100, false);
  const maxP99Ratio = numberIn(f.maxP99Ratio, "maxP99Ratio", "max p99 ratio", 1, 1000, false);
  const minCalls = numberIn(f.minCalls, "minCalls", "minimum calls", 1, 1_000_000_000, true);
  return {
    percent: f.by === "percent" ? v : 0, instances: f.by === "instances" ? v : 0,
    bakeS: bakeS ?? 0, maxErrorRateDelta, maxP99Ratio: maxP99Ratio ?? 0, minCalls: minCalls ?? 0, hold: f.hold,
  };
}

/** The Canary section of the publish form. */
export function CanaryFields({ form, set, defaults, error }: { form: CanaryForm; set: (f: CanaryForm) => void; defaults: CanaryDefaults | undefined; error: unknown }) {
  const on = (patch: Partial<CanaryForm>) => set({ ...form, ...patch });
  const input = (name: keyof CanaryForm, label: string, placeholder: number | undefined, attrs: { step?: string; min?: string } = {}) => html`<label>${label}
    <input name=${`canary-${name}`} type="number" step=${attrs.step ?? "any"} min=${attrs.min ?? "0"} placeholder=${placeholder === undefined ? "" : String(placeholder)}
      value=${form[name] as string} onInput=${(e: any) => on({ [name]: e.currentTarget.value })} /></label>`;
  return html`<fieldset class="canary-fields"><legend><label class="inline"><input type="checkbox" name="canary" checked=${form.on} onChange=${(e: any) => on({ on: e.currentTarget.checked })} /> Canary first</label></legend>
    ${form.on ? html`<div class="row">
        <label>Share <input name="canary-share" type="number" step="any" min="0" value=${form.share} onInput=${(e: any) => on({ share: e.currentTarget.value })} /></label>
        <label>of <select name="canary-by" value=${form.by} onChange=${(e: any) => on({ by: e.currentTarget.value })}>
          <option value="percent">% of calls</option><option value="instances">instances</option></select></label>
        ${input("bakeS", "Bake time (s)", defaults?.bakeS, { step: "1", min: "1" })}
      </div>
      <${FieldError} error=${error} field="canary.percent" /><${FieldError} error=${error} field="canary.instances" /><${FieldError} error=${error} field="canary.bakeS" />
      <div class="row">
        ${input("maxErrorRateDelta", "Max error-rate delta (points)", defaults?.maxErrorRateDelta)}
        ${input("maxP99Ratio", "Max p99 ratio (×)", defaults?.maxP99Ratio, { min: "1" })}
        ${input("minCalls", "Min calls", defaults?.minCalls, { step: "1", min: "1" })}
      </div>
      <${FieldError} error=${error} field="canary.maxErrorRateDelta" /><${FieldError} error=${error} field="canary.maxP99Ratio" /><${FieldError} error=${error} field="canary.minCalls" />
      <div class="row"><label>After the bake <select name="canary-after" value=${form.hold ? "hold" : "auto"} onChange=${(e: any) => on({ hold: e.currentTarget.value === "hold" })}>
        <option value="auto">promote or roll back automatically</option><option value="hold">hold for a person to decide</option></select></label></div>
      <div class="muted" data-hint="canary">The new version first on that share of the calls (or that many instances), compared with the old version for the bake time.
        Empty fields take the registry's defaults${defaults ? ` (bake ${defaults.bakeS} s, error rate at most ${defaults.maxErrorRateDelta} points above the old version's, p99 at most ${defaults.maxP99Ratio}× (p99s up to ${defaults.p99FloorMs} ms never count as slow), judged after ${defaults.minCalls} calls)` : ""}.
        A bad canary is rolled back at once, whatever you choose here.</div>` : null}
  </fieldset>`;
}

const STATE_LABEL: Record<string, string> = { starting: "starting", baking: "baking", held: "held for a person", promoted: "promoted", rolled_back: "rolled back" };

function rate(errors: number, calls: number): string {
  return calls > 0 ? `${((100 * errors) / calls).toFixed(2)} %` : "—";
}

/** The canary of a publish task: state, figures against the thresholds, reason; Promote / Roll back while it can be decided. */
export function CanaryBlock({ task, can }: { task: any; can: boolean }) {
  const c = task.canary;
  const [error, setError] = useState<unknown>(undefined);
  const [sent, setSent] = useState("");
  if (!c) return null;
  const o = c.options ?? {};
  const decidable = can && (c.state === "baking" || c.state === "held") && !["success", "failed", "partial"].includes(task.status);
  const decide = async (action: "promote" | "rollback"): Promise<void> => {
    setError(undefined);
    try {
      await post(`/api/tasks/${task.id}/canary`, { action });
      setSent(action);
    } catch (err) {
      setError(err);
    }
  };
  const state = c.state === "baking" && c.bakeEndsAt ? `baking until ${time(c.bakeEndsAt)}` : (STATE_LABEL[c.state] ?? c.state);
  const share = o.instances ? `${o.instances} instance(s)` : `${o.percent} % of calls asked`;
  const ids: number[] = c.instanceIds ?? [];
  return html`<div class="card canary" data-canary-state=${c.state}>
    <h3>Canary <span class=${`badge badge-canary-${c.state}`}>${state}</span></h3>
    <div>Instance(s) ${ids.join(", ")}: ${share}, ${(100 * (c.share ?? 0)).toFixed(1)} % of calls by the weights; bake ${o.bakeS} s${c.bakeStartedAt ? ` from ${time(c.bakeStartedAt)}` : ""}; ${o.hold ? "held for a person after the bake" : "promoted or rolled back automatically"}.</div>
    <table class="grid canary-figures">
      <thead><tr><th></th><th>Calls</th><th>Errors</th><th>Error rate</th><th>p99</th></tr></thead>
      <tbody>
        <tr data-row="canary"><td>Canary (new version)</td><td class="calls">${c.canaryCalls ?? 0}</td><td>${c.canaryErrors ?? 0}</td><td class="rate">${rate(c.canaryErrors ?? 0, c.canaryCalls ?? 0)}</td><td class="p99">${c.canaryP99Ms ?? 0} ms</td></tr>
        <tr data-row="baseline"><td>Old version</td><td class="calls">${c.baselineCalls ?? 0}</td><td>${c.baselineErrors ?? 0}</td><td class="rate">${rate(c.baselineErrors ?? 0, c.baselineCalls ?? 0)}</td><td class="p99">${c.baselineP99Ms ?? 0} ms</td></tr>
        <tr data-row="thresholds" class="muted"><td>Thresholds</td><td>judged after ${o.minCalls}</td><td></td><td>at most ${o.maxErrorRateDelta ?? 0} points above the old version's</td><td>at most ${o.maxP99Ratio}× the old version's (over ${o.p99FloorMs} ms)</td></tr>
      </tbody>
    </table>
    ${c.reason ? html`<div class="canary-reason"><b>${c.state === "rolled_back" ? "Rolled back: " : "Why: "}</b>${c.reason}</div>` : null}
    ${c.decidedBy ? html`<div class="muted" data-decided-by>Decided by ${c.decidedBy}.</div>` : null}
    ${c.rollbackTaskId ? html`<div>Rollback: <a href=${`/tasks/${c.rollbackTaskId}`}>task ${c.rollbackTaskId}</a></div>` : null}
    ${decidable ? html`<div class="row canary-decide">
      <button type="button" name="canary-promote" disabled=${sent !== ""} onClick=${() => decide("promote")}>Promote</button>
      <button type="button" name="canary-rollback" class="danger" disabled=${sent !== ""} onClick=${() => confirm("Roll the canary back to the previous version?") && decide("rollback")}>Roll back</button>
      ${sent ? html`<span class="muted" data-sent=${sent}>${sent === "promote" ? "Promoting…" : "Rolling back…"} (the registry acts at its next check)</span>` : null}
    </div>` : null}
    <${ErrorBanner} error=${error} />
  </div>`;
}
