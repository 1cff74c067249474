/**
 * NodeAgent: the `sgrid node` process, and its reconciler. Joins the
 * registry session, the installer (./installer.ts: package cache and
 * releases), the launch specs, the NodeSupervisor, the reporter
 * (./reporter.ts: hello, heartbeats, observed batches), admin commands
 * (./agent-commands.ts), its state files (./agent-state-files.ts) and the
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
import { ENV, envRootCerts, getLogger, parseHostPort, useHostingLogLevel } from "sgridnext";
import type { DesiredState, InstanceCommand, InstanceDesired, InstanceObserved } from "sgridnext/gen/sgrid/registry/v1/node";
import { resolve as resolveHealthCheck } from "../health";
import { PackageCache, type PackageManifest } from "../install";
import { LogRotator } from "../logs";
import { NodeSupervisor, type HealthCheckFactory, type InstanceState, type SupervisorOptions } from "../supervisor";
import { loadAgentId } from "./agent-identity";
import { runInstanceCommand, tailLog, TAIL_LOG_DEFAULT_LINES } from "./agent-commands";
import { DesiredStateFile, startLocalChannel } from "./agent-state-files";
import { instanceKey, patchVersion, toDesiredSpec } from "./desired-mapper";
import { Installer } from "./installer";
import { LOCAL_CHANNEL_DEFAULTS, type LocalChannelServer } from "./local-channel";
import { classifyEvent } from "./observed-mapper";
import { resolveNodeAgentOptions, type NodeAgentOptions, type ResolvedNodeAgentOptions } from "./options";
import { Readiness } from "./readiness";
import { RegistrySession } from "./registry-session";
import { ObservedReporter } from "./reporter";
import { PortGuard } from "./port-guard";

export { TAIL_LOG_DEFAULT_LINES };

const log = getLogger("agent");

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
  private readonly chains = new Map<string, Chain>();
  private readonly lastState = new Map<string, InstanceState>();
  /** Reported `active` only once serving (see readiness.ts). */
  private readonly readiness: Readiness;
  private readonly installer: Installer;
  private readonly reporter: ObservedReporter;
  /** Ports another program holds, per instance held back for it (./port-guard.ts). */
  private readonly ports = new PortGuard();
  private readonly desiredFile: DesiredStateFile;
  private servantRegistry = "";
  /** This agent's identity in hellos (./agent-identity.ts). */
  private agentId = "";
  private started = false;
  private stopped = false;

  constructor(options: NodeAgentOptions) {
    useHostingLogLevel();
    this.options = resolveNodeAgentOptions(options);
    this.stateDir = path.join(this.options.dataDir, "state");
    this.readiness = new Readiness((id) => this.reporter.changed(id, ""), undefined, path.join(this.stateDir, "readiness.json"));
    const supervisor: SupervisorOptions = { healthCheckFactory, ...this.options.supervisor };
    this.supervisor = new NodeSupervisor({ stateDir: this.stateDir, cgroups: this.options.cgroups, process: this.options.process, supervisor });
    this.cache = new PackageCache({ dataDir: this.options.dataDir });
    this.rotator = new LogRotator(this.options.logRotation);
    this.servantRegistry = this.options.registry.join(",");
    this.desiredFile = new DesiredStateFile(this.stateDir);
    this.installer = new Installer({
      options: this.options, cache: this.cache, fetcher: (patchId) => this.session.fetcher(patchId),
      changed: (id, event) => this.reporter.changed(id, event), retry: (id) => void this.schedule(id),
    });
    this.reporter = new ObservedReporter({
      options: this.options, supervisor: this.supervisor, readiness: this.readiness, desired: this.desired,
      note: (id) => this.installer.note(id), ports: this.ports, send: (msg) => this.sessionRef?.send(msg), agentId: () => this.agentId,
    });
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
      this.reporter.changed(s.instanceId, event);
    });
    await this.supervisor.start();
    for (const s of this.supervisor.observed()) this.lastState.set(s.instanceId, s.state);
    // Re-adopted servants that served before this agent restarted are reported as they were: active.
    await this.readiness.restore((id) => this.supervisor.get(id)?.observed().pid);
    this.channelRef = await this.startChannel();
    // Servants' call stats go up the session as they come (the registry keeps them per minute).
    this.channelRef.on("stats", (id, report) => this.sessionRef?.send({ kind: { $case: "stats", value: { instanceId: Number(id), report } } }));
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
      hello: () => this.reporter.hello(),
      fullObserved: () => this.reporter.fullObserved(),
      heartbeat: (withFacts) => this.reporter.heartbeat(withFacts),
    });
    this.sessionRef.on("desired", (d) => this.applyDesired(d, true));
    this.sessionRef.on("command", (c) => void this.handleCommand(c));
    // Instances the supervisor resumed: rotate their logs even before the registry speaks.
    for (const id of this.supervisor.observed().map((o) => o.instanceId)) this.watchLogs(id);
    const saved = await this.desiredFile.load();
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
    this.installer.stop();
    await this.sessionRef?.stop();
    this.rotator.stop();
    this.readiness.stop();
    await this.readiness.flush();
    await this.channelRef?.stop();
    await Promise.all([...this.chains.values()].map((c) => c.running?.catch(() => undefined)));
    await this.desiredFile.flush();
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
    return this.reporter.fullObserved();
  }

  // ---- desired state -------------------------------------------------------------

  /** Applies a full desired state (see the file comment). Never throws. */
  applyDesired(state: DesiredState, persist: boolean): void {
    if (this.stopped) return;
    if (state.registry !== "") this.servantRegistry = state.registry;
    if (persist) this.desiredFile.save(state);
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
      if (prev?.patch?.sha256 !== inst.patch?.sha256) this.installer.clearRetry(id);
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
      this.reporter.changed(id, "");
      return;
    }
    const version = patchVersion(inst.patch);
    const rm = this.installer.releaseManager(inst.application, inst.server);
    if (this.installer.refused(id, inst.patch.sha256)) {
      // Refused before; the same package would be refused again. Keep supervising what runs.
      if (sup?.desiredSpec && sup.desiredSpec.state !== inst.state && inst.state === "inactive") {
        await this.supervisor.setDesired(id, { ...sup.desiredSpec, state: "inactive" });
      }
      return;
    }
    let manifest: PackageManifest;
    try {
      manifest = await this.installer.install(inst, rm, version);
    } catch (err) {
      this.installer.recordFailure(id, inst, version, err);
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
      this.installer.recordFailure(id, inst, version, err);
      return;
    }
    const ports = await this.ports.beforeStart(id, inst.adapters, this.options.address, spec.state === "active" && !this.supervisor.get(id)?.observed().pid);
    if (ports.changed) this.reporter.changed(id, ports.first ? "port_in_use" : "");
    if (ports.hold) {
      log.warn({ instanceId: id, ports: this.ports.portsOf(id) }, "adapter port(s) in use by another program: instance not started");
      this.installer.scheduleRetry(id);
      return;
    }
    if (this.installer.installed(id)) this.reporter.changed(id, "");
    if (spec.state === "active" && (await rm.current()) !== version) await rm.activate(version);
    this.watchLogs(id, spec.launch.stdoutPath, spec.launch.stderrPath);
    await this.supervisor.setDesired(id, spec);
    this.reporter.changed(id, "");
    await this.installer.prune(rm, this.desired, (i) => this.supervisor.get(i)?.observed().version ?? undefined);
  }

  private async removeInstance(id: string): Promise<void> {
    this.installer.forget(id);
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
    this.ports.clear(id);
    this.reporter.forget(id);
  }

  private watchLogs(id: string, stdout?: string, stderr?: string): void {
    const spec = this.supervisor.get(id)?.desiredSpec;
    for (const f of [stdout ?? spec?.launch.stdoutPath, stderr ?? spec?.launch.stderrPath]) if (f) this.rotator.add(f);
  }

  // ---- registry transport ---------------------------------------------------------

  /**
   * Fails start with ConfigError when a grpcs:// or sgrids:// registry is listed and
   * SGRID_TLS_CA names an unreadable bundle; warns once per plaintext
   * registry off loopback when the cluster token would cross the network
   * in the clear.
   */
  private checkRegistryTransport(): void {
    // Each is valid by now (the options' REGISTRY_ENDPOINT), so it parses.
    const registries = this.options.registry.map((r) => ({ text: r, ep: parseHostPort(r) }));
    if (registries.some((r) => r.ep.tls)) envRootCerts();
    if (!this.options.token) return;
    for (const { text: r, ep } of registries) {
      if (ep.tls) continue;
      const host = ep.host;
      if (host === "localhost" || host === "::1" || host.startsWith("127.")) continue;
      log.warn({ registry: r }, "the cluster token goes to this registry in plaintext: serve the registry with --tls-cert/--tls-key and list it as grpcs://host:port (or sgrids://host:port for its native port)");
    }
  }

  // ---- commands -------------------------------------------------------------------

  private async handleCommand(cmd: InstanceCommand): Promise<void> {
    const reply = await runInstanceCommand(cmd, { node: this.options.name, supervisor: this.supervisor, channel: () => this.channel });
    this.sessionRef?.send({ kind: { $case: "reply", value: { requestId: cmd.requestId, ...reply } } });
  }

  /** The last lines of an instance's stdout or stderr log ("agent.tail_log"; arguments: nodeagent/logs/log-command.ts). */
  tailLog(id: string, args: string): Promise<string> {
    return tailLog({ node: this.options.name, supervisor: this.supervisor }, id, args);
  }

  // ---- local channel -----------------------------------------------------------------

  private async startChannel(): Promise<LocalChannelServer> {
    const common = {
      tokenOf: (id: string) => this.supervisor.get(id)?.desiredSpec?.launch.env?.[ENV.AGENT_TOKEN],
      onKeepalive: (id: string) => void this.supervisor.keepalive(id),
      keepaliveIntervalMs: (id: string) => {
        const t = this.supervisor.get(id)?.desiredSpec?.keepalive?.timeoutMs;
        return t === undefined ? LOCAL_CHANNEL_DEFAULTS.keepaliveIntervalMs : Math.max(100, Math.min(LOCAL_CHANNEL_DEFAULTS.keepaliveIntervalMs, Math.floor(t / 3)));
      },
    };
    return startLocalChannel(this.stateDir, this.options.agentListen, common);
  }
}
