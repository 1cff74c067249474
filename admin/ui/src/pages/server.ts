/**
 * One server: instances (state, usage, start/stop/restart), patch versions
 * (upload with progress, default, delete), publish, config and its tasks.
 */
import { useRef, useState } from "preact/hooks";
import { ApiError, del, get, mayChange, post, put, qs, uploadPackage, type Session } from "../api.js";
import { CANARY_FIELDS, CanaryFields, NO_CANARY, canaryRequest, useCanaryDefaults, type CanaryForm } from "../components/canary.js";
import { ErrorBanner, FieldError, StatusBadge, isFieldError, useLoad } from "../components/common.js";
import { MonitorPanel } from "../components/monitor-panel.js";
import { TryCallPanel } from "../components/try-call-panel.js";
import { ConfigPanel } from "../components/config-panel.js";
import { bytes, duration, shortSha, time } from "../format.js";
import { html } from "../html.js";
import { navigate } from "../router.js";
import { TaskTable } from "./tasks.js";
import { usePackageVersions } from "../components/package-version.js";

interface Props {
  session: Session;
  app: string;
  server: string;
  tab: string;
}

const TABS: Array<[string, string]> = [["instances", "Instances"], ["patches", "Patch versions"], ["publish", "Publish"], ["config", "Config"], ["monitor", "Monitor"], ["try", "Try a call"], ["tasks", "Tasks"]];

function usage(used: number, limit: number, fmt: (n: number) => string): string {
  if (!used && !limit) return "—";
  return limit ? `${fmt(used)} / ${fmt(limit)}` : fmt(used);
}

function InstancesTab({ session, app, server, instances, reload }: { session: Session; app: string; server: string; instances: any[]; reload: () => void }) {
  const can = mayChange(session, app);
  const [selected, setSelected] = useState<number[]>([]);
  const [error, setError] = useState<unknown>(undefined);
  const act = async (kind: string): Promise<void> => {
    setError(undefined);
    try {
      const task = await post("/api/tasks", { kind, instanceIds: selected });
      navigate(`/tasks/${task.id}`);
    } catch (e) {
      setError(e);
    }
    reload();
  };
  const allSelected = instances.length > 0 && selected.length === instances.length;
  return html`<div>
    <${ErrorBanner} error=${error} />
    ${can ? html`<div class="row actions">
      <button type="button" disabled=${selected.length === 0} onClick=${() => act("start")}>Start</button>
      <button type="button" disabled=${selected.length === 0} onClick=${() => act("stop")}>Stop</button>
      <button type="button" disabled=${selected.length === 0} onClick=${() => act("restart")}>Restart</button>
      <button type="button" class="danger" disabled=${selected.length === 0} onClick=${() => confirm("Undeploy the selected instances?") && act("undeploy")}>Undeploy</button>
      <span class="muted">${selected.length} selected</span>
    </div>` : null}
    <table class="grid instances">
      <thead><tr>
        <th>${can ? html`<input type="checkbox" aria-label="select all" checked=${allSelected}
          onChange=${(e: any) => setSelected(e.currentTarget.checked ? instances.map((i) => i.id) : [])} />` : null}</th>
        <th>Id</th><th>Node</th><th>Adapters</th><th>Desired</th><th>Observed</th><th>Version</th><th>Pid</th><th>Uptime</th>
        <th>Restarts</th><th>CPU</th><th>Memory</th><th>Last exit</th>
      </tr></thead>
      <tbody>${instances.map((i) => html`<tr key=${i.id} data-instance=${i.id} data-node=${i.node}>
        <td>${can ? html`<input type="checkbox" aria-label=${`select instance ${i.id}`} checked=${selected.includes(i.id)}
          onChange=${(e: any) => setSelected(e.currentTarget.checked ? [...selected, i.id] : selected.filter((x) => x !== i.id))} />` : null}</td>
        <td><a href=${`/apps/${encodeURIComponent(app)}/${encodeURIComponent(server)}/instances/${i.id}`}>${i.id}</a>${i.surgeOf ? html` <span class="muted" title="a surge: started beside that instance while it switches version or restarts, removed after">surge of #${i.surgeOf}</span>` : null}</td>
        <td>${i.node}</td>
        <td>${(i.adapters ?? []).map((a: any) => html`<div>${a.obj} ${a.host}:${a.port}${a.protocol === "sgrid" ? " (sgrid)" : ""}</div>`)}</td>
        <td><${StatusBadge} value=${i.desiredState} /> ${i.desiredVersion ? `v${i.desiredVersion}` : ""}</td>
        <td class="observed"><${StatusBadge} value=${i.observedState} /></td>
        <td class="version">${i.observedVersion ? `v${i.observedVersion}` : "—"}</td>
        <td>${i.pid || "—"}</td>
        <td>${i.startedAt ? duration(i.startedAt) : "—"}</td>
        <td>${i.restarts}</td>
        <td>${usage(i.cpuCoresUsed, i.limits?.cpuCores ?? 0, (n) => n.toFixed(2))}</td>
        <td>${usage(i.memoryBytes, i.limits?.memoryBytes ?? 0, bytes)}</td>
        <td class="reason">${i.lastExitReason || ""}</td>
      </tr>`)}</tbody>
    </table>
    ${instances.length === 0 ? html`<p class="muted">No instances. ${can ? html`<a href=${`/deploy?application=${encodeURIComponent(app)}&server=${encodeURIComponent(server)}`}>Deploy to nodes.</a>` : null}</p>` : null}
  </div>`;
}

function PatchesTab({ session, app, server }: { session: Session; app: string; server: string }) {
  const can = mayChange(session, app);
  const base = `/api/patches/${encodeURIComponent(app)}/${encodeURIComponent(server)}`;
  const { data, error, reload } = useLoad(() => get(base), [app, server]);
  const [comment, setComment] = useState("");
  const [progress, setProgress] = useState<number | undefined>(undefined);
  const [uploadError, setUploadError] = useState<unknown>(undefined);
  const [done, setDone] = useState("");
  const fileRef = useRef<HTMLInputElement>(null);
  const upload = async (e: Event): Promise<void> => {
    e.preventDefault();
    setUploadError(undefined);
    setDone("");
    const file = fileRef.current?.files?.[0];
    if (!file) {
      setUploadError(Object.assign(new Error("choose a .tgz file"), { field: "file", code: "INVALID_ARGUMENT", status: 400 }));
      return;
    }
    if (file.size > session.limits.maxUploadBytes) {
      setUploadError(Object.assign(new Error(`the file is larger than the ${bytes(session.limits.maxUploadBytes)} allowed`), { field: "file" }));
      return;
    }
    setProgress(0);
    try {
      const p = await uploadPackage(app, server, file, comment, setProgress);
      setDone(`uploaded version ${p.version} (${shortSha(p.sha256)})`);
      setComment("");
      if (fileRef.current) fileRef.current.value = "";
      reload();
    } catch (err) {
      setUploadError(err);
    } finally {
      setProgress(undefined);
    }
  };
  const setDefault = async (version: number): Promise<void> => {
    try {
      await put(`${base}/${version}/default`);
      reload();
    } catch (err) {
      setUploadError(err);
    }
  };
  const remove = async (version: number): Promise<void> => {
    if (!confirm(`Delete version ${version}?`)) return;
    try {
      await del(`${base}/${version}`);
      reload();
    } catch (err) {
      setUploadError(err);
    }
  };
  const patches: any[] = data?.patches ?? [];
  const fieldErr = uploadError && (uploadError as { field?: string }).field === "file";
  return html`<div>
    ${can ? html`<form class="card upload" onSubmit=${upload} aria-label="upload package">
      <h3>Upload a package</h3>
      <label>Package (.tgz) <input type="file" name="file" accept=".tgz,.tar.gz,application/gzip" ref=${fileRef} /></label>
      ${fieldErr ? html`<div class="field-error" role="alert" data-field="file">${(uploadError as Error).message}</div>` : null}
      <label>Comment <input name="comment" value=${comment} onInput=${(e: any) => setComment(e.currentTarget.value)} /></label>
      ${progress !== undefined ? html`<div class="progress"><progress max="1" value=${progress}></progress>
        <span>${progress < 1 ? `${Math.round(progress * 100)}%` : "storing in the registry…"}</span></div>` : null}
      <button type="submit" disabled=${progress !== undefined}>Upload</button>
      ${done ? html`<div class="ok" role="status">${done}</div>` : null}
    </form>` : null}
    <${ErrorBanner} error=${error ?? (fieldErr ? undefined : uploadError)} />
    <table class="grid patches">
      <thead><tr><th>Version</th><th>Package version</th><th>sha256</th><th>Size</th><th>Uploader</th><th>Time</th><th>Comment</th><th>Default</th><th></th></tr></thead>
      <tbody>${patches.map((p) => html`<tr key=${p.version} data-version=${p.version}>
        <td>${p.version}</td><td class="package-version">${p.packageVersion || html`<span class="muted">—</span>`}</td><td title=${p.sha256}><code>${shortSha(p.sha256)}</code></td><td>${bytes(p.size)}</td>
        <td>${p.uploader}</td><td>${time(p.createdAt)}</td><td>${p.comment}</td>
        <td>${p.isDefault ? html`<span class="badge badge-active">default</span>` : can ? html`<button type="button" class="small" onClick=${() => setDefault(p.version)}>Make default</button>` : ""}</td>
        <td>${can ? html`<button type="button" class="small danger" onClick=${() => remove(p.version)}>Delete</button>` : null}</td>
      </tr>`)}</tbody>
    </table>
    ${patches.length === 0 ? (data ? html`<p class="muted">No patch versions yet.</p>` : null) : html`<p class="hint" data-hint="default">The <b>default</b> version is the one a new instance starts with when it is deployed without a version, and the one Publish offers first. Uploading does not change it; “Make default” does.</p>`}
  </div>`;
}

function PublishTab({ session, app, server, instances }: { session: Session; app: string; server: string; instances: any[] }) {
  const can = mayChange(session, app);
  const { data } = useLoad(() => get(`/api/patches/${encodeURIComponent(app)}/${encodeURIComponent(server)}`), [app, server]);
  const patches: any[] = data?.patches ?? [];
  const [version, setVersion] = useState(0);
  const [ids, setIds] = useState<number[] | undefined>(undefined);
  const [batchSize, setBatchSize] = useState(0);
  const [stopOnFailure, setStopOnFailure] = useState(true);
  const [comment, setComment] = useState("");
  const [canary, setCanary] = useState<CanaryForm>(NO_CANARY);
  const canaryDefaults = useCanaryDefaults();
  const [error, setError] = useState<unknown>(undefined);
  const chosen = ids ?? instances.map((i) => i.id);
  const chosenVersion = version || patches.find((p) => p.isDefault)?.version || patches[0]?.version || 0;
  const publish = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(undefined);
    try {
      const canaryOptions = canaryRequest(canary, canaryDefaults?.maxBakeS ?? 86_400);
      const task = await post("/api/tasks", { kind: "publish", instanceIds: chosen, version: Number(chosenVersion), batchSize: Number(batchSize), stopOnFailure, comment, canary: canaryOptions });
      navigate(`/tasks/${task.id}`);
    } catch (err) {
      setError(err);
    }
  };
  if (!can) return html`<p class="muted" data-readonly="publish">You can see this server but not publish it (your role on ${app}: viewer).</p>`;
  const fields = ["version", "instanceIds", "batchSize", "comment", "canary"];
  return html`<form class="card" onSubmit=${publish} aria-label="publish">
    <label>Version
      <select name="version" value=${chosenVersion} onChange=${(e: any) => setVersion(Number(e.currentTarget.value))}>
        ${patches.map((p) => html`<option value=${p.version}>v${p.version}${p.packageVersion ? ` (${p.packageVersion})` : ""}${p.isDefault ? " (default)" : ""} — ${p.comment || shortSha(p.sha256)}</option>`)}
      </select></label>
    <${FieldError} error=${error} field="version" />
    <fieldset><legend>Instances</legend>
      ${instances.map((i) => html`<label class="inline" key=${i.id}><input type="checkbox" name=${`instance-${i.id}`} checked=${chosen.includes(i.id)}
        onChange=${(e: any) => setIds(e.currentTarget.checked ? [...chosen, i.id] : chosen.filter((x) => x !== i.id))} />
        ${i.node} (#${i.id}, now ${i.observedVersion ? `v${i.observedVersion}` : "—"})</label>`)}
    </fieldset>
    <${FieldError} error=${error} field="instanceIds" />
    <label>Batch size (0 = all at once) <input type="number" name="batchSize" min="0" value=${batchSize} onInput=${(e: any) => setBatchSize(Number(e.currentTarget.value))} /></label>
    <label class="inline"><input type="checkbox" name="stopOnFailure" checked=${stopOnFailure} onChange=${(e: any) => setStopOnFailure(e.currentTarget.checked)} /> Stop on failure</label>
    <label>Comment (why; shown with the task) <input name="comment" maxlength="1024" value=${comment} onInput=${(e: any) => setComment(e.currentTarget.value)} /></label>
    <${FieldError} error=${error} field="comment" />
    <${CanaryFields} form=${canary} set=${setCanary} defaults=${canaryDefaults} error=${error} />
    ${error instanceof ApiError && error.field?.startsWith("canary") && !CANARY_FIELDS.includes(error.field) ? html`<${FieldError} error=${error} field="canary" />` : null}
    <${ErrorBanner} error=${isFieldError(error, fields) ? undefined : error} />
    <button type="submit" disabled=${patches.length === 0 || chosen.length === 0}>Publish</button>
  </form>`;
}

/** A placed server's placement: query, count, placed, matching nodes and why instances are missing. */
function PlacementCard({ session, app, server, placement, reload }: { session: Session; app: string; server: string; placement: any; reload: () => void }) {
  const [error, setError] = useState<unknown>(undefined);
  const unplace = async (): Promise<void> => {
    setError(undefined);
    try {
      await del(`/api/servers/${encodeURIComponent(app)}/${encodeURIComponent(server)}/placement`);
      reload();
    } catch (err) {
      setError(err);
    }
  };
  const reasons: string[] = placement.reasons ?? [];
  return html`<div class="card placement" data-placement-state=${placement.state}>
    <h3>Placement <span class=${placement.state === "placed" ? "badge badge-active" : "badge badge-failed"}>${String(placement.state).replace("_", " ")}</span></h3>
    <div>Query <code>${placement.query}</code>, count ${placement.count}: <strong>${placement.placed} placed</strong>;
      matching nodes: ${(placement.matching ?? []).join(", ") || "none"}</div>
    ${reasons.length > 0 ? html`<ul class="reasons">${reasons.map((r) => html`<li class="reason" key=${r}>${r}</li>`)}</ul>` : null}
    <div class="muted">The registry keeps this count as nodes join, leave or stay offline; set by ${placement.createdBy || "?"}, checked ${time(placement.updatedAt)}.</div>
    ${mayChange(session, app) ? html`<button type="button" class="small secondary" onClick=${() => confirm("End the placement? Its instances stay.") && unplace()}>End placement</button>` : null}
    <${ErrorBanner} error=${error} />
  </div>`;
}

export function ServerPage({ session, app, server, tab }: Props) {
  const inst = useLoad(() => get(`/api/instances${qs({ application: app, server })}`), [app, server], 3000);
  const info = useLoad(() => get(`/api/servers${qs({ application: app })}`), [app, server], 3000);
  const placement = (info.data?.servers ?? []).find((s: any) => s.name === server)?.placement;
  const instances: any[] = inst.data?.instances ?? [];
  const base = `/apps/${encodeURIComponent(app)}/${encodeURIComponent(server)}`;
  let body;
  if (tab === "patches") body = html`<${PatchesTab} session=${session} app=${app} server=${server} />`;
  else if (tab === "publish") body = html`<${PublishTab} session=${session} app=${app} server=${server} instances=${instances} />`;
  else if (tab === "monitor") body = html`<${MonitorPanel} app=${app} server=${server} />`;
  else if (tab === "try") body = html`<${TryCallPanel} session=${session} app=${app} server=${server} instances=${instances} />`;
  else if (tab === "config") body = html`<${ConfigPanel} session=${session} app=${app} server=${server} instances=${instances} />`;
  else if (tab === "tasks") body = html`<${ServerTasks} app=${app} server=${server} />`;
  else body = html`<${InstancesTab} session=${session} app=${app} server=${server} instances=${instances} reload=${inst.reload} />`;
  return html`<section>
    <h1><a href=${`/apps/${encodeURIComponent(app)}`}>${app}</a>.${server}</h1>
    <nav class="tabs">${TABS.map(([key, label]) => html`<a href=${`${base}?tab=${key}`} class=${tab === key ? "active" : ""}>${label}</a>`)}</nav>
    <${ErrorBanner} error=${inst.error} />
    ${placement && (tab === "instances" || !tab) ? html`<${PlacementCard} session=${session} app=${app} server=${server} placement=${placement} reload=${info.reload} />` : null}
    ${body}
  </section>`;
}

function ServerTasks({ app, server }: { app: string; server: string }) {
  const { data, error } = useLoad(() => get(`/api/tasks${qs({ application: app, server, limit: 50 })}`), [app, server], 5000);
  const packageVersions = usePackageVersions(app, server);
  return html`<div><${ErrorBanner} error=${error} /><${TaskTable} tasks=${data?.tasks ?? []} packageVersions=${packageVersions} /></div>`;
}

