/**
 * Config files of one scope (application, server, or one instance): list,
 * edit, history, diff between any two versions, rollback, the merged view an
 * instance loads, and push to chosen instances.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { del, get, mayChange, post, put, qs, type Session } from "../api.js";
import { lineDiff } from "../diff.js";
import { time } from "../format.js";
import { html } from "../html.js";
import { ErrorBanner, FieldError, isFieldError, useLoad } from "./common.js";

interface Props {
  session: Session;
  app: string;
  server?: string;
  /** The server's instances (for the instance level, the merged view and push). */
  instances?: any[];
}

function scopeParams(level: string, app: string, server?: string, node?: string): Record<string, string | undefined> {
  return { level, application: app, server: level === "application" ? undefined : server, node: level === "instance" ? node : undefined };
}

function Diff({ from, to }: { from: any; to: any }) {
  const lines = lineDiff(from?.content ?? "", to?.content ?? "");
  return html`<div class="diff" aria-label="diff">
    <div class="diff-head">v${from?.version} → v${to?.version}</div>
    <pre>${lines.map((l) => html`<div class=${`diff-${l.op}`}><span class="ln">${l.a || ""}</span><span class="ln">${l.b || ""}</span>${l.op === "add" ? "+ " : l.op === "del" ? "- " : "  "}${l.text}</div>`)}</pre>
  </div>`;
}

export function ConfigPanel({ session, app, server, instances = [] }: Props) {
  const can = mayChange(session, app);
  const [level, setLevel] = useState(server ? "server" : "application");
  const [node, setNode] = useState<string>(instances[0]?.node ?? "");
  const [file, setFile] = useState<string>("");
  const [newName, setNewName] = useState("");
  const [content, setContent] = useState("");
  const [comment, setComment] = useState("");
  const [error, setError] = useState<unknown>(undefined);
  const [saved, setSaved] = useState("");
  const [diffFrom, setDiffFrom] = useState(0);
  const [diffTo, setDiffTo] = useState(0);
  const [diffPair, setDiffPair] = useState<[any, any] | undefined>(undefined);
  const [merged, setMerged] = useState<any>(undefined);
  const [pushIds, setPushIds] = useState<number[]>([]);
  const [pushResults, setPushResults] = useState<any[] | undefined>(undefined);

  const scope = scopeParams(level, app, server, node);
  const scopeKey = JSON.stringify(scope);
  const files = useLoad(() => (level === "instance" && !node ? Promise.resolve({ files: [] }) : get(`/api/configs/files${qs(scope)}`)), [scopeKey]);
  const history = useLoad(
    () => (file ? get(`/api/configs/history${qs({ ...scope, fileName: file })}`) : Promise.resolve({ versions: [] })),
    [scopeKey, file],
  );
  const versions: any[] = history.data?.versions ?? [];

  // The file the diff selection belongs to. While a diff is shown, a history refresh of the same
  // file (after a save or rollback) keeps it and its selection: it does not vanish while read.
  const selectionFor = useRef("");
  // The file the editor's text belongs to, and the text it was last filled with (loaded or saved).
  // Text typed over that is the user's: a history refresh of the same file never replaces it. Effects
  // run after paint, so a refresh can land after the user has started typing the next version.
  const editorFor = useRef("");
  const editorBase = useRef("");
  useEffect(() => {
    if (!history.data) return;
    // Editor starts from the current version of the chosen file.
    const current = versions[0];
    const key = `${scopeKey}|${file}`;
    const latest = current?.content ?? "";
    if (editorFor.current !== key) setContent(latest);
    else setContent((typed) => (typed === editorBase.current ? latest : typed));
    editorFor.current = key;
    editorBase.current = latest;
    if (selectionFor.current === key && diffPair) return;
    selectionFor.current = key;
    setDiffTo(current?.version ?? 0);
    setDiffFrom(versions[1]?.version ?? current?.version ?? 0);
    setDiffPair(undefined);
  }, [history.data]);

  const save = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(undefined);
    setSaved("");
    const fileName = file || newName.trim();
    const savingFrom = editorFor.current;
    try {
      const v = await put("/api/configs/file", { scope: clean(scope), fileName, content, comment });
      setSaved(`saved ${fileName} v${v.version}`);
      // Unless the user moved to another file or scope meanwhile, the editor now shows the saved version.
      if (editorFor.current === savingFrom) {
        editorFor.current = `${scopeKey}|${fileName}`;
        editorBase.current = content;
      }
      setComment("");
      setNewName("");
      if (file !== fileName) setFile(fileName);
      files.reload();
      history.reload();
    } catch (err) {
      setError(err);
    }
  };

  const rollback = async (version: number): Promise<void> => {
    setError(undefined);
    try {
      const v = await post("/api/configs/rollback", { scope: clean(scope), fileName: file, version, comment: `rollback to v${version}` });
      setSaved(`rolled back ${file} to v${version} (now v${v.version})`);
      editorFor.current = ""; // the editor shows the rolled-back text, whatever was typed: the user asked for it
      history.reload();
      files.reload();
    } catch (err) {
      setError(err);
    }
  };

  const remove = async (): Promise<void> => {
    if (!confirm(`Delete ${file} at ${level} level (all versions)?`)) return;
    try {
      await del(`/api/configs/file${qs({ ...scope, fileName: file })}`);
      setFile("");
      files.reload();
    } catch (err) {
      setError(err);
    }
  };

  const showDiff = (): void => {
    const a = versions.find((v) => v.version === Number(diffFrom));
    const b = versions.find((v) => v.version === Number(diffTo));
    setDiffPair(a && b ? [a, b] : undefined);
  };

  const loadMerged = async (inst: any): Promise<void> => {
    setError(undefined);
    try {
      setMerged({ node: inst.node, ...(await get(`/api/configs/merged${qs({ application: app, server: server!, node: inst.node, fileName: file })}`)) });
    } catch (err) {
      setError(err);
    }
  };

  const push = async (): Promise<void> => {
    setError(undefined);
    try {
      const r = await post("/api/configs/push", { fileName: file, instanceIds: pushIds });
      setPushResults(r.results ?? []);
    } catch (err) {
      setError(err);
    }
  };

  const fileList: any[] = files.data?.files ?? [];
  const fields = ["fileName", "content", "comment", "scope"];
  return html`<div class="config-panel">
    <div class="row">
      <label>Level
        <select name="level" value=${level} onChange=${(e: any) => { setLevel(e.currentTarget.value); setFile(""); }}>
          <option value="application">application (${app})</option>
          ${server ? html`<option value="server">server (${app}.${server})</option>` : null}
          ${server ? html`<option value="instance">instance</option>` : null}
        </select>
      </label>
      ${level === "instance" ? html`<label>Node
        <select name="node" value=${node} onChange=${(e: any) => { setNode(e.currentTarget.value); setFile(""); }}>
          ${instances.map((i) => html`<option value=${i.node}>${i.node}</option>`)}
        </select></label>` : null}
    </div>
    <${ErrorBanner} error=${files.error ?? history.error ?? (isFieldError(error, fields) ? undefined : error)} />
    <div class="cols">
      <div class="col-narrow">
        <h3>Files</h3>
        <ul class="file-list">${fileList.map((f) => html`<li key=${f.fileName}>
          <a href="#" class=${f.fileName === file ? "active" : ""} onClick=${(e: Event) => { e.preventDefault(); setFile(f.fileName); }}>${f.fileName}</a>
          <span class="muted"> v${f.currentVersion}</span></li>`)}
          ${fileList.length === 0 ? html`<li class="muted">no files at this level</li>` : null}
        </ul>
        ${can ? html`<button type="button" class="small" onClick=${() => { setFile(""); setContent(""); }}>New file</button>` : null}
      </div>
      <div class="col-wide">
        <form onSubmit=${save} aria-label="config editor">
          ${file ? html`<h3>${file}</h3>` : html`<label>File name <input name="fileName" value=${newName} placeholder="app.json"
            onInput=${(e: any) => setNewName(e.currentTarget.value)} disabled=${!can} /></label>
            <${FieldError} error=${error} field="fileName" />`}
          <textarea name="content" rows="12" spellcheck=${false} value=${content} readOnly=${!can}
            onInput=${(e: any) => setContent(e.currentTarget.value)}></textarea>
          <${FieldError} error=${error} field="content" />
          ${can ? html`<div class="row">
            <input name="comment" placeholder="comment" value=${comment} onInput=${(e: any) => setComment(e.currentTarget.value)} />
            <button type="submit">Save</button>
            ${file ? html`<button type="button" class="danger" onClick=${remove}>Delete file</button>` : null}
          </div>` : null}
          ${saved ? html`<div class="ok" role="status">${saved}</div>` : null}
        </form>
        ${file ? html`<div>
          <h3>History</h3>
          <table class="grid history">
            <thead><tr><th>Version</th><th>Author</th><th>Time</th><th>Comment</th><th></th></tr></thead>
            <tbody>${versions.map((v) => html`<tr key=${v.version}>
              <td>v${v.version}</td><td>${v.author}</td><td>${time(v.createdAt)}</td>
              <td>${v.comment}${v.rolledBackFrom ? ` (rollback of v${v.rolledBackFrom})` : ""}</td>
              <td>${can && v.version !== versions[0]?.version ? html`<button type="button" class="small" onClick=${() => rollback(v.version)}>Roll back to this</button>` : null}</td>
            </tr>`)}</tbody>
          </table>
          ${versions.length > 0 ? html`<div class="row">
            <label>Diff from <select name="diffFrom" value=${diffFrom} onChange=${(e: any) => setDiffFrom(Number(e.currentTarget.value))}>
              ${versions.map((v) => html`<option value=${v.version}>v${v.version}</option>`)}</select></label>
            <label>to <select name="diffTo" value=${diffTo} onChange=${(e: any) => setDiffTo(Number(e.currentTarget.value))}>
              ${versions.map((v) => html`<option value=${v.version}>v${v.version}</option>`)}</select></label>
            <button type="button" onClick=${showDiff}>Show diff</button>
          </div>` : null}
          ${diffPair ? html`<${Diff} from=${diffPair[0]} to=${diffPair[1]} />` : null}
          ${server && instances.length > 0 ? html`<div>
            <h3>Merged view and push</h3>
            <p class="hint">Pushing makes running instances reload ${file}. Tick instances to push to those only; with none ticked, every instance that sees the file reloads it.</p>
            <table class="grid">
              <thead><tr><th>Push to</th><th>Instance</th><th>Node</th><th></th></tr></thead>
              <tbody>${instances.map((i) => html`<tr key=${i.id}>
                <td><input type="checkbox" name=${`push-${i.id}`} checked=${pushIds.includes(i.id)} disabled=${!can}
                  onChange=${(e: any) => setPushIds(e.currentTarget.checked ? [...pushIds, i.id] : pushIds.filter((x) => x !== i.id))} /></td>
                <td>${i.id}</td><td>${i.node}</td>
                <td><button type="button" class="small" onClick=${() => loadMerged(i)}>Merged view</button></td>
              </tr>`)}</tbody>
            </table>
            ${can ? html`<button type="button" onClick=${push}>Push ${file} to ${pushIds.length ? `the ${pushIds.length} ticked instance(s)` : "every instance"}</button>` : null}
            ${pushResults ? html`<ul class="push-results">${pushResults.map((r) => html`<li class=${r.ok ? "ok" : "error"}>
              instance ${r.instanceId}: ${r.ok ? "ok" : "failed"} ${r.message}</li>`)}
              ${pushResults.length === 0 ? html`<li class="muted">no instance sees this file</li>` : null}</ul>` : null}
            ${merged ? html`<div class="merged"><h4>Merged ${merged.fileName} on ${merged.node} (${merged.version})</h4>
              <pre>${merged.content}</pre>
              <div class="muted">layers: ${(merged.layers ?? []).map((l: any) => `${l.scope?.level} v${l.version}`).join(", ")}</div></div>` : null}
          </div>` : null}
        </div>` : null}
      </div>
    </div>
  </div>`;
}

function clean(scope: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(scope)) if (v !== undefined) out[k] = v;
  return out;
}
