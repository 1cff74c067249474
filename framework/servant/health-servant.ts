/**
 * The standard grpc.health.v1 service, served on every adapter. Reports
 * SERVING for "" (the whole server), each hosted service's full name and
 * each Obj name while the application runs, NOT_SERVING once it is stopping.
 */
import { EventEmitter, once } from "node:events";
import { HealthServant } from "../gen/grpc/health/v1/health.sgrid";
import { HealthCheckResponse_ServingStatus as ServingStatus, type HealthCheckRequest, type HealthCheckResponse } from "../gen/grpc/health/v1/health";
import { NotFoundError } from "../errors";
import type { DeepPartial, ServerContext } from "../transport/base";

export { ServingStatus };

export class HealthService extends HealthServant {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly changes = new EventEmitter();

  constructor() {
    super();
    this.changes.setMaxListeners(0);
  }

  set(name: string, status: ServingStatus): void {
    if (this.statuses.get(name) === status) return;
    this.statuses.set(name, status);
    this.changes.emit("change", name);
  }

  /** Sets every known name to `status` (used at shutdown). */
  setAll(status: ServingStatus): void {
    for (const name of [...this.statuses.keys()]) this.set(name, status);
  }

  async check(request: HealthCheckRequest): Promise<DeepPartial<HealthCheckResponse>> {
    const status = this.statuses.get(request.service);
    if (status === undefined) throw new NotFoundError(`unknown service "${request.service}"`);
    return { status };
  }

  async *watch(request: HealthCheckRequest, ctx: ServerContext): AsyncIterable<DeepPartial<HealthCheckResponse>> {
    let last: ServingStatus | undefined;
    while (!ctx.signal.aborted) {
      const status = this.statuses.get(request.service) ?? ServingStatus.SERVICE_UNKNOWN;
      if (status !== last) {
        last = status;
        yield { status };
      }
      try {
        await once(this.changes, "change", { signal: ctx.signal });
      } catch {
        return;
      }
    }
  }
}
