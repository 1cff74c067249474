/**
 * Downloaded packages, kept under `<dataDir>/cache/` by sha256.
 *
 * `<sha256>.tgz` is a package whose size and sha256 were verified;
 * `<sha256>.partial` is a download in progress. A download resumes from the
 * bytes already in the partial file (hashed again first, so the digest
 * covers every byte), and the file is moved into place only once the size
 * and digest match. A digest or size mismatch removes everything, so the
 * next attempt starts from zero; a download that fails or ends early keeps
 * what it got, so the next attempt resumes.
 *
 * The fetch function is injected (the registry client provides it); its
 * contract: yield the package's bytes starting at `offset`. `ensureStreaming`
 * also hands the bytes over as they are written, to unpack a package while
 * it downloads (./streamed-package.ts).
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { lazySchema } from "../lazy-schema";
import { hasExactly, isString } from "../plain-checks";
import { getLogger } from "sgridnext";
import { PackageChecksumError, PackageDownloadError, PackageSizeError } from "./errors";
import { checkSha256 } from "sgridnext";

const log = getLogger("agent.install");

/** Yields the bytes of the package `sha256` from byte `offset` to its end. */
export type PackageFetcher = (sha256: string, offset: number) => AsyncIterable<Uint8Array>;

/** What the registry says a package is. */
export interface PackageRef {
  /** sha256 of the package file, hex. */
  sha256: string;
  /** Size of the package file in bytes. */
  size: number;
}

export interface PackageCacheOptions {
  /** The agent's data dir; packages go to `<dataDir>/cache/`. Required. */
  dataDir: string;
  /** Default fetch function; each {@link PackageCache.ensure} call may pass its own. Default: none. */
  fetch?: PackageFetcher;
}

/** Checked at the agent's start without zod when plainly valid (exported for test/nodeagent/lazy-options.test.ts). */
export const packageCacheOptionsSchema = lazySchema((z) => z.object({
  dataDir: z.string().min(1),
  fetch: z.custom<PackageFetcher>((f) => typeof f === "function").optional(),
}), (v) => hasExactly(v, { dataDir: (x) => isString(x, 1), fetch: (f) => typeof f === "function" }, ["dataDir"]));

const refSchema = lazySchema((z) => z.object({ sha256: z.string(), size: z.number().int().nonnegative() }));

export class PackageCache {
  /** The cache directory, `<dataDir>/cache`. */
  readonly dir: string;
  private readonly fetch: PackageFetcher | undefined;
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(options: PackageCacheOptions) {
    const opts = packageCacheOptionsSchema.parse(options);
    this.dir = path.join(path.resolve(opts.dataDir), "cache");
    this.fetch = opts.fetch;
  }

  /** Path of the verified package file for `sha256` (whether or not it exists yet). */
  pathFor(sha256: string): string {
    return path.join(this.dir, `${checkSha256(sha256)}.tgz`);
  }

  /** True when a verified package with this sha256 is in the cache. */
  async has(sha256: string): Promise<boolean> {
    try {
      return (await fs.promises.stat(this.pathFor(sha256))).isFile();
    } catch {
      return false;
    }
  }

  /**
   * Returns the path of the verified package, downloading (or resuming) it
   * first when needed. Concurrent calls for the same sha256 share one
   * download. Rejects with PackageChecksumError / PackageSizeError (nothing
   * kept) or PackageDownloadError (retryable; partial bytes kept).
   */
  async ensure(ref: PackageRef, fetch?: PackageFetcher): Promise<string> {
    const { size } = refSchema.parse(ref);
    const sha256 = checkSha256(ref.sha256);
    const fetcher = fetch ?? this.fetch;
    // No await before the inflight map is consulted and set: concurrent callers share one download.
    const running = this.inflight.get(sha256);
    if (running) return running;
    const p = this.ensureOnce(sha256, size, fetcher).finally(() => this.inflight.delete(sha256));
    this.inflight.set(sha256, p);
    return p;
  }

  /**
   * Like {@link ensure}, and hands every byte of the package to `onBytes`, in
   * order from the first, as it is written (a resumed download's bytes on
   * disk first): what unpacks a package while it downloads
   * (./streamed-package.ts). The download waits for each `onBytes`, which
   * must not throw. Resolves with the path and whether `onBytes` was given
   * every byte: false when the package was in the cache already or another
   * call was downloading it (read the file then).
   */
  async ensureStreaming(ref: PackageRef, fetch: PackageFetcher | undefined, onBytes: (chunk: Uint8Array) => Promise<void> | void): Promise<{ path: string; streamed: boolean }> {
    const { size } = refSchema.parse(ref);
    const sha256 = checkSha256(ref.sha256);
    const running = this.inflight.get(sha256);
    if (running) return { path: await running, streamed: false };
    let streamed = false;
    const p = this.ensureOnce(sha256, size, fetch ?? this.fetch, onBytes, () => { streamed = true; }).finally(() => this.inflight.delete(sha256));
    this.inflight.set(sha256, p);
    return { path: await p, streamed };
  }

  /** Removes the package (and any partial download) for `sha256`. Idempotent. */
  async remove(sha256: string): Promise<void> {
    const final = this.pathFor(sha256);
    await fs.promises.rm(final, { force: true });
    await fs.promises.rm(partialOf(final), { force: true });
  }

  /** The verified packages in the cache. */
  async list(): Promise<PackageRef[]> {
    let names: string[];
    try {
      names = await fs.promises.readdir(this.dir);
    } catch {
      return [];
    }
    const out: PackageRef[] = [];
    for (const name of names) {
      const m = /^([0-9a-f]{64})\.tgz$/.exec(name);
      if (!m) continue;
      const st = await fs.promises.stat(path.join(this.dir, name)).catch(() => undefined);
      if (st?.isFile()) out.push({ sha256: m[1], size: st.size });
    }
    return out;
  }

  /** Removes every cached package not in `keep`; returns the sha256s removed. */
  async prune(keep: Iterable<string>): Promise<string[]> {
    const wanted = new Set([...keep].map((s) => s.toLowerCase()));
    const removed: string[] = [];
    for (const { sha256 } of await this.list()) {
      if (wanted.has(sha256) || this.inflight.has(sha256)) continue;
      await this.remove(sha256);
      removed.push(sha256);
    }
    return removed;
  }

  private async ensureOnce(sha256: string, size: number, fetcher: PackageFetcher | undefined, onBytes?: (chunk: Uint8Array) => Promise<void> | void, streaming?: () => void): Promise<string> {
    const final = this.pathFor(sha256);
    const existing = await fs.promises.stat(final).catch(() => undefined);
    if (existing?.isFile() && existing.size === size) return final;
    if (existing) {
      log.warn({ sha256, size: existing.size, expected: size }, "cached package has the wrong size; downloading it again");
      await fs.promises.rm(final, { force: true });
    }
    if (!fetcher) throw new TypeError("PackageCache: no fetch function given (options.fetch or ensure(ref, fetch))");
    const started = performance.now();
    await fs.promises.mkdir(this.dir, { recursive: true });
    const partial = partialOf(final);
    const hash = crypto.createHash("sha256");
    // From here on every byte goes to onBytes too.
    streaming?.();
    let offset = await hashExisting(partial, hash, size, onBytes);
    const resumedAt = offset;
    if (offset > 0) log.info({ sha256, offset, size }, "resuming package download");
    /** Time spent in sha256 over the downloaded bytes, ms (where a download's time goes: `npm run bench fanout`). */
    let hashMs = 0;
    const fh = await fs.promises.open(partial, "a");
    let overflow = false;
    /** Time in the final fsync of the download, ms. */
    let syncMs = 0;
    try {
      if (offset < size || size === 0) {
        try {
          for await (const chunk of fetcher(sha256, offset)) {
            if (offset + chunk.length > size) {
              overflow = true;
              break;
            }
            const h = performance.now();
            hash.update(chunk);
            hashMs += performance.now() - h;
            if (onBytes) await Promise.all([fh.write(chunk), onBytes(chunk)]);
            else await fh.write(chunk);
            offset += chunk.length;
          }
        } catch (err) {
          throw new PackageDownloadError(`download of package ${sha256} failed after ${offset} of ${size} bytes: ${(err as Error)?.message ?? String(err)}`, { sha256, offset, size }, err);
        }
      }
      const s = performance.now();
      await fh.sync();
      syncMs = performance.now() - s;
    } finally {
      await fh.close();
    }
    if (overflow) {
      await fs.promises.rm(partial, { force: true });
      throw new PackageSizeError(`package ${sha256} is larger than the announced ${size} bytes; discarded`, { sha256, size });
    }
    if (offset < size) {
      throw new PackageDownloadError(`download of package ${sha256} ended early: ${offset} of ${size} bytes (kept for resuming)`, { sha256, offset, size });
    }
    const actual = hash.digest("hex");
    if (actual !== sha256) {
      await fs.promises.rm(partial, { force: true });
      throw new PackageChecksumError(`package checksum mismatch: expected sha256 ${sha256}, got ${actual}; the download was discarded`, { expected: sha256, actual, size });
    }
    await fs.promises.rename(partial, final);
    log.info({ sha256, size, resumedAt, ms: Math.round(performance.now() - started), hashMs: Math.round(hashMs), syncMs: Math.round(syncMs) }, "package downloaded and verified");
    return final;
  }
}

function partialOf(final: string): string {
  return final.replace(/\.tgz$/, ".partial");
}

/**
 * Feeds the bytes already in a partial download to `hash` and returns how
 * many there are; a partial file longer than the package is thrown away.
 */
async function hashExisting(partial: string, hash: crypto.Hash, size: number, onBytes?: (chunk: Uint8Array) => Promise<void> | void): Promise<number> {
  const st = await fs.promises.stat(partial).catch(() => undefined);
  if (!st) return 0;
  if (!st.isFile() || st.size > size) {
    await fs.promises.rm(partial, { force: true, recursive: true });
    return 0;
  }
  let n = 0;
  for await (const chunk of fs.createReadStream(partial)) {
    hash.update(chunk as Buffer);
    n += (chunk as Buffer).length;
    await onBytes?.(chunk as Buffer);
  }
  return n;
}
