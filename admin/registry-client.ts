/**
 * The admin app's only way out: the registry's Admin, Patch and Config APIs
 * over gRPC. Every call carries the session's registry token as
 * `authorization: Bearer <token>`; role checks happen in the registry.
 */
import { Communicator, type CallOptions } from "sgridnext";
import { AdminProxy } from "sgridnext/gen/sgrid/registry/v1/admin.sgrid";
import { ConfigProxy } from "sgridnext/gen/sgrid/registry/v1/config.sgrid";
import { PatchProxy } from "sgridnext/gen/sgrid/registry/v1/patch.sgrid";

export class RegistryClient {
  readonly admin: AdminProxy;
  readonly patch: PatchProxy;
  readonly config: ConfigProxy;
  private readonly communicator = new Communicator();

  /** `target`: registry endpoints, `host:port[,host:port]`. */
  constructor(target: string, timeoutMs: number) {
    this.admin = this.communicator.stringToProxy(AdminProxy, target, { timeoutMs });
    this.patch = this.communicator.stringToProxy(PatchProxy, target, { timeoutMs });
    this.config = this.communicator.stringToProxy(ConfigProxy, target, { timeoutMs });
  }

  /**
   * Call options for a user's call. `token` undefined = anonymous (Login).
   * `extra` adds a deadline or an AbortSignal (streams: aborted when the
   * browser goes away).
   */
  as(token: string | undefined, extra: Omit<CallOptions, "metadata"> & { clientAddress?: string } = {}): CallOptions {
    const metadata: Record<string, string> = {};
    if (token !== undefined) metadata.authorization = `Bearer ${token}`;
    // The browser's address, for the registry's own login limits and event log.
    if (extra.clientAddress) metadata["x-forwarded-for"] = extra.clientAddress;
    const { clientAddress: _c, ...rest } = extra;
    // Unary calls get the proxy's deadline (timeoutMs); streams none unless `extra` sets one.
    return { ...rest, metadata };
  }

  close(): void {
    this.communicator.close();
  }
}
