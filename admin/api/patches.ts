/**
 * Patch versions (packages) of a server.
 *
 * GET    /api/patches/:application/:server                  -> {patches}
 * POST   /api/patches/:application/:server?comment=...      body: the .tgz itself (any Content-Type;
 *                                                            `x-sha256` optional, checked when sent) -> PatchInfo
 * PUT    /api/patches/:application/:server/:version/default -> PatchInfo
 * DELETE /api/patches/:application/:server/:version
 *
 * The upload is a raw body, not multipart: the page sends the File with
 * XMLHttpRequest (upload progress events) and nothing needs parsing.
 */
import * as fs from "node:fs";
import { z } from "zod";
import { check } from "../body";
import { PermissionDeniedError } from "sgridnext";
import { asUser, sessionOf, type AdminRouter } from "../context";
import { mayChange } from "../roles";
import { AdminUploadTooLargeError } from "../errors";
import { bufferUpload } from "../upload";
import { Application, Id, ServerName } from "./schemas";

const Ref = z.object({ application: Application, server: ServerName });
const VersionRef = Ref.extend({ version: Id });
const UploadQuery = z.object({ comment: z.string().max(1024, "comment is at most 1024 characters").default("") });
const Sha256 = z.string().regex(/^[0-9a-fA-F]{64}$/, "x-sha256 must be 64 hex digits").optional();

/** Bytes per Patch.Upload message (well under gRPC's 4 MiB default message limit). */
const CHUNK_BYTES = 256 * 1024;

export function patchRoutes(router: AdminRouter): void {
  router.get("/api/patches/:application/:server", async (ctx) => {
    const ref = check(Ref, ctx.params);
    ctx.body = await ctx.admin.registry.patch.list(ref, asUser(ctx));
  });

  router.post("/api/patches/:application/:server", async (ctx) => {
    const ref = check(Ref, ctx.params);
    const { comment } = check(UploadQuery, ctx.query);
    const declared = check(Sha256, ctx.get("x-sha256") || undefined);
    const max = ctx.admin.options.maxUploadBytes;
    const length = Number(ctx.get("content-length") || "0");
    if (length > max) {
      // Refused before reading: the connection closes rather than swallow the body.
      ctx.set("Connection", "close");
      throw new AdminUploadTooLargeError(`package is larger than the ${max} bytes allowed`, { field: "file", maxBytes: max });
    }
    const token = asUser(ctx); // 401 before a byte is buffered
    // The registry decides; this early check only spares buffering a package the registry would refuse.
    if (!mayChange(sessionOf(ctx).roles, ref.application)) {
      ctx.set("Connection", "close");
      throw new PermissionDeniedError(`uploading a package of ${ref.application}.${ref.server} needs the operator role on ${ref.application}`);
    }
    const upload = await bufferUpload(ctx.req, { tmpDir: ctx.admin.options.tmpDir, maxBytes: max, declaredSha256: declared });
    try {
      const header = { application: ref.application, server: ref.server, sha256: upload.sha256, size: upload.size, comment };
      async function* messages() {
        yield { kind: { $case: "header" as const, value: header } };
        for await (const data of fs.createReadStream(upload.file, { highWaterMark: CHUNK_BYTES })) {
          yield { kind: { $case: "data" as const, value: data as Buffer } };
        }
      }
      ctx.status = 201;
      ctx.body = await ctx.admin.registry.patch.upload(messages(), token);
      ctx.admin.log.info({ user: ctx.state.session?.user, ...ref, sha256: upload.sha256, size: upload.size }, "package uploaded");
    } finally {
      await upload.dispose();
    }
  });

  router.put("/api/patches/:application/:server/:version/default", async (ctx) => {
    const ref = check(VersionRef, ctx.params);
    ctx.body = await ctx.admin.registry.patch.setDefault(ref, asUser(ctx));
  });

  router.delete("/api/patches/:application/:server/:version", async (ctx) => {
    const ref = check(VersionRef, ctx.params);
    await ctx.admin.registry.patch.delete(ref, asUser(ctx));
    ctx.status = 204;
  });
}
