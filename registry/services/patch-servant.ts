/**
 * Patch API (Sgrid.Registry.PatchObj): packages of a server, numbered 1, 2,
 * 3... per server, stored by sha256 in the registry's PackageStorage.
 *
 * Auth: List and Download need a login token with role viewer on the
 * application; Upload, SetDefault and Delete need operator.
 *
 * Upload (client stream): the first message is the header (application,
 * server, sha256, size, comment), then the bytes. Everything that can be
 * checked from the header is checked before any byte is read: the caller's
 * role, names, the sha256's form, the comment's length, the server's
 * existence (NOT_FOUND), and the declared size against
 * `settings.maxPatchBytes` (PATCH_TOO_LARGE, RESOURCE_EXHAUSTED: a limit,
 * not a malformed request). While reading, more bytes than declared stop
 * the upload at once (PATCH_SIZE_MISMATCH); at the end, fewer bytes
 * (PATCH_SIZE_MISMATCH) or another sha256 (PATCH_CHECKSUM_MISMATCH, both
 * hashes in the message) refuse it, and so does a file that is not a
 * package (PATCH_INVALID: not gzip, damaged, no tar, no valid manifest; the
 * one check of package-check.ts, the same for every client). A refused upload leaves neither a file
 * nor a row. The event `patch.upload` names the user (never a token).
 *
 * Download (server stream): chunks of at most 64 KiB from `offset` (resume
 * after a broken download); the first chunk carries the package's size and
 * sha256 (also when `offset` equals the size: then it is the only chunk, with
 * no data); an offset past the size is PATCH_OFFSET_OUT_OF_RANGE.
 *
 * Delete is refused (FAILED_PRECONDITION, naming the users) while an
 * instance desires or runs the patch or it is the server's default; the
 * stored file is removed when no other patch has the same content.
 */
import { Readable } from "node:stream";
import { InvalidArgumentError, type DeepPartial, type ServerContext } from "sgridnext";
import { PatchServant as PatchServantBase } from "sgridnext/gen/sgrid/registry/v1/patch.sgrid";
import type { DownloadChunk, DownloadRequest, ListPatchesReply, ListPatchesRequest, PatchRef, UploadChunk, UploadHeader } from "sgridnext/gen/sgrid/registry/v1/patch";
import type { Empty, PatchInfo } from "sgridnext/gen/sgrid/registry/v1/types";
import type { AuthUser, RegistryContext } from "../server/context";
import { validate, type PatchRecord } from "../store";
import { PatchOffsetOutOfRangeError, PatchTooLargeError } from "./errors";
import { checkPackage } from "./package-check";
import { normalizeSha256 } from "./storage";

/** Largest data chunk of a download, bytes (64 KiB: well under gRPC's 4 MiB message limit, big enough to keep the per-message cost small). */
export const DOWNLOAD_CHUNK_BYTES = 64 * 1024;
/** Longest patch comment, characters (the store's limit). */
export const MAX_PATCH_COMMENT = 4096;

export function patchToInfo(p: PatchRecord, defaultPatchId: number | null): PatchInfo {
  return {
    id: p.id,
    application: p.application,
    server: p.server,
    version: p.version,
    sha256: p.sha256,
    size: p.size,
    comment: p.comment,
    uploader: p.uploader,
    createdAt: p.createdAt,
    isDefault: defaultPatchId === p.id,
    packageVersion: p.packageVersion,
  };
}

function names(req: { application: string; server: string }): { application: string; server: string } {
  return { application: validate.validateApplication(req.application), server: validate.validateServerName(req.server) };
}

function versionOf(req: { version: number }): number {
  return validate.validateId("patch version", req.version);
}

/** The data chunks after the header, as a byte stream; a second header is refused. */
function dataStream(rest: AsyncIterator<UploadChunk>): Readable {
  async function* bytes(): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        const next = await rest.next();
        if (next.done) return;
        const kind = next.value.kind;
        if (kind?.$case === "header") throw new InvalidArgumentError("upload: a second header arrived after the data started; send the header once, first");
        if (kind?.$case === "data" && kind.value.length > 0) yield kind.value;
      }
    } finally {
      // Stops the request stream when storage gives up early (size exceeded).
      await rest.return?.();
    }
  }
  return Readable.from(bytes(), { objectMode: false });
}

export class PatchServant extends PatchServantBase {
  constructor(private readonly ctx: RegistryContext) {
    super();
  }

  async upload(requests: AsyncIterable<UploadChunk>, call: ServerContext): Promise<DeepPartial<PatchInfo>> {
    const it = requests[Symbol.asyncIterator]();
    const first = await it.next();
    if (first.done || first.value.kind?.$case !== "header") {
      throw new InvalidArgumentError("upload: the first message must be the header (application, server, sha256, size, comment)");
    }
    const header: UploadHeader = first.value.kind.value;
    const { application, server } = names(header);
    const user = await this.ctx.auth.requireUser(call, { role: "operator", application });
    const sha256 = normalizeSha256(header.sha256);
    const size = validate.validateCount("patch size", header.size);
    const comment = validate.validateText("patch comment", header.comment, MAX_PATCH_COMMENT);
    const maxBytes = this.ctx.settings.maxPatchBytes;
    if (size > maxBytes) {
      throw new PatchTooLargeError(`patch of ${application}.${server}: declared size ${size} bytes is over the limit of ${maxBytes} bytes`, { application, server, size, maxBytes });
    }
    const srv = await this.ctx.store.servers.get(application, server); // NOT_FOUND naming the server
    // Held until the row is committed: a concurrent delete of another patch
    // with the same bytes must not remove the file this one is about to use.
    const release = this.ctx.storage.hold(sha256);
    let patch: PatchRecord;
    try {
      const stored = await this.ctx.storage.put(dataStream(it), { sha256, size, maxBytes });
      // The one package check, whichever client uploaded (PATCH_INVALID; the file is removed below).
      const { packageVersion } = await checkPackage(await this.ctx.storage.get(stored.key), { application, server, type: srv.type });
      try {
        patch = await this.ctx.store.patches.create({ application, server, sha256, size: stored.size, comment, uploader: user.name, storageKey: stored.key, packageVersion });
      } catch (err) {
        this.ctx.log.warn({ application, server, sha256, err: (err as Error).message }, "patch stored but its row could not be created: removing the file unless another patch uses it");
        throw err;
      }
    } catch (err) {
      release();
      // A file no patch references is removed (unless another upload of the same bytes holds it).
      await this.removeUnused(sha256);
      throw err;
    }
    release();
    this.ctx.changes.kick();
    await this.event(user, "patch.upload", patch, `uploaded version ${patch.version} of ${application}.${server} (${patch.size} bytes, sha256 ${patch.sha256})`);
    const after = await this.ctx.store.servers.get(application, server);
    return patchToInfo(patch, after.defaultPatchId);
  }

  async list(request: ListPatchesRequest, call: ServerContext): Promise<DeepPartial<ListPatchesReply>> {
    const { application, server } = names(request);
    await this.ctx.auth.requireUser(call, { role: "viewer", application });
    const srv = await this.ctx.store.servers.get(application, server);
    const patches = await this.ctx.store.patches.list(application, server);
    return { patches: patches.map((p) => patchToInfo(p, srv.defaultPatchId)) };
  }

  async *download(request: DownloadRequest, call: ServerContext): AsyncIterable<DeepPartial<DownloadChunk>> {
    const { application, server } = names(request);
    await this.ctx.auth.requireUser(call, { role: "viewer", application });
    const patch = await this.ctx.store.patches.getByVersion(application, server, versionOf(request));
    const offset = validate.validateCount("download offset", request.offset);
    if (offset > patch.size) {
      throw new PatchOffsetOutOfRangeError(`offset ${offset} is past the end of version ${patch.version} of ${application}.${server} (${patch.size} bytes)`, {
        application, server, version: patch.version, offset, size: patch.size,
      });
    }
    let first = true;
    const head = () => (first ? ((first = false), { size: patch.size, sha256: patch.sha256 }) : {});
    if (offset === patch.size) {
      yield { data: Buffer.alloc(0), offset, ...head() };
      return;
    }
    const source = await this.ctx.storage.get(patch.storageKey, offset);
    const abort = () => source.destroy();
    call.signal.addEventListener("abort", abort, { once: true });
    let at = offset;
    try {
      for await (const chunk of source as AsyncIterable<Buffer>) {
        for (let i = 0; i < chunk.length; i += DOWNLOAD_CHUNK_BYTES) {
          const data = chunk.subarray(i, i + DOWNLOAD_CHUNK_BYTES);
          yield { data, offset: at, ...head() };
          at += data.length;
        }
      }
    } finally {
      call.signal.removeEventListener("abort", abort);
      source.destroy();
    }
  }

  async setDefault(request: PatchRef, call: ServerContext): Promise<DeepPartial<PatchInfo>> {
    const { application, server } = names(request);
    const user = await this.ctx.auth.requireUser(call, { role: "operator", application });
    const patch = await this.ctx.store.patches.getByVersion(application, server, versionOf(request));
    const srv = await this.ctx.store.servers.update(application, server, { defaultPatchId: patch.id });
    this.ctx.changes.kick();
    await this.event(user, "patch.set_default", patch, `made version ${patch.version} the default patch of ${application}.${server}`);
    return patchToInfo(patch, srv.defaultPatchId);
  }

  async delete(request: PatchRef, call: ServerContext): Promise<DeepPartial<Empty>> {
    const { application, server } = names(request);
    const user = await this.ctx.auth.requireUser(call, { role: "operator", application });
    const found = await this.ctx.store.patches.getByVersion(application, server, versionOf(request));
    const { patch, storageKeyInUse } = await this.ctx.store.patches.remove(found.id);
    if (!storageKeyInUse) await this.removeUnused(patch.storageKey);
    this.ctx.changes.kick();
    await this.event(user, "patch.delete", patch, `deleted version ${patch.version} of ${application}.${server}`);
    return {};
  }

  /** Removes a package file no patch references; a failure is logged (the file only costs disk). */
  private async removeUnused(key: string): Promise<void> {
    try {
      await this.ctx.storage.removeUnused(key, () => this.ctx.store.patches.storageKeyInUse(key));
    } catch (err) {
      this.ctx.log.warn({ key, err: (err as Error).message }, "cannot remove an unused package file");
    }
  }

  /** Appends an event; a failure to log is reported, not thrown (the change is committed already). */
  private async event(user: AuthUser, kind: string, patch: PatchRecord, message: string): Promise<void> {
    try {
      await this.ctx.store.events.append({
        actor: user.name,
        kind,
        target: `${patch.application}.${patch.server}`,
        message,
        data: { version: patch.version, sha256: patch.sha256, size: patch.size },
      });
    } catch (err) {
      this.ctx.log.warn({ kind, target: `${patch.application}.${patch.server}`, err: (err as Error).message }, "event not recorded");
    }
  }
}
