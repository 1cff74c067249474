/**
 * An instance's log: stdout or stderr (a framework servant logs to stderr),
 * the last N lines or those containing a text, live follow (reloads every
 * 2 s while checked), and a download of the file's tail.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { get, qs } from "../api.js";
import { html } from "../html.js";
import { ErrorBanner } from "./common.js";

const FOLLOW_MS = 2000;

export function LogPanel({ id }: { id: number }) {
  const [stream, setStream] = useState<"stdout" | "stderr">("stderr");
  const [lines, setLines] = useState(200);
  const [grep, setGrep] = useState("");
  const [follow, setFollow] = useState(false);
  const [log, setLog] = useState<string | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const pre = useRef<HTMLPreElement>(null);
  const query = useRef({ stream, lines, grep });
  query.current = { stream, lines, grep };

  const load = async (): Promise<void> => {
    try {
      const q = query.current;
      setLog((await get(`/api/instances/${id}/log${qs({ lines: q.lines, stream: q.stream, grep: q.grep })}`)).output);
      setError(undefined);
    } catch (err) {
      setError(err);
    }
  };
  useEffect(() => {
    if (!follow) return undefined;
    void load();
    const t = setInterval(() => void load(), FOLLOW_MS);
    return () => clearInterval(t);
  }, [follow, id]);
  // Following: keep the newest line in view.
  useEffect(() => {
    if (follow && pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [log, follow]);

  const submit = (e: Event): void => {
    e.preventDefault();
    void load();
  };
  return html`<form class="card" onSubmit=${submit} aria-label="log">
    <h3>Log</h3>
    <div class="row">
      <label>Stream <select name="stream" value=${stream} onChange=${(e: any) => setStream(e.currentTarget.value)}>
        <option value="stderr">stderr (framework logger)</option>
        <option value="stdout">stdout</option>
      </select></label>
      <label>Lines <input type="number" name="lines" min="1" max="5000" value=${lines} onInput=${(e: any) => setLines(Number(e.currentTarget.value))} /></label>
      <label>Search <input name="grep" placeholder="text in the line" value=${grep} onInput=${(e: any) => setGrep(e.currentTarget.value)} /></label>
      <button type="submit">Tail log</button>
      <label class="inline"><input type="checkbox" name="follow" checked=${follow} onChange=${(e: any) => setFollow(e.currentTarget.checked)} /> Follow</label>
      <a class="button-link" href=${`/api/instances/${id}/log/download${qs({ stream })}`} download>Download ${stream}</a>
    </div>
    <${ErrorBanner} error=${error} />
    ${log !== undefined ? html`<pre class="log" ref=${pre} aria-label="log lines">${log === "" ? `(no ${grep ? "matching " : ""}lines in ${stream})` : log}</pre>` : null}
  </form>`;
}
