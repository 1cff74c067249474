/** Deploy a server: application, name, type, nodes, Objs and ports, env, limits, health check, launch options. */
import { useState } from "preact/hooks";
import { ApiError, get, post, type Session } from "../api.js";
import { ErrorBanner, FieldError, isFieldError, useLoad } from "../components/common.js";
import { lines, num, parseEnv } from "../forms.js";
import { html } from "../html.js";
import { navigate, useLocation } from "../router.js";

interface AdapterRow {
  obj: string;
  port: string;
  protocol: string;
}

export function DeployPage({ session: _session }: { session: Session }) {
  const { query } = useLocation();
  const nodes = useLoad(() => get("/api/nodes"), []);
  const [application, setApplication] = useState(query.get("application") ?? "");
  const [server, setServer] = useState(query.get("server") ?? "");
  const [type, setType] = useState("node");
  const [chosen, setChosen] = useState<string[]>([]);
  const [placeQuery, setPlaceQuery] = useState("");
  const [count, setCount] = useState("1");
  const [adapters, setAdapters] = useState<AdapterRow[]>([{ obj: "", port: "0", protocol: "grpc" }]);
  const [envText, setEnvText] = useState("");
  const [memoryMiB, setMemoryMiB] = useState("");
  const [cpuCores, setCpuCores] = useState("");
  const [pids, setPids] = useState("");
  const [hcKind, setHcKind] = useState("");
  const [hcPort, setHcPort] = useState("0");
  const [hcPath, setHcPath] = useState("");
  const [hcInterval, setHcInterval] = useState("");
  const [argsText, setArgsText] = useState("");
  const [runtimeOptsText, setRuntimeOptsText] = useState("");
  const [entry, setEntry] = useState("");
  const [runAsUser, setRunAsUser] = useState("");
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);

  const setAdapter = (i: number, patch: Partial<AdapterRow>): void => setAdapters(adapters.map((a, j) => (j === i ? { ...a, ...patch } : a)));
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(undefined);
    setBusy(true);
    try {
      const body = {
        application: application.trim(),
        server: server.trim(),
        type,
        nodes: placeQuery.trim() ? [] : chosen,
        place: placeQuery.trim(),
        count: placeQuery.trim() ? num(count) : 0,
        // Every row is sent, an empty Obj too: the API names the row, shown next to it.
        adapters: adapters.map((a) => ({ obj: a.obj.trim(), port: num(a.port), protocol: a.protocol })),
        env: parseEnv(envText),
        limits: { memoryBytes: Math.round(num(memoryMiB) * 1024 * 1024), cpuCores: num(cpuCores), pids: num(pids) },
        healthCheck: hcKind ? { kind: hcKind, port: num(hcPort), path: hcPath, intervalMs: num(hcInterval) } : undefined,
        launch: {
          args: lines(argsText),
          jvmOptions: type === "java" ? lines(runtimeOptsText) : [],
          nodeOptions: type === "node" ? lines(runtimeOptsText) : [],
          entry: entry.trim(),
          runAsUser: runAsUser.trim(),
        },
      };
      await post("/api/servers", body);
      navigate(`/apps/${encodeURIComponent(body.application)}/${encodeURIComponent(body.server)}`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const nodeList: any[] = nodes.data?.nodes ?? [];
  const fields = ["application", "server", "type", "nodes", "place", "count", "adapters", "env", "limits", "healthCheck", "launch"];
  return html`<section>
    <h1>Deploy a server</h1>
    <form class="card deploy" onSubmit=${submit} aria-label="deploy">
      <div class="row">
        <label>Application <input name="application" value=${application} onInput=${(e: any) => setApplication(e.currentTarget.value)} /></label>
        <label>Server <input name="server" value=${server} onInput=${(e: any) => setServer(e.currentTarget.value)} /></label>
        <label>Type <select name="type" value=${type} onChange=${(e: any) => setType(e.currentTarget.value)}>
          <option value="node">node</option><option value="java">java</option><option value="binary">binary</option></select></label>
      </div>
      <${FieldError} error=${error} field="application" /><${FieldError} error=${error} field="server" /><${FieldError} error=${error} field="type" />
      <fieldset><legend>Nodes</legend>
        ${nodeList.map((n) => html`<label class="inline" key=${n.name}><input type="checkbox" name=${`node-${n.name}`} checked=${chosen.includes(n.name)}
          onChange=${(e: any) => setChosen(e.currentTarget.checked ? [...chosen, n.name] : chosen.filter((x) => x !== n.name))} />
          ${n.name} <span class=${n.online ? "ok" : "muted"}>${n.online ? "online" : "offline"}</span></label>`)}
        ${nodeList.length === 0 ? html`<span class="muted">no nodes registered</span>` : null}
      </fieldset>
      <${FieldError} error=${error} field="nodes" />
      <fieldset><legend>Or place by a query (the registry keeps the count as nodes come and go)</legend><div class="row">
        <label>Placement query <input name="place" placeholder="tags:ssd AND cpus>4" value=${placeQuery} onInput=${(e: any) => setPlaceQuery(e.currentTarget.value)} /></label>
        <label>Count <input name="count" type="number" min="1" max="1000" value=${count} onInput=${(e: any) => setCount(e.currentTarget.value)} /></label>
      </div><div class="muted">tags:key, tags:key=value, cpus, memory (8G), disk, os, arch, name; AND, OR, NOT, ( ). Leave empty to deploy on the nodes above.</div></fieldset>
      <${FieldError} error=${error} field="place" /><${FieldError} error=${error} field="count" />
      <fieldset><legend>Objs and ports (port 0 = assigned automatically on each node)</legend>
        ${adapters.map((a, i) => html`<div class="row" key=${i}>
          <input name=${`obj-${i}`} placeholder="GreeterObj" value=${a.obj} onInput=${(e: any) => setAdapter(i, { obj: e.currentTarget.value })} />
          <input name=${`port-${i}`} type="number" min="0" max="65535" value=${a.port} onInput=${(e: any) => setAdapter(i, { port: e.currentTarget.value })} />
          <select name=${`protocol-${i}`} value=${a.protocol} onChange=${(e: any) => setAdapter(i, { protocol: e.currentTarget.value })}>
            <option value="grpc">grpc</option><option value="sgrid">sgrid (native)</option></select>
          <button type="button" class="small secondary" onClick=${() => setAdapters(adapters.filter((_, j) => j !== i))}>Remove</button>
        </div><${FieldError} error=${error} field=${`adapters.${i}`} />`)}
        <button type="button" class="small" onClick=${() => setAdapters([...adapters, { obj: "", port: "0", protocol: "grpc" }])}>Add Obj</button>
      </fieldset>
      ${error instanceof ApiError && error.field === "adapters" ? html`<${FieldError} error=${error} field="adapters" />` : null}
      <label>Environment (NAME=value per line) <textarea name="env" rows="3" value=${envText} onInput=${(e: any) => setEnvText(e.currentTarget.value)}></textarea></label>
      <${FieldError} error=${error} field="env" />
      <fieldset><legend>Limits (empty = unlimited)</legend><div class="row">
        <label>Memory MiB <input name="memoryMiB" type="number" min="0" value=${memoryMiB} onInput=${(e: any) => setMemoryMiB(e.currentTarget.value)} /></label>
        <label>CPU cores <input name="cpuCores" type="number" min="0" step="0.1" value=${cpuCores} onInput=${(e: any) => setCpuCores(e.currentTarget.value)} /></label>
        <label>Pids <input name="pids" type="number" min="0" value=${pids} onInput=${(e: any) => setPids(e.currentTarget.value)} /></label>
      </div></fieldset>
      <${FieldError} error=${error} field="limits" />
      <fieldset><legend>Health check</legend><div class="row">
        <label>Kind <select name="hcKind" value=${hcKind} onChange=${(e: any) => setHcKind(e.currentTarget.value)}>
          <option value="">none</option><option value="tcp">tcp</option><option value="http">http</option><option value="grpc">grpc</option></select></label>
        ${hcKind ? html`<label>Port (0 = first Obj) <input name="hcPort" type="number" min="0" value=${hcPort} onInput=${(e: any) => setHcPort(e.currentTarget.value)} /></label>
          <label>Path / service <input name="hcPath" value=${hcPath} onInput=${(e: any) => setHcPath(e.currentTarget.value)} /></label>
          <label>Interval ms <input name="hcInterval" type="number" min="0" value=${hcInterval} onInput=${(e: any) => setHcInterval(e.currentTarget.value)} /></label>` : null}
      </div></fieldset>
      <${FieldError} error=${error} field="healthCheck" />
      <fieldset><legend>Launch (optional)</legend><div class="row">
        <label>Arguments, one per line <textarea name="launchArgs" rows="2" value=${argsText} onInput=${(e: any) => setArgsText(e.currentTarget.value)}></textarea></label>
        ${type !== "binary" ? html`<label>${type === "java" ? "JVM options" : "Node options"}, one per line
          <textarea name="runtimeOptions" rows="2" value=${runtimeOptsText} onInput=${(e: any) => setRuntimeOptsText(e.currentTarget.value)}></textarea></label>` : null}
      </div><div class="row">
        <label>Entry (default: the package's manifest) <input name="entry" value=${entry} onInput=${(e: any) => setEntry(e.currentTarget.value)} /></label>
        <label>Run as user (default: the agent's) <input name="runAsUser" value=${runAsUser} onInput=${(e: any) => setRunAsUser(e.currentTarget.value)} /></label>
      </div></fieldset>
      <${FieldError} error=${error} field="launch" />
      <${ErrorBanner} error=${nodes.error ?? (isFieldError(error, fields) ? undefined : error)} />
      <button type="submit" disabled=${busy}>${busy ? "Deploying…" : "Deploy"}</button>
    </form>
  </section>`;
}
