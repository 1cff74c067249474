/** Tasks: the list, and one task live (Server-Sent Events from Admin.WatchTask) with rollback and, for a canary publish, its canary block. */
import { useEffect, useState } from "preact/hooks";
import { get, mayChange, post, qs, type Session } from "../api.js";
import { CanaryBlock } from "../components/canary.js";
import { ErrorBanner, StatusBadge, useLoad } from "../components/common.js";
import { VersionLabel, usePackageVersions } from "../components/package-version.js";
import { time } from "../format.js";
import { html } from "../html.js";
import { navigate } from "../router.js";

const DONE = new Set(["success", "failed", "partial"]);

/** "publish", or "rollback of task 7" for a publish that undoes another. */
export function kindLabel(t: any): string {
  return t.rollbackOf ? `rollback of task ${t.rollbackOf}` : t.kind;
}

/** A publish can be rolled back when some instance ran another version before it (not a first publish). */
function canRollBack(t: any): boolean {
  if (t.kind !== "publish" || !DONE.has(t.status)) return false;
  // A canary the registry rolled back has its rollback task already (linked from the canary block).
  if (t.canary?.state === "rolled_back") return false;
  try {
    return Object.values(JSON.parse(t.previousVersionsJson || "{}") as Record<string, number>).some((v) => v > 0);
  } catch {
    return false;
  }
}

function target(t: any): string {
  const items: any[] = t.items ?? [];
  const names = [...new Set(items.map((i) => `${i.application}.${i.server}`))];
  return names.join(", ");
}

/** `packageVersions`: vN -> the package's own version, when the tasks are of one server. */
export function TaskTable({ tasks, packageVersions }: { tasks: any[]; packageVersions?: Map<number, string> }) {
  if (tasks.length === 0) return html`<p class="muted">No tasks.</p>`;
  return html`<table class="grid tasks">
    <thead><tr><th>Id</th><th>Kind</th><th>Target</th><th>Version</th><th>Status</th><th>By</th><th>Created</th><th>Finished</th><th>Comment / reason</th></tr></thead>
    <tbody>${tasks.map((t) => html`<tr key=${t.id}>
      <td><a href=${`/tasks/${t.id}`}>${t.id}</a></td><td>${t.rollbackOf ? html`rollback of <a href=${`/tasks/${t.rollbackOf}`}>task ${t.rollbackOf}</a>` : t.kind}</td><td>${target(t)}</td>
      <td><${VersionLabel} version=${t.version} packageVersion=${packageVersions?.get(t.version)} /></td><td><${StatusBadge} value=${t.status} /></td>
      <td>${t.createdBy}</td><td class="time">${time(t.createdAt)}</td><td class="time">${time(t.finishedAt)}</td><td>${[t.comment, t.reason].filter(Boolean).join(" — ")}</td>
    </tr>`)}</tbody>
  </table>`;
}

export function TasksPage({ session: _session }: { session: Session }) {
  const { data, error } = useLoad(() => get(`/api/tasks${qs({ limit: 100 })}`), [], 5000);
  return html`<section><h1>Tasks</h1><${ErrorBanner} error=${error} /><${TaskTable} tasks=${data?.tasks ?? []} /></section>`;
}

/** The task, live: SSE while it runs; polling if the stream cannot be opened. */
function useLiveTask(id: number): { task: any; error: unknown } {
  const [task, setTask] = useState<any>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  useEffect(() => {
    setTask(undefined);
    let closed = false;
    let poll: ReturnType<typeof setInterval> | undefined;
    const startPolling = (): void => {
      if (poll || closed) return;
      const once = (): void => {
        get(`/api/tasks/${id}`).then((t) => {
          setTask(t);
          setError(undefined);
          if (DONE.has(t.status) && poll) clearInterval(poll);
        }, setError);
      };
      once();
      poll = setInterval(once, 2000);
    };
    const es = new EventSource(`/api/tasks/${id}/watch`);
    es.onmessage = (e) => {
      setTask(JSON.parse(e.data));
      setError(undefined);
    };
    es.addEventListener("end", () => es.close());
    es.addEventListener("error", (e: Event) => {
      const data = (e as MessageEvent).data;
      es.close();
      if (typeof data === "string" && data) {
        try {
          setError(new Error(JSON.parse(data).error?.message ?? "watch failed"));
        } catch {
          // fall through to polling
        }
      }
      startPolling();
    });
    return () => {
      closed = true;
      es.close();
      if (poll) clearInterval(poll);
    };
  }, [id]);
  return { task, error };
}

export function TaskPage({ session, id }: { session: Session; id: number }) {
  const { task, error } = useLiveTask(id);
  const [actionError, setActionError] = useState<unknown>(undefined);
  const items: any[] = task?.items ?? [];
  const app = items[0]?.application ?? "";
  const servers = new Set(items.map((i) => `${i.application}.${i.server}`));
  const packageVersions = usePackageVersions(servers.size === 1 ? app : "", servers.size === 1 ? items[0].server : "");
  const can = app !== "" && mayChange(session, app);
  const rollback = async (): Promise<void> => {
    setActionError(undefined);
    try {
      const t = await post(`/api/tasks/${id}/rollback`);
      navigate(`/tasks/${t.id}`);
    } catch (err) {
      setActionError(err);
    }
  };
  const done = items.filter((i) => i.status === "SUCCESS" || i.status === "FAILED").length;
  return html`<section>
    <h1>Task ${id}</h1>
    <${ErrorBanner} error=${error ?? actionError} />
    ${task ? html`<div>
      <dl class="facts">
        <dt>Kind</dt><dd class="task-kind">${task.rollbackOf ? html`rollback of <a href=${`/tasks/${task.rollbackOf}`}>task ${task.rollbackOf}</a>` : task.kind}${task.version ? html` <${VersionLabel} version=${task.version} packageVersion=${packageVersions.get(task.version)} />` : ""}</dd>
        ${task.comment ? html`<dt>Comment</dt><dd class="task-comment">${task.comment}</dd>` : null}
        <dt>Status</dt><dd class="task-status" data-status=${task.status}><${StatusBadge} value=${task.status} /></dd>
        <dt>Progress</dt><dd><progress max=${items.length || 1} value=${done}></progress> ${done} / ${items.length}</dd>
        <dt>By</dt><dd>${task.createdBy}</dd>
        <dt>Created</dt><dd>${time(task.createdAt)}</dd>
        <dt>Finished</dt><dd>${time(task.finishedAt)}</dd>
        ${task.kind === "publish" ? html`<dt>Batches</dt><dd>${task.canary ? "the canary first, then " : ""}${task.batchSize || "all at once"}${task.stopOnFailure ? ", stop on failure" : ""}</dd>` : null}
        ${task.reason ? html`<dt>Reason</dt><dd>${task.reason}</dd>` : null}
      </dl>
      <${CanaryBlock} task=${task} can=${can} />
      ${can && canRollBack(task)
        ? html`<button type="button" onClick=${rollback}>Roll back to the previous versions</button>`
        : can && task.kind === "publish" && DONE.has(task.status) ? html`<p class="hint" data-no-rollback>A first publish has no previous version to roll back to.</p>` : null}
      <table class="grid task-items">
        <thead><tr><th>Batch</th><th>Instance</th><th>Server</th><th>Node</th><th>Status</th><th>Reason</th><th>Started</th><th>Finished</th></tr></thead>
        <tbody>${items.map((i) => html`<tr key=${i.id} data-item-status=${i.status}>
          <td>${i.batch}</td><td>${i.instanceId}</td><td><a href=${`/apps/${encodeURIComponent(i.application)}/${encodeURIComponent(i.server)}`}>${i.application}.${i.server}</a></td>
          <td>${i.node}</td><td><${StatusBadge} value=${i.status} /></td><td>${i.reason}</td><td>${time(i.startedAt)}</td><td>${time(i.finishedAt)}</td>
        </tr>`)}</tbody>
      </table>
    </div>` : html`<p class="muted">Loading…</p>`}
  </section>`;
}
