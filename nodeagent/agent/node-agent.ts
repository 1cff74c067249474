/**
 * NodeAgent: the `sgrid node` process. Joins the registry session, the
 * package cache and releases, the launch specs, the NodeSupervisor and the
 * local servant channel.
 *
 *   registry ──DesiredState──> apply ──per instance──> download (cache, sha256)
 *                                                      -> unpack releases/<v> (safe)
 *                                                      -> DesiredSpec (launch by type)
 *                                                      -> NodeSupervisor.setDesired
 *   NodeSupervisor ──state──> ObservedBatch (changes) ──> registry
 *   heartbeat timer ──facts, load, usage per instance──> registry
 *   InstanceCommand ──"agent.tail_log" here, else the local channel──> CommandReply
 *
 * Contracts:
 * - Desired state is applied per instance on a private serial chain; a newer
 *   desired state for an instance being reconciled is applied right after
 *   (only the latest counts). Instances not listed are stopped and removed.
 * - A package that cannot be downloaded, verified, unpacked or started
 *   never touches the running version: the instance keeps running what it
 *   ran and reports the reason (lastExitReason, event "install_failed").
 *   Failed downloads are retried with backoff; refused packages are not
 *   retried until the desired patch changes.
 * - The last DesiredState is persisted (state/desired.json, atomically) and
 *   re-applied at start, so an agent restarted while the registry is away
 *   supervises on from it (the supervisor's own state re-adopts the
 *   processes; re-applying yields identical specs and restarts nothing).
 * - shutdown() leaves every servant running.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { Backoff, ENV, envRootCerts, getLogger, SgridError, useHostingLogLevel } from "sgridnext";
import { InstanceNotFoundError } from "../errors";
import {
  DesiredState, type Heartbeat, type InstanceCommand, type InstanceDesired, type InstanceObserved, type InstanceUsage, type NodeHello,
} from "sgridnext/gen/sgrid/registry/v1/node";
import { collectNodeFacts, agentVersion } from "../facts";
import { resolve as resolveHealthCheck } from "../health";
import { PackageCache, PackageManifestError, ReleaseManager, type PackageManifest } from "../install";
import { LogRotator, parseLogQuery, tailLogFiles } from "../logs";
import { writeStateFile } from "../state";
import { NodeSupervisor, type HealthCheckFactory, type InstanceState, type SupervisorOptions } from "../supervisor";
import { instanceKey, patchVersion, serverType, toDesiredSpec } from "./desired-mapper";
import { LocalChannelServer, LOCAL_CHANNEL_DEFAULTS } from "./local-channel";
import { classifyEvent, toInstanceObserved, type ObservedEvent } from "./observed-mapper";
import { resolveNodeAgentOptions, type NodeAgentOptions, type ResolvedNodeAgentOptions } from "./options";
import { RegistrySession } from "./registry-session";
import { Readiness, type ProbeTarget } from "./readiness";
import { loadAgentId } from "./agent-identity";

const log = getLogger("agent");

/** Lines returned by "agent.tail_log" when args names none. */
export const TAIL_LOG_DEFAULT_LINES = 100;

interface InstallNote {
  sha256: string;
  version: string;
  message: string;
  retryable: boolean;
}

interface Chain {
  running: Promise<void> | undefined;
  again: boolean;
}

/** Turns a health probe description made by the desired mapper into a check (http, tcp, grpc, or a registered kind). */
export const healthCheckFactory: HealthCheckFactory = (_instanceId, probe) => {
  const check = resolveHealthCheck(String(probe.kind));
  const target = { host: String(probe.host), port: Number(probe.port), path: probe.path as string | undefined, service: probe.service as string | undefined };
  return async (_signal, timeoutMs) => check.check(target, timeoutMs);
};

export class NodeAgent {
  readonly options: Readonly<ResolvedNodeAgentOptions>;
  readonly supervisor: NodeSupervisor;
  readonly cache: PackageCache;
  readonly stateDir: string;
  private readonly rotator: LogRotator;
  private channelRef: LocalChannelServer | undefined;
  private sessionRef: RegistrySession | undefined;
  private readonly desired = new Map<string, InstanceDesired>();
  private readonly releases = new Map<string, ReleaseManager>();
  private readonly notes = new Map<string, InstallNote>();
  private readonly chains = new Map<string, Chain>();
  private readonly retries = new Map<string, { timer: NodeJS.Timeout; backoff: Backoff }>();
  private readonly lastState = new Map<string, InstanceState>();
  /** Reported `active` only once serving (see readiness.ts). */
  private readonly readiness: Readiness;
  private readonly pendingObserved = new Map<string, ObservedEvent>();
  private readonly cpuSamples = new Map<string, { nanos: number; at: number }>();
  private flushScheduled = false;
  private servantRegistry = "";
  /** This agent's identity in hellos (./agent-identity.ts). */
  private agentId = "";
  private desiredWrite: Promise<void> = Promise.resolve();
  private started = false;
  private stopped = false;

  constructor(options: NodeAgentOptions) {
    useHostingLogLevel();
    this.options = resolveNodeAgentOptions(options);
    this.stateDir = path.join(this.options.dataDir, "state");
    this.readiness = new Readiness((id) => this.markChanged(id, ""), undefined, path.join(this.stateDir, "readiness.json"));
    const supervisor: SupervisorOptions = { healthCheckFactory, ...this.options.supervisor };
    this.supervisor = new NodeSupervisor({ stateDir: this.stateDir, cgroups: this.options.cgroups, process: this.options.process, supervisor });
    this.cache = new PackageCache({ dataDir: this.options.dataDir });
    this.rotator = new LogRotator(this.options.logRotation);
    this.servantRegistry = this.options.registry.join(",");
  }

  /** The local channel (after start()). */
  get channel(): LocalChannelServer {
    if (!this.channelRef) throw new Error("NodeAgent.start() has not completed");
    return this.channelRef;
  }

  /** The registry session (after start()). */
  get session(): RegistrySession {
    if (!this.sessionRef) throw new Error("NodeAgent.start() has not completed");
    return this.sessionRef;
  }

  /**
   * Re-adopts what runs (NodeSupervisor.start), opens the local channel,
   * re-applies the persisted desired state, and starts connecting to the
   * registry (in the background: resolves without a registry).
   */
  async start(): Promise<void> {
    if (this.started) return;
    this.checkRegistryTransport();
    this.started = true;
    // The data dir stays traversable (0755): servants run as other users must reach their releases.
    // Only state/ is private.
    await fs.promises.mkdir(this.options.dataDir, { recursive: true, mode: 0o755 });
    await fs.promises.mkdir(this.stateDir, { recursive: true, mode: 0o700 });
    this.agentId = await loadAgentId(this.stateDir);
    this.supervisor.on("state", (s) => {
      const event = classifyEvent(this.lastState.get(s.instanceId), s);
      this.lastState.set(s.instanceId, s.state);
      this.markChanged(s.instanceId, event);
    });
    await this.supervisor.start();
    for (const s of this.supervisor.observed()) this.lastState.set(s.instanceId, s.state);
    // Re-adopted servants that served before this agent restarted are reported as they were: active.
    await this.readiness.restore((id) => this.supervisor.get(id)?.observed().pid);
    this.channelRef = await this.startChannel();
    this.channelRef.on("ready", (id) => {
      const pid = this.supervisor.get(id)?.observed().pid;
      if (pid) this.readiness.markReady(id, pid);
    });
    this.rotator.start();
    this.sessionRef = new RegistrySession({
      endpoints: this.options.registry,
      token: this.options.token,
      backoff: this.options.backoff,
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      downloadIdleTimeoutMs: this.options.downloadIdleTimeoutMs,
      hello: () => this.hello(),
      fullObserved: () => this.fullObserved(),
      heartbeat: () => this.heartbeat(),
    });
    this.sessionRef.on("desired", (d) => this.applyDesired(d, true));
    this.sessionRef.on("command", (c) => void this.handleCommand(c));
    // Instances the supervisor resumed: rotate their logs even before the registry speaks.
    for (const id of this.supervisor.observed().map((o) => o.instanceId)) this.watchLogs(id);
    const saved = await this.loadDesired();
    if (saved) {
      log.info({ instances: saved.instances.length }, "re-applying the last desired state");
      this.applyDesired(saved, false);
    }
    this.sessionRef.start();
    log.info({ node: this.options.name, registry: this.options.registry, agent: this.channelRef.address, cgroups: this.supervisor.cgroups.name }, "node agent started");
  }

  /**
   * Stops talking to the registry and to servants and stops supervising,
   * leaving every servant running (the next agent re-adopts them).
   */
  async shutdown(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const r of this.retries.values()) clearTimeout(r.timer);
    this.retries.clear();
    await this.sessionRef?.stop();
    this.rotator.stop();
    this.readiness.stop();
    await this.readiness.flush();
    await this.channelRef?.stop();
    await Promise.all([...this.chains.values()].map((c) => c.running?.catch(() => undefined)));
    await this.desiredWrite;
    await this.supervisor.shutdown();
    log.info("node agent stopped; servants keep running");
  }

  /** Resolves once every instance's queued reconcile has finished (tests). */
  async idle(): Promise<void> {
    for (;;) {
      const running = [...this.chains.values()].map((c) => c.running).filter((p): p is Promise<void> => p !== undefined);
      if (running.length === 0) return;
      await Promise.all(running.map((p) => p.catch(() => undefined)));
    }
  }

  /** The observed state of every instance the agent knows, as sent to the registry. */
  fullObserved(): InstanceObserved[] {
    const ids = new Set([...this.desired.keys(), ...this.supervisor.observed().map((o) => o.instanceId)]);
    return [...ids].map((id) => this.observedOf(id, ""));
  }

  // ---- desired state -------------------------------------------------------------

  /** Applies a full desired state (see the file comment). Never throws. */
  applyDesired(state: DesiredState, persist: boolean): void {
    if (this.stopped) return;
    if (state.registry !== "") this.servantRegistry = state.registry;
    if (persist) this.saveDesired(state);
    const listed = new Set<string>();
    for (const inst of state.instances) {
      let id: string;
      try {
        id = instanceKey(inst.instanceId);
      } catch (err) {
        log.error({ err: (err as Error).message }, "ignoring an instance with a bad id in the desired state");
        continue;
      }
      listed.add(id);
      const prev = this.desired.get(id);
      this.desired.set(id, inst);
      if (prev?.patch?.sha256 !== inst.patch?.sha256) this.clearRetry(id);
      void this.schedule(id); // never rejects: reconcile errors are caught and retried inside
    }
    const known = new Set([...this.desired.keys(), ...this.supervisor.observed().map((o) => o.instanceId)]);
    for (const id of known) {
      if (listed.has(id)) continue;
      this.desired.delete(id);
      void this.schedule(id);
    }
  }

  private schedule(id: string): Promise<void> {
    let chain = this.chains.get(id);
    if (!chain) {
      chain = { running: undefined, again: false };
      this.chains.set(id, chain);
    }
    if (chain.running) {
      chain.again = true;
      return chain.running;
    }
    const c = chain;
    c.running = (async () => {
      do {
        c.again = false;
        try {
          await this.reconcile(id);
        } catch (err) {
          log.error({ instanceId: id, err: (err as Error)?.stack ?? String(err) }, "reconcile failed");
        }
      } while (c.again && !this.stopped);
    })().finally(() => {
      c.running = undefined;
      if (!this.desired.has(id)) this.chains.delete(id);
    });
    return c.running;
  }

  private async reconcile(id: string): Promise<void> {
    if (this.stopped) return;
    const inst = this.desired.get(id);
    if (!inst) {
      await this.removeInstance(id);
      return;
    }
    const sup = this.supervisor.get(id);
    if (!inst.patch) {
      if (sup?.desiredSpec && inst.state !== "active") await this.supervisor.setDesired(id, { ...sup.desiredSpec, state: "inactive" });
      this.markChanged(id, "");
      return;
    }
    const version = patchVersion(inst.patch);
    const rm = this.releaseManager(inst.application, inst.server);
    const note = this.notes.get(id);
    if (note && note.sha256 === inst.patch.sha256 && !note.retryable) {
      // Refused before; the same package would be refused again. Keep supervising what runs.
      if (sup?.desiredSpec && sup.desiredSpec.state !== inst.state && inst.state === "inactive") {
        await this.supervisor.setDesired(id, { ...sup.desiredSpec, state: "inactive" });
      }
      return;
    }
    let manifest: PackageManifest;
    try {
      manifest = await this.install(inst, rm, version);
    } catch (err) {
      this.recordInstallFailure(id, inst, version, err);
      return;
    }
    const token = sup?.desiredSpec?.launch.env?.[ENV.AGENT_TOKEN] ?? crypto.randomBytes(24).toString("hex");
    let spec;
    try {
      spec = await toDesiredSpec(inst, manifest, rm.releaseDir(version), version, {
        node: this.options.name, address: this.options.address, registry: this.servantRegistry, agent: this.channel.address,
        confDir: rm.confDir, logDir: rm.logDir, dataDir: rm.dataDir, nodePath: this.options.nodePath, javaPath: this.options.javaPath,
      }, token);
    } catch (err) {
      this.recordInstallFailure(id, inst, version, err);
      return;
    }
    if (this.notes.delete(id)) this.markChanged(id, "");
    this.clearRetry(id);
    if (spec.state === "active" && (await rm.current()) !== version) await rm.activate(version);
    this.watchLogs(id, spec.launch.stdoutPath, spec.launch.stderrPath);
    await this.supervisor.setDesired(id, spec);
    this.markChanged(id, "");
    await this.prune(rm);
  }

  /** Makes sure release `version` is unpacked; returns its manifest. Rejects with the install errors. */
  private async install(inst: InstanceDesired, rm: ReleaseManager, version: string): Promise<PackageManifest> {
    const type = serverType(inst);
    const patch = inst.patch!;
    const installed = await fs.promises.stat(rm.releaseDir(version)).then((s) => s.isDirectory(), () => false);
    if (!installed) {
      const file = await this.cache.ensure({ sha256: patch.sha256, size: patch.size }, this.session.fetcher(patch.id));
      const release = await rm.install(version, file, { type });
      return release.manifest;
    }
    const manifest = await rm.manifestOf(version);
    if (manifest.type !== type) throw new PackageManifestError(`release ${version} is of type ${manifest.type}, but the server is of type ${type}`, { type: manifest.type });
    return manifest;
  }

  private recordInstallFailure(id: string, inst: InstanceDesired, version: string, err: unknown): void {
    const e = err as Error & { code?: string; retryable?: boolean };
    const retryable = e instanceof SgridError ? e.retryable : false;
    // "refused" (the package itself is bad: not retried) vs "will retry" (download or disk trouble);
    // the registry's task runner fails a publish item at once on "version N refused".
    const message = `version ${version} ${retryable ? "not installed (will retry)" : "refused, not installed"}: ${e.code ? `${e.code}: ` : ""}${e.message ?? String(err)}`;
    const prev = this.notes.get(id);
    this.notes.set(id, { sha256: inst.patch?.sha256 ?? "", version, message, retryable });
    if (prev?.message !== message) {
      log.warn({ instanceId: id, version, err: message, retryable }, retryable ? "install failed; will retry" : "package refused; the running version stays");
      this.markChanged(id, "install_failed");
    }
    if (retryable) this.scheduleRetry(id);
  }

  private scheduleRetry(id: string): void {
    let r = this.retries.get(id);
    if (r) clearTimeout(r.timer);
    const backoff = r?.backoff ?? new Backoff({ initialMs: this.options.installRetry.initialMs, maxMs: this.options.installRetry.maxMs });
    const timer = setTimeout(() => void this.schedule(id), backoff.next());
    timer.unref();
    r = { timer, backoff };
    this.retries.set(id, r);
  }

  private clearRetry(id: string): void {
    const r = this.retries.get(id);
    if (r) clearTimeout(r.timer);
    this.retries.delete(id);
  }

  private async removeInstance(id: string): Promise<void> {
    this.clearRetry(id);
    this.notes.delete(id);
    this.channelRef?.disconnect(id);
    const spec = this.supervisor.get(id)?.desiredSpec;
    if (this.supervisor.get(id)) {
      log.info({ instanceId: id }, "instance no longer placed on this node; stopping and removing it");
      await this.supervisor.remove(id);
    }
    if (spec) {
      this.rotator.remove(spec.launch.stdoutPath);
      if (spec.launch.stderrPath) this.rotator.remove(spec.launch.stderrPath);
    }
    this.lastState.delete(id);
    this.cpuSamples.delete(id);
    this.pendingObserved.delete(id);
  }

  /** Old releases of a server beyond keepReleases (never one an instance uses), and packages no instance wants. */
  private async prune(rm: ReleaseManager): Promise<void> {
    const inUse = new Set<string>();
    const shas = new Set<string>();
    for (const [id, inst] of this.desired) {
      if (inst.patch) shas.add(inst.patch.sha256);
      if (inst.application !== rm.app || inst.server !== rm.server) continue;
      if (inst.patch) inUse.add(patchVersion(inst.patch));
      const running = this.supervisor.get(id)?.observed().version;
      if (running) inUse.add(running);
    }
    try {
      await rm.prune(this.options.keepReleases, inUse);
      await this.cache.prune(shas);
    } catch (err) {
      log.warn({ server: `${rm.app}.${rm.server}`, err: (err as Error).message }, "pruning failed");
    }
  }

  private releaseManager(app: string, server: string): ReleaseManager {
    const key = `${app}.${server}`;
    let rm = this.releases.get(key);
    if (!rm) {
      rm = new ReleaseManager({ dataDir: this.options.dataDir, app, server, limits: this.options.unpackLimits });
      this.releases.set(key, rm);
    }
    return rm;
  }

  private watchLogs(id: string, stdout?: string, stderr?: string): void {
    const spec = this.supervisor.get(id)?.desiredSpec;
    for (const f of [stdout ?? spec?.launch.stdoutPath, stderr ?? spec?.launch.stderrPath]) if (f) this.rotator.add(f);
  }

  // ---- observed state, hello, heartbeats -------------------------------------------------

  private markChanged(id: string, event: ObservedEvent): void {
    const prev = this.pendingObserved.get(id);
    if (prev === undefined || (prev === "" && event !== "")) this.pendingObserved.set(id, event);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      const batch = [...this.pendingObserved].map(([i, ev]) => this.observedOf(i, ev));
      this.pendingObserved.clear();
      if (batch.length > 0) this.sessionRef?.send({ kind: { $case: "observed", value: { instances: batch, full: false } } });
    });
  }

  private observedOf(id: string, event: string): InstanceObserved {
    const sup = this.supervisor.get(id);
    const note = this.notes.get(id);
    const inst = this.desired.get(id);
    if (sup) {
      const s = sup.observed();
      const reason = note && note.version !== s.version ? note.message : undefined;
      const out = { ...toInstanceObserved(s, { startedAt: sup.handle?.startedAt, reason }), event };
      if (out.state === "active" && s.pid !== null && !this.readiness.isReady(id, s.pid, this.probeTargets(id))) out.state = "activating";
      return out;
    }
    return {
      instanceId: Number(id), state: "inactive", pid: 0, version: 0, restarts: 0,
      lastExitReason: note?.message ?? (inst && !inst.patch ? "no patch version assigned to this instance" : ""),
      event, startedAt: 0,
    };
  }

  /** Where an instance's adapters should accept connections once it serves. */
  private probeTargets(id: string): ProbeTarget[] {
    const inst = this.desired.get(id);
    if (!inst) return [];
    return inst.adapters.filter((a) => a.port > 0).map((a) => ({ host: a.host === "" ? this.options.address : a.host, port: a.port }));
  }

  /**
   * Fails start with ConfigError when a grpcs:// registry is listed and
   * SGRID_TLS_CA names an unreadable bundle; warns once per plaintext
   * registry off loopback when the cluster token would cross the network
   * in the clear.
   */
  private checkRegistryTransport(): void {
    const registries = this.options.registry;
    if (registries.some((r) => r.startsWith("grpcs://"))) envRootCerts();
    if (!this.options.token) return;
    for (const r of registries) {
      if (r.startsWith("grpcs://")) continue;
      const host = r.replace(/^grpc:\/\//, "").replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
      if (host === "localhost" || host === "::1" || host.startsWith("127.")) continue;
      log.warn({ registry: r }, "the cluster token goes to this registry in plaintext: serve the registry with --tls-cert/--tls-key and list it as grpcs://host:port");
    }
  }

  private async hello(): Promise<NodeHello> {
    const facts = await collectNodeFacts();
    return { node: this.options.name, address: this.options.address, agentVersion: agentVersion(), hostInfoJson: JSON.stringify(facts), agentId: this.agentId };
  }

  private async heartbeat(): Promise<Heartbeat> {
    const facts = await collectNodeFacts();
    const usage: InstanceUsage[] = [];
    for (const o of this.supervisor.observed()) {
      if (o.pid === null) continue;
      try {
        const u = await this.supervisor.usage(o.instanceId);
        const now = Date.now();
        const prev = this.cpuSamples.get(o.instanceId);
        this.cpuSamples.set(o.instanceId, { nanos: u.cpuUsageNanos, at: now });
        const cores = prev && now > prev.at && u.cpuUsageNanos >= prev.nanos ? (u.cpuUsageNanos - prev.nanos) / ((now - prev.at) * 1e6) : 0;
        usage.push({ instanceId: Number(o.instanceId), memoryBytes: u.memoryBytes, cpuCoresUsed: Math.round(cores * 1000) / 1000 });
      } catch {
        // group gone between the listing and the read: nothing to report
      }
    }
    return { load1: facts.loadAvg[0], factsJson: JSON.stringify(facts), usage };
  }

  // ---- commands -------------------------------------------------------------------

  private async handleCommand(cmd: InstanceCommand): Promise<void> {
    const id = String(cmd.instanceId);
    let reply: { ok: boolean; output: string; error: string };
    try {
      if (cmd.command === "agent.tail_log") {
        reply = { ok: true, output: await this.tailLog(id, cmd.args), error: "" };
      } else {
        if (!this.supervisor.get(id)) throw new InstanceNotFoundError(`instance ${id} is not supervised on node ${this.options.name}`, { instanceId: id });
        reply = await this.channel.sendCommand(id, cmd.command, cmd.args, cmd.timeoutMs || LOCAL_CHANNEL_DEFAULTS.commandTimeoutMs);
      }
    } catch (err) {
      const e = err as Error & { code?: string };
      reply = { ok: false, output: "", error: `${e.code ? `${e.code}: ` : ""}${e.message}` };
    }
    this.sessionRef?.send({ kind: { $case: "reply", value: { requestId: cmd.requestId, ...reply } } });
  }

  /** The last lines of an instance's stdout or stderr log ("agent.tail_log"; arguments: nodeagent/logs/log-command.ts). */
  async tailLog(id: string, args: string): Promise<string> {
    const spec = this.supervisor.get(id)?.desiredSpec;
    if (!spec) throw new InstanceNotFoundError(`instance ${id} is not supervised on node ${this.options.name}`, { instanceId: id });
    return tailLogFiles(spec.launch, parseLogQuery(args, TAIL_LOG_DEFAULT_LINES));
  }

  // ---- local channel and persisted agent state -------------------------------------------

  private async startChannel(): Promise<LocalChannelServer> {
    const common = {
      tokenOf: (id: string) => this.supervisor.get(id)?.desiredSpec?.launch.env?.[ENV.AGENT_TOKEN],
      onKeepalive: (id: string) => void this.supervisor.keepalive(id),
      keepaliveIntervalMs: (id: string) => {
        const t = this.supervisor.get(id)?.desiredSpec?.keepalive?.timeoutMs;
        return t === undefined ? LOCAL_CHANNEL_DEFAULTS.keepaliveIntervalMs : Math.max(100, Math.min(LOCAL_CHANNEL_DEFAULTS.keepaliveIntervalMs, Math.floor(t / 3)));
      },
    };
    const agentFile = path.join(this.stateDir, "agent.json");
    const wanted = this.options.agentListen;
    let remembered: string | undefined;
    try {
      remembered = (JSON.parse(await fs.promises.readFile(agentFile, "utf8")) as { agentListen?: string }).agentListen;
    } catch {
      remembered = undefined;
    }
    const host = wanted.slice(0, wanted.lastIndexOf(":"));
    const candidates: string[] = [];
    if (wanted.endsWith(":0") && remembered && remembered.slice(0, remembered.lastIndexOf(":")) === host) candidates.push(remembered);
    candidates.push(wanted);
    let lastErr: unknown;
    for (const listen of candidates) {
      const ch = new LocalChannelServer({ listen, ...common });
      try {
        const bound = await ch.start();
        if (listen !== wanted || remembered !== bound) {
          if (remembered && remembered !== bound) log.warn({ was: remembered, now: bound }, "local channel moved to another port; servants get the new SGRID_AGENT when next started");
          await writeStateFile(agentFile, JSON.stringify({ agentListen: bound }));
        }
        return ch;
      } catch (err) {
        lastErr = err;
        await ch.stop().catch(() => undefined);
      }
    }
    throw lastErr;
  }

  private saveDesired(state: DesiredState): void {
    const file = path.join(this.stateDir, "desired.json");
    const text = JSON.stringify({ version: 1, savedAt: new Date().toISOString(), desired: DesiredState.toJSON(state) });
    this.desiredWrite = this.desiredWrite.then(() => writeStateFile(file, text)).catch((err: unknown) => {
      log.error({ err: (err as Error).message }, "cannot persist the desired state");
    });
  }

  private async loadDesired(): Promise<DesiredState | undefined> {
    const file = path.join(this.stateDir, "desired.json");
    let text: string;
    try {
      text = await fs.promises.readFile(file, "utf8");
    } catch {
      return undefined;
    }
    try {
      const parsed = JSON.parse(text) as { version?: number; desired?: unknown };
      if (parsed.version !== 1 || parsed.desired === undefined) throw new Error(`unknown format version ${String(parsed.version)}`);
      return DesiredState.fromJSON(parsed.desired);
    } catch (err) {
      log.error({ file, err: (err as Error).message }, "ignoring an unreadable persisted desired state");
      return undefined;
    }
  }
}
