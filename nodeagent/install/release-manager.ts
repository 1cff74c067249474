/**
 * The releases of one server on this node.
 *
 * Layout under `<dataDir>/servers/<App>.<Server>/`:
 * ```
 * releases/<version>/     unpacked packages, read-only once activated
 * releases/.tmp-<v>-XXXX  an unpack in progress (renamed into place when it is accepted)
 * current -> releases/<version>   the active release (a relative symlink)
 * data/  conf/  logs/     kept across versions
 * ```
 * Contracts:
 * - `install` is all-or-nothing: a package is unpacked into a temporary
 *   directory and renamed into `releases/<version>/` only once every entry
 *   and the manifest are accepted. A refused package leaves nothing behind
 *   and never touches `current`. Installing a version that is already there
 *   is a no-op (a version names one package).
 * - `activate` switches `current` atomically (a new symlink renamed over the
 *   old one): at every instant `current` is the old or the new release.
 * - `prune` keeps the `keep` most recently installed or activated releases,
 *   plus `current`, plus any the caller protects (e.g. still running).
 * - Operations of one manager are serialised; use one manager per server
 *   directory per process.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { lazySchema } from "../lazy-schema";
import { checkName, checkVersion, getLogger, Mutex, type PackageManifest, type ServerType } from "sgridnext";
import { ReleaseNotFoundError } from "./errors";
import { readManifest, type ManifestSource } from "./manifest";
import { makeReadOnly, removeTree } from "./tree";
import type { StreamedPackage } from "./streamed-package";
import { DEFAULT_UNPACK_LIMITS, unpackPackage, type UnpackLimits, type UnpackStats } from "./unpack";

const log = getLogger("agent.install");

export interface ReleaseManagerOptions {
  /** The agent's data dir; the server lives in `<dataDir>/servers/<App>.<Server>/`. Required. */
  dataDir: string;
  /** Application name, e.g. `Demo`. Required. */
  app: string;
  /** Server name, e.g. `HelloServer`. Required. */
  server: string;
  /** Unpack limits; defaults 1 GiB unpacked and 100 000 entries ({@link DEFAULT_UNPACK_LIMITS}). */
  limits?: Partial<UnpackLimits>;
  /** Make a release read-only (chmod a-w, links untouched) when it is activated. Default true. */
  readOnly?: boolean;
}

export const RELEASE_MANAGER_DEFAULTS = Object.freeze({ readOnly: true, keep: 5 });

const optionsSchema = lazySchema((z) => z.object({
  dataDir: z.string().min(1),
  app: z.string(),
  server: z.string(),
  limits: z.object({
    maxBytes: z.number().int().positive().optional(),
    maxEntries: z.number().int().positive().optional(),
  }).optional(),
  readOnly: z.boolean().optional(),
}));

/** One installed release. */
export interface InstalledRelease {
  version: string;
  /** Absolute path of `releases/<version>`. */
  dir: string;
  manifest: PackageManifest;
  source: ManifestSource;
  /** True when the version was already installed and nothing was unpacked. */
  alreadyInstalled: boolean;
  /** Unpack figures; absent when `alreadyInstalled`. */
  stats?: UnpackStats;
}

export interface InstallOptions {
  /** The server's type as the registry knows it; a package of another type is refused. */
  type?: ServerType;
}

export interface ReleaseInfo {
  version: string;
  dir: string;
  /** Last install or activation, ms since the epoch (the directory's mtime). */
  mtimeMs: number;
}

export class ReleaseManager {
  readonly app: string;
  readonly server: string;
  /** `<dataDir>/servers/<App>.<Server>` */
  readonly serverDir: string;
  readonly releasesDir: string;
  /** The `current` symlink. */
  readonly currentLink: string;
  /** `data/`: the servant's own files, kept across versions. */
  readonly dataDir: string;
  /** `conf/`: config files pulled for the servant. */
  readonly confDir: string;
  /** `logs/`: stdout/stderr and the servant's own logs. */
  readonly logDir: string;
  private readonly limits: Readonly<UnpackLimits>;
  private readonly readOnly: boolean;
  private readonly mutex = new Mutex();

  constructor(options: ReleaseManagerOptions) {
    const opts = optionsSchema.parse(options);
    this.app = checkName("app", opts.app);
    this.server = checkName("server", opts.server);
    this.limits = Object.freeze({ ...DEFAULT_UNPACK_LIMITS, ...opts.limits });
    this.readOnly = opts.readOnly ?? RELEASE_MANAGER_DEFAULTS.readOnly;
    this.serverDir = path.join(path.resolve(opts.dataDir), "servers", `${this.app}.${this.server}`);
    this.releasesDir = path.join(this.serverDir, "releases");
    this.currentLink = path.join(this.serverDir, "current");
    this.dataDir = path.join(this.serverDir, "data");
    this.confDir = path.join(this.serverDir, "conf");
    this.logDir = path.join(this.serverDir, "logs");
  }

  /** Absolute path of `releases/<version>` (whether or not it is installed). */
  releaseDir(version: string): string {
    return path.join(this.releasesDir, checkVersion(version));
  }

  /** Creates `releases/`, `data/`, `conf/` and `logs/` when missing. Idempotent. */
  async ensureLayout(): Promise<void> {
    for (const d of [this.releasesDir, this.dataDir, this.confDir, this.logDir]) await fs.promises.mkdir(d, { recursive: true });
  }

  /**
   * Unpacks the package (its file, or its bytes as they download:
   * ./streamed-package.ts, accepted only once they were verified) as release
   * `version` (see the file comment for the all-or-nothing contract). Rejects with the install
   * errors (PackageUnsafeError, PackageTooLargeError, PackageCorruptError,
   * PackageManifestError) naming the reason.
   */
  async install(version: string, pkg: string | StreamedPackage, options: InstallOptions = {}): Promise<InstalledRelease> {
    const streamed = typeof pkg === "string" ? undefined : pkg;
    let dir: string;
    try {
      dir = this.releaseDir(version);
    } catch (err) {
      streamed?.cancel();
      throw err;
    }
    return this.serialised(async () => {
      // Whatever happens here, the download is not left waiting for a reader.
      try {
        return await this.installLocked(version, dir, pkg, options);
      } finally {
        streamed?.cancel();
      }
    });
  }

  private async installLocked(version: string, dir: string, pkg: string | StreamedPackage, options: InstallOptions): Promise<InstalledRelease> {
    await this.ensureLayout();
    const expect = { app: this.app, server: this.server, type: options.type };
    if (await isDir(dir)) {
      const { manifest, source } = await readManifest(dir, expect);
      return { version, dir, manifest, source, alreadyInstalled: true };
    }
    const started = performance.now();
    const tmp = await fs.promises.mkdtemp(path.join(this.releasesDir, `.tmp-${version}-`));
    try {
      let stats: UnpackStats;
      /** From the last byte verified to the release accepted, ms (a streamed package's unpack overlaps its download). */
      let afterBytesMs: number | undefined;
      if (typeof pkg === "string") {
        stats = await unpackPackage(pkg, tmp, this.limits);
      } else {
        // Unpacked while it downloads; accepted only once every byte was verified. A failed
        // download's error wins over the unpacker's: damaged bytes are retried, not refused.
        let unpackErr: unknown;
        let got: UnpackStats | undefined;
        try {
          got = await unpackPackage(pkg.bytes, tmp, this.limits);
        } catch (err) {
          unpackErr = err;
          pkg.cancel();
        }
        await pkg.verified;
        if (unpackErr !== undefined || !got) throw unpackErr;
        stats = got;
        afterBytesMs = performance.now();
      }
      const { manifest, source } = await readManifest(tmp, expect);
      await fs.promises.chmod(tmp, 0o755);
      const now = new Date();
      await fs.promises.utimes(tmp, now, now);
      await fs.promises.rename(tmp, dir);
      const end = performance.now();
      log.info({
        app: this.app, server: this.server, version, entries: stats.entries, bytes: stats.bytes, ms: Math.round(end - started),
        streamed: typeof pkg !== "string", ...(afterBytesMs !== undefined ? { afterBytesMs: Math.round(end - afterBytesMs) } : {}),
      }, "release installed");
      return { version, dir, manifest, source, alreadyInstalled: false, stats };
    } catch (err) {
      await removeTree(tmp).catch((rmErr: unknown) => log.error({ err: rmErr, tmp }, "could not remove a refused unpack"));
      log.warn({ app: this.app, server: this.server, version, err: (err as Error).message }, "package refused");
      throw err;
    }
  }

  /** Makes `version` the current release (read-only first, when configured). Rejects with ReleaseNotFoundError. */
  async activate(version: string): Promise<void> {
    const dir = this.releaseDir(version);
    return this.serialised(async () => {
      if (!(await isDir(dir))) throw new ReleaseNotFoundError(`release ${version} of ${this.app}.${this.server} is not installed`, { version });
      if (this.readOnly) await makeReadOnly(dir);
      const now = new Date();
      await fs.promises.utimes(dir, now, now);
      const tmpLink = path.join(this.serverDir, `.current-${process.pid}-${Date.now().toString(36)}`);
      await fs.promises.symlink(path.join("releases", version), tmpLink);
      try {
        await fs.promises.rename(tmpLink, this.currentLink);
      } catch (err) {
        await fs.promises.rm(tmpLink, { force: true });
        throw err;
      }
      log.info({ app: this.app, server: this.server, version }, "release activated");
    });
  }

  /** The version `current` points to, or null when none is active. */
  async current(): Promise<string | null> {
    let target: string;
    try {
      target = await fs.promises.readlink(this.currentLink);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw err;
    }
    const parts = target.split("/");
    return parts.length === 2 && parts[0] === "releases" ? parts[1] : null;
  }

  /** Installed releases, most recently installed or activated first. */
  async list(): Promise<ReleaseInfo[]> {
    let names: string[];
    try {
      names = await fs.promises.readdir(this.releasesDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
    const out: ReleaseInfo[] = [];
    for (const name of names) {
      if (name.startsWith(".")) continue;
      const dir = path.join(this.releasesDir, name);
      const st = await fs.promises.lstat(dir).catch(() => undefined);
      if (st?.isDirectory()) out.push({ version: name, dir, mtimeMs: st.mtimeMs });
    }
    return out.sort((a, b) => b.mtimeMs - a.mtimeMs || b.version.localeCompare(a.version));
  }

  /** Reads the manifest of an installed release. */
  async manifestOf(version: string): Promise<PackageManifest> {
    const dir = this.releaseDir(version);
    if (!(await isDir(dir))) throw new ReleaseNotFoundError(`release ${version} of ${this.app}.${this.server} is not installed`, { version });
    return (await readManifest(dir, { app: this.app, server: this.server })).manifest;
  }

  /**
   * Removes releases beyond the `keep` most recent, never `current` nor a
   * version in `protect`; also removes leftovers of unpacks interrupted by a
   * crash. Returns the versions removed.
   */
  prune(keep: number = RELEASE_MANAGER_DEFAULTS.keep, protect: Iterable<string> = []): Promise<string[]> {
    if (!Number.isInteger(keep) || keep < 0) throw new TypeError(`prune: keep must be a non-negative integer, got ${keep}`);
    const protectedSet = new Set(protect);
    return this.serialised(async () => {
      const cur = await this.current();
      if (cur !== null) protectedSet.add(cur);
      const releases = await this.list();
      releases.slice(0, keep).forEach((r) => protectedSet.add(r.version));
      const removed: string[] = [];
      for (const r of releases) {
        if (protectedSet.has(r.version)) continue;
        await removeTree(r.dir);
        removed.push(r.version);
      }
      await this.removeLeftovers();
      if (removed.length > 0) log.info({ app: this.app, server: this.server, removed }, "old releases pruned");
      return removed;
    });
  }

  /** Removes `.tmp-*` unpack directories and `.current-*` links left by a crash. Called with the lock held. */
  private async removeLeftovers(): Promise<void> {
    for (const [dir, prefix] of [[this.releasesDir, ".tmp-"], [this.serverDir, ".current-"]] as const) {
      const names = await fs.promises.readdir(dir).catch(() => [] as string[]);
      for (const name of names) if (name.startsWith(prefix)) await removeTree(path.join(dir, name));
    }
  }

  private serialised<T>(fn: () => Promise<T>): Promise<T> {
    return this.mutex.run(fn);
  }
}

async function isDir(p: string): Promise<boolean> {
  const st = await fs.promises.lstat(p).catch(() => undefined);
  return st?.isDirectory() ?? false;
}
