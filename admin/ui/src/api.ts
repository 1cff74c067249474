/**
 * The page's only way to the server: JSON over fetch to /api, with the
 * session's CSRF token on every mutating request. The session cookie is
 * HttpOnly: this code never sees it (nor the registry token behind it).
 */

export interface RoleGrant {
  application: string;
  role: string;
}

export interface Session {
  user: string;
  roles: RoleGrant[];
  csrfToken: string;
  expiresAt: number;
  limits: { maxUploadBytes: number };
}

/** An API error: HTTP status, stable code, message, and the form field it is about (if any). */
export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly field?: string) {
    super(message);
  }
}

let csrfToken = "";
let onUnauthenticated: () => void = () => undefined;

export function setCsrfToken(token: string): void {
  csrfToken = token;
}

/** Called when any call answers 401 (the session ended): the shell goes to the login page. */
export function setUnauthenticatedHandler(fn: () => void): void {
  onUnauthenticated = fn;
}

async function errorFrom(res: Response): Promise<ApiError> {
  let code = "HTTP_" + res.status;
  let message = res.statusText || `HTTP ${res.status}`;
  let field: string | undefined;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string; field?: string } };
    if (body.error) {
      code = body.error.code ?? code;
      message = body.error.message ?? message;
      field = body.error.field;
    }
  } catch {
    // not JSON: keep the status text
  }
  return new ApiError(res.status, code, message, field);
}

/** Fired on window after every successful change made through {@link api}. */
export const CHANGED_EVENT = "sgrid:changed";

/**
 * Degraded mode as the page knows it: set while the registry answers the
 * lists of nodes, servers and instances from its memory (`asOf`: when that
 * memory was read from the database; 0 = not known) or refuses a call with
 * DATABASE_UNAVAILABLE; cleared by such a list answered from the database
 * again, or by a change that went through.
 */
export interface Degraded {
  asOf: number;
  reason: string;
}

/** Fired on window when {@link degradedState} changes. */
export const DEGRADED_EVENT = "sgrid:degraded";

/** The reads the registry can answer from memory. */
const MEMORY_READS = /^\/api\/(nodes|instances|servers|dashboard)(\?|$)/;

let degraded: Degraded | undefined;

export function degradedState(): Degraded | undefined {
  return degraded;
}

function setDegraded(next: Degraded | undefined): void {
  if (next?.asOf === degraded?.asOf && next?.reason === degraded?.reason) return;
  degraded = next;
  window.dispatchEvent(new Event(DEGRADED_EVENT));
}

export async function api<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") headers["x-csrf-token"] = csrfToken;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (res.status === 401 && path !== "/api/login") {
    onUnauthenticated();
  }
  if (!res.ok) {
    const err = await errorFrom(res);
    if (err.code === "DATABASE_UNAVAILABLE") setDegraded({ asOf: degraded?.asOf ?? 0, reason: err.message });
    throw err;
  }
  const writing = method !== "GET" && method !== "HEAD";
  // Something changed: views that list things (the sidebar) reload now rather than at their next poll.
  if (writing && path !== "/api/login" && path !== "/api/logout") {
    setDegraded(undefined);
    window.dispatchEvent(new Event(CHANGED_EVENT));
  }
  if (res.status === 204) return undefined as T;
  const reply = (await res.json()) as T;
  if (!writing && MEMORY_READS.test(path)) {
    const d = (reply as { degraded?: { asOf?: number; reason?: string } } | null)?.degraded;
    setDegraded(d ? { asOf: Number(d.asOf ?? 0), reason: String(d.reason ?? "") } : undefined);
  }
  return reply;
}

export const get = <T = any>(path: string): Promise<T> => api<T>("GET", path);
export const post = <T = any>(path: string, body?: unknown): Promise<T> => api<T>("POST", path, body ?? {});
export const put = <T = any>(path: string, body?: unknown): Promise<T> => api<T>("PUT", path, body ?? {});
export const patch = <T = any>(path: string, body?: unknown): Promise<T> => api<T>("PATCH", path, body ?? {});
export const del = <T = any>(path: string): Promise<T> => api<T>("DELETE", path);

/** `?a=1&b=x` from an object (empty and undefined values left out). */
export function qs(params: Record<string, string | number | undefined>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : "";
}

/** sha256 hex of a file when the page can hash (secure contexts only); undefined otherwise. */
async function sha256Hex(file: File): Promise<string | undefined> {
  if (!globalThis.crypto?.subtle) return undefined;
  // Hashing needs the whole file in memory; skip it for very large files (the server hashes anyway).
  if (file.size > 256 * 1024 * 1024) return undefined;
  const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Uploads a package with progress (XMLHttpRequest: fetch has no upload
 * progress). `onProgress` gets 0..1 while the bytes go up; the promise
 * settles when the registry has stored the package.
 */
export async function uploadPackage(application: string, server: string, file: File, comment: string,
  onProgress: (fraction: number) => void): Promise<any> {
  const sha = await sha256Hex(file);
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/patches/${encodeURIComponent(application)}/${encodeURIComponent(server)}${qs({ comment })}`);
    xhr.setRequestHeader("x-csrf-token", csrfToken);
    xhr.setRequestHeader("content-type", "application/gzip");
    if (sha) xhr.setRequestHeader("x-sha256", sha);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    };
    xhr.onload = () => {
      let body: any;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = undefined;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(body);
        return;
      }
      if (xhr.status === 401) onUnauthenticated();
      const e = body?.error ?? {};
      reject(new ApiError(xhr.status, e.code ?? `HTTP_${xhr.status}`, e.message ?? `upload failed (HTTP ${xhr.status})`, e.field ?? "file"));
    };
    xhr.onerror = () => reject(new ApiError(0, "NETWORK", "upload failed: the connection was closed (file too large?)", "file"));
    xhr.send(file);
  });
}

/** The strongest role the session holds on `application` ("" = none). */
export function roleOn(session: Session | undefined, application: string): string {
  const rank: Record<string, number> = { viewer: 1, operator: 2, admin: 3 };
  let best = "";
  for (const g of session?.roles ?? []) {
    if (g.application !== "*" && g.application !== application) continue;
    if ((rank[g.role] ?? 0) > (rank[best] ?? 0)) best = g.role;
  }
  return best;
}

/** True when the session may change `application` (operator or admin there or on "*"). */
export function mayChange(session: Session | undefined, application: string): boolean {
  const r = roleOn(session, application);
  return r === "operator" || r === "admin";
}

/** True for an admin of everything (users page). */
export function isAdmin(session: Session | undefined): boolean {
  return (session?.roles ?? []).some((g) => g.application === "*" && g.role === "admin");
}
