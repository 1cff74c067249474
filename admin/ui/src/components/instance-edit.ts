/**
 * Edit an instance's env, limits and launch arguments (PATCH
 * /api/instances/:id: the fields sent replace the instance's). The agent
 * applies the change on its next reconcile; a running process gets the new
 * env and arguments when it restarts.
 */
import { useState } from "preact/hooks";
import { patch } from "../api.js";
import { lines, num, parseEnv } from "../forms.js";
import { html } from "../html.js";
import { ErrorBanner, FieldError, isFieldError } from "./common.js";

export function InstanceEdit({ inst, onSaved }: { inst: any; onSaved: () => void }) {
  const [open, setOpen] = useState(false);
  const [envText, setEnvText] = useState("");
  const [memoryMiB, setMemoryMiB] = useState("");
  const [cpuCores, setCpuCores] = useState("");
  const [pids, setPids] = useState("");
  const [argsText, setArgsText] = useState("");
  const [error, setError] = useState<unknown>(undefined);
  const [saved, setSaved] = useState(false);
  const start = (): void => {
    setEnvText(Object.entries(inst.env ?? {}).map(([k, v]) => `${k}=${v}`).join("\n"));
    const l = inst.limits ?? {};
    setMemoryMiB(l.memoryBytes ? String(Math.round(l.memoryBytes / 1024 / 1024)) : "");
    setCpuCores(l.cpuCores ? String(l.cpuCores) : "");
    setPids(l.pids ? String(l.pids) : "");
    setArgsText((inst.launch?.args ?? []).join("\n"));
    setError(undefined);
    setSaved(false);
    setOpen(true);
  };
  const save = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(undefined);
    try {
      await patch(`/api/instances/${inst.id}`, {
        env: parseEnv(envText),
        limits: { memoryBytes: Math.round(num(memoryMiB) * 1024 * 1024), cpuCores: num(cpuCores), pids: num(pids) },
        launch: { ...(inst.launch ?? {}), args: lines(argsText) },
      });
      setSaved(true);
      setOpen(false);
      onSaved();
    } catch (err) {
      setError(err);
    }
  };
  if (!open) {
    return html`<div class="actions"><button type="button" class="secondary" onClick=${start}>Edit instance</button>
      ${saved ? html`<span class="ok" role="status"> saved; the node applies it (env and arguments at the next restart)</span>` : null}</div>`;
  }
  return html`<form class="card" onSubmit=${save} aria-label="edit instance">
    <h3>Edit instance #${inst.id}</h3>
    <label>Environment (NAME=value per line) <textarea name="env" rows="3" value=${envText} onInput=${(e: any) => setEnvText(e.currentTarget.value)}></textarea></label>
    <${FieldError} error=${error} field="env" />
    <div class="row">
      <label>Memory MiB (empty = unlimited) <input name="memoryMiB" type="number" min="0" value=${memoryMiB} onInput=${(e: any) => setMemoryMiB(e.currentTarget.value)} /></label>
      <label>CPU cores <input name="cpuCores" type="number" min="0" step="0.1" value=${cpuCores} onInput=${(e: any) => setCpuCores(e.currentTarget.value)} /></label>
      <label>Pids <input name="pids" type="number" min="0" value=${pids} onInput=${(e: any) => setPids(e.currentTarget.value)} /></label>
    </div>
    <${FieldError} error=${error} field="limits" />
    <label>Arguments, one per line <textarea name="launchArgs" rows="2" value=${argsText} onInput=${(e: any) => setArgsText(e.currentTarget.value)}></textarea></label>
    <${FieldError} error=${error} field="launch" />
    <${ErrorBanner} error=${isFieldError(error, ["env", "limits", "launch"]) ? undefined : error} />
    <div class="btns"><button type="submit">Save</button><button type="button" class="secondary" onClick=${() => setOpen(false)}>Cancel</button></div>
  </form>`;
}
