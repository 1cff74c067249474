/**
 * Releases on this node: a desired patch is downloaded into the package
 * cache (sha256 checked) and unpacked into `releases/<version>` by the
 * server's ReleaseManager as it arrives (accepted once verified:
 * ../install/streamed-package.ts), and old releases and packages are pruned.
 *
 * A package that cannot be downloaded, verified or unpacked never touches
 * the running version: the failure is kept as a note (reported as the
 * instance's lastExitReason with event "install_failed"). A retryable one
 * (download or disk trouble) is retried with backoff; a refused one (the
 * package itself is bad) is not retried until the desired patch changes.
 */
import * as fs from "node:fs";
import { Backoff, getLogger, SgridError } from "sgridnext";
import type { InstanceDesired } from "sgridnext/gen/sgrid/registry/v1/node";
import { PackageCache, PackageManifestError, ReleaseManager, streamPackage, type PackageFetcher, type PackageManifest } from "../install";
import { patchVersion, serverType } from "./desired-mapper";
import type { ObservedEvent } from "./observed-mapper";
import type { ResolvedNodeAgentOptions } from "./options";

const log = getLogger("agent");

/** Why the desired version of an instance is not installed. */
export interface InstallNote {
  sha256: string;
  version: string;
  message: string;
  retryable: boolean;
}

export interface InstallerDeps {
  options: Readonly<ResolvedNodeAgentOptions>;
  cache: PackageCache;
  /** Where a patch's bytes come from (the registry session). */
  fetcher: (patchId: number) => PackageFetcher;
  /** The instance's observed state changed (a note was added or changed). */
  changed: (id: string, event: ObservedEvent) => void;
  /** Reconciles the instance again (a retry is due). */
  retry: (id: string) => void;
}

export class Installer {
  private readonly notesById = new Map<string, InstallNote>();
  private readonly retries = new Map<string, { timer: NodeJS.Timeout; backoff: Backoff }>();
  private readonly releases = new Map<string, ReleaseManager>();

  constructor(private readonly d: InstallerDeps) {}

  /** The install failure of an instance's desired version, if any. */
  note(id: string): InstallNote | undefined {
    return this.notesById.get(id);
  }

  /** True when this package was refused before: the same bytes would be refused again. */
  refused(id: string, sha256: string): boolean {
    const note = this.notesById.get(id);
    return !!note && note.sha256 === sha256 && !note.retryable;
  }

  /** The desired version installed: the note (if any) goes, and with it a pending retry. Returns whether there was a note. */
  installed(id: string): boolean {
    this.clearRetry(id);
    return this.notesById.delete(id);
  }

  /** The instance is gone from this node. */
  forget(id: string): void {
    this.clearRetry(id);
    this.notesById.delete(id);
  }

  /** Cancels every pending retry (shutdown). */
  stop(): void {
    for (const r of this.retries.values()) clearTimeout(r.timer);
    this.retries.clear();
  }

  releaseManager(app: string, server: string): ReleaseManager {
    const key = `${app}.${server}`;
    let rm = this.releases.get(key);
    if (!rm) {
      rm = new ReleaseManager({ dataDir: this.d.options.dataDir, app, server, limits: this.d.options.unpackLimits });
      this.releases.set(key, rm);
    }
    return rm;
  }

  /** Makes sure release `version` is unpacked; returns its manifest. Rejects with the install errors. */
  async install(inst: InstanceDesired, rm: ReleaseManager, version: string): Promise<PackageManifest> {
    const type = serverType(inst);
    const patch = inst.patch!;
    const installed = await fs.promises.stat(rm.releaseDir(version)).then((s) => s.isDirectory(), () => false);
    if (!installed) {
      // Unpacked while it downloads (and read back from the cache file only when it is there already).
      const ref = { sha256: patch.sha256, size: patch.size };
      const pkg = (await this.d.cache.has(patch.sha256)) ? await this.d.cache.ensure(ref, this.d.fetcher(patch.id)) : streamPackage(this.d.cache, ref, this.d.fetcher(patch.id));
      const release = await rm.install(version, pkg, { type });
      return release.manifest;
    }
    const manifest = await rm.manifestOf(version);
    if (manifest.type !== type) throw new PackageManifestError(`release ${version} is of type ${manifest.type}, but the server is of type ${type}`, { type: manifest.type });
    return manifest;
  }

  /** Keeps why `version` could not be installed or launched; schedules a retry when it may work later. */
  recordFailure(id: string, inst: InstanceDesired, version: string, err: unknown): void {
    const e = err as Error & { code?: string; retryable?: boolean };
    const retryable = e instanceof SgridError ? e.retryable : false;
    // "refused" (the package itself is bad: not retried) vs "will retry" (download or disk trouble);
    // the registry's task runner fails a publish item at once on "version N refused".
    const message = `version ${version} ${retryable ? "not installed (will retry)" : "refused, not installed"}: ${e.code ? `${e.code}: ` : ""}${e.message ?? String(err)}`;
    const prev = this.notesById.get(id);
    this.notesById.set(id, { sha256: inst.patch?.sha256 ?? "", version, message, retryable });
    if (prev?.message !== message) {
      log.warn({ instanceId: id, version, err: message, retryable }, retryable ? "install failed; will retry" : "package refused; the running version stays");
      this.d.changed(id, "install_failed");
    }
    if (retryable) this.scheduleRetry(id);
  }

  /** A new desired patch: the next failure starts its backoff from the beginning. */
  clearRetry(id: string): void {
    const r = this.retries.get(id);
    if (r) clearTimeout(r.timer);
    this.retries.delete(id);
  }

  /** Reconciles `id` again after the next delay of its backoff. */
  scheduleRetry(id: string): void {
    let r = this.retries.get(id);
    if (r) clearTimeout(r.timer);
    const retry = this.d.options.installRetry;
    const backoff = r?.backoff ?? new Backoff({ initialMs: retry.initialMs, maxMs: retry.maxMs });
    const timer = setTimeout(() => this.d.retry(id), backoff.next());
    timer.unref();
    r = { timer, backoff };
    this.retries.set(id, r);
  }

  /**
   * Old releases of a server beyond keepReleases (never one an instance
   * wants or runs), and packages no instance wants.
   */
  async prune(rm: ReleaseManager, desired: ReadonlyMap<string, InstanceDesired>, runningVersion: (id: string) => string | undefined): Promise<void> {
    const inUse = new Set<string>();
    const shas = new Set<string>();
    for (const [id, inst] of desired) {
      if (inst.patch) shas.add(inst.patch.sha256);
      if (inst.application !== rm.app || inst.server !== rm.server) continue;
      if (inst.patch) inUse.add(patchVersion(inst.patch));
      const running = runningVersion(id);
      if (running) inUse.add(running);
    }
    try {
      await rm.prune(this.d.options.keepReleases, inUse);
      await this.d.cache.prune(shas);
    } catch (err) {
      log.warn({ server: `${rm.app}.${rm.server}`, err: (err as Error).message }, "pruning failed");
    }
  }
}
