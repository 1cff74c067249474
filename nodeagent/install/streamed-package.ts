/**
 * A package unpacked while it downloads.
 *
 * The bytes the package cache writes to `cache/<sha256>.partial` are handed
 * to the unpacker as they arrive, so a package crosses the agent once: it is
 * not written whole and then read back from the cache to be unpacked, and
 * the unpack overlaps the download. The handoff is bounded: the download
 * waits while the unpacker is HANDOFF_BYTES behind (and the gRPC stream's
 * flow control holds the registry).
 *
 * Contracts:
 * - `bytes` yields every byte of the package in order from the first (a
 *   resumed download's bytes already on disk first; a package that was in
 *   the cache, or that another install was downloading, is read from its
 *   file), then ends once the package was verified; it throws the
 *   download's error (PackageDownloadError, PackageChecksumError,
 *   PackageSizeError) when the download fails.
 * - `verified` resolves with the cached package's path once every byte
 *   arrived and matched the announced size and sha256; otherwise it rejects
 *   with that error. The unpacker works on bytes not verified yet, which it
 *   treats as hostile anyway (./unpack.ts), into a temporary directory; the
 *   release is accepted only after `verified` resolved, and its error wins
 *   over the unpacker's (a damaged download is retried, not refused as a
 *   bad package: ./release-manager.ts).
 * - `cancel()`: the consumer reads no more. The download still runs to its
 *   end and is verified (so the cache holds the package, or the partial
 *   download to resume); nothing waits for the consumer. Idempotent.
 */
import * as fs from "node:fs";
import type { PackageCache, PackageFetcher, PackageRef } from "./package-cache";

/** Bytes the download may be ahead of the unpacker. */
export const HANDOFF_BYTES = 4 * 1024 * 1024;
/** Bytes per read when the package comes from its cached file. */
const FILE_READ_BYTES = 1024 * 1024;

export interface StreamedPackage {
  /** The package's bytes from the first, as they arrive; iterate once. */
  readonly bytes: AsyncIterable<Uint8Array>;
  /** The cached package's path once verified (size and sha256). */
  readonly verified: Promise<string>;
  /** The consumer reads no more; the download goes on to its end. */
  cancel(): void;
}

/** Downloads (or reads from the cache) the package `ref` and hands its bytes over as they come. */
export function streamPackage(cache: PackageCache, ref: PackageRef, fetch?: PackageFetcher): StreamedPackage {
  const handoff = new ByteHandoff(HANDOFF_BYTES);
  const verified = (async () => {
    const { path: file, streamed } = await cache.ensureStreaming(ref, fetch, (chunk) => handoff.push(chunk));
    if (!streamed) {
      for await (const chunk of fs.createReadStream(file, { highWaterMark: FILE_READ_BYTES })) {
        if (handoff.cancelled) break;
        await handoff.push(chunk as Buffer);
      }
    }
    return file;
  })();
  // Both ends handled here: a consumer that never awaits `verified` leaves no unhandled rejection.
  verified.then(() => handoff.end(), (err: unknown) => handoff.fail(err));
  return { bytes: handoff, verified, cancel: () => handoff.cancel() };
}

/** A bounded single-reader queue of byte chunks: push waits while `limit` bytes are queued. */
class ByteHandoff implements AsyncIterable<Uint8Array> {
  private readonly chunks: Uint8Array[] = [];
  private queued = 0;
  private ended = false;
  private failed = false;
  private error: unknown;
  cancelled = false;
  private wakeReader: (() => void) | undefined;
  private wakeWriter: (() => void) | undefined;

  constructor(private readonly limit: number) {}

  /** Queues a chunk; resolves once less than `limit` bytes wait for the reader (at once when cancelled). */
  async push(chunk: Uint8Array): Promise<void> {
    if (this.cancelled || this.ended) return;
    this.chunks.push(chunk);
    this.queued += chunk.length;
    this.wake("reader");
    while (this.queued >= this.limit && !this.cancelled) await new Promise<void>((resolve) => { this.wakeWriter = resolve; });
  }

  /** No more bytes: the reader ends once it has the queued ones. */
  end(): void {
    this.ended = true;
    this.wake("reader");
  }

  /** The reader throws `err` once it has the queued bytes. */
  fail(err: unknown): void {
    if (this.ended) return;
    this.failed = true;
    this.error = err;
    this.end();
  }

  cancel(): void {
    this.cancelled = true;
    this.chunks.length = 0;
    this.queued = 0;
    this.wake("writer");
  }

  private wake(who: "reader" | "writer"): void {
    const w = who === "reader" ? this.wakeReader : this.wakeWriter;
    if (who === "reader") this.wakeReader = undefined; else this.wakeWriter = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    try {
      for (;;) {
        const chunk = this.chunks.shift();
        if (chunk) {
          this.queued -= chunk.length;
          if (this.queued < this.limit) this.wake("writer");
          yield chunk;
          continue;
        }
        if (this.failed) throw this.error;
        if (this.ended) return;
        await new Promise<void>((resolve) => { this.wakeReader = resolve; });
      }
    } finally {
      this.cancel();
    }
  }
}
