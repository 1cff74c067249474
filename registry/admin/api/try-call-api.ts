/**
 * Admin API: "try a call". The admin app calls the servant itself (through
 * server reflection, with JSON); the registry decides who may, says where
 * (the Obj's active endpoints) and keeps the event log of every call made.
 * Operator on the Obj's application for both. The event holds the actor,
 * Obj, method, endpoint, status and latency: never a request or reply body.
 */
import { InvalidArgumentError, type DeepPartial, type ServerContext } from "sgridnext";
import type { Empty } from "sgridnext/gen/sgrid/registry/v1/types";
import type { PrepareTryCallReply, PrepareTryCallRequest, RecordTryCallRequest } from "sgridnext/gen/sgrid/registry/v1/admin";
import { validate } from "../../store";
import type { AdminApiContext } from "./context";

/** Longest method name or status message the event log keeps, characters. */
const MAX_TEXT = 300;

function clip(s: string): string {
  return s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT)}…` : s;
}

export class TryCallApi {
  constructor(private readonly c: AdminApiContext) {}

  private async authorize(obj: string, call: ServerContext): Promise<{ full: string; user: string }> {
    const { application, server, obj: name } = validate.parseFullObjName(obj);
    const user = await this.c.user(call);
    this.c.requireApps(user, "operator", [application]);
    return { full: `${application}.${server}.${name}`, user: user.name };
  }

  async prepareTryCall(request: PrepareTryCallRequest, call: ServerContext): Promise<DeepPartial<PrepareTryCallReply>> {
    const { full } = await this.authorize(request.obj, call);
    const endpoints = (await this.c.store.endpoints.find(full)).filter((e) => e.active);
    // gRPC adapters first: server reflection is served there.
    endpoints.sort((a, b) => Number(b.protocol === "grpc") - Number(a.protocol === "grpc"));
    return {
      obj: full,
      active: endpoints.map((e) => ({ obj: e.obj, host: e.host, port: e.port, protocol: e.protocol, weight: e.weight, node: e.node, instanceId: e.instanceId, active: true })),
    };
  }

  async recordTryCall(request: RecordTryCallRequest, call: ServerContext): Promise<DeepPartial<Empty>> {
    const { full, user } = await this.authorize(request.obj, call);
    const method = clip(request.method.trim());
    if (!method) throw new InvalidArgumentError("method is required", { field: "method" });
    const status = clip(request.status.trim()) || "UNKNOWN";
    const latencyMs = Number.isFinite(request.latencyMs) && request.latencyMs >= 0 ? Math.round(request.latencyMs * 1000) / 1000 : 0;
    await this.c.event(user, "call.try", full, `${method} -> ${status} in ${latencyMs} ms`, {
      method, status, latencyMs, endpoint: clip(request.endpoint), ...(request.message ? { message: clip(request.message) } : {}),
    });
    return {};
  }
}
