/**
 * The admin app's only way out: the registry's Admin and Patch APIs
 * over gRPC. Every call carries the session's registry token as
 * `authorization: Bearer <token>`; role checks happen in the registry.
 */
import { ADMIN_APP_METADATA, Communicator, type CallOptions } from "sgridnext";
import { AdminProxy } from "sgridnext/gen/sgrid/registry/v1/admin.sgrid";
import { PatchProxy } from "sgridnext/gen/sgrid/registry/v1/patch.sgrid";

export class RegistryApis {
  readonly admin: AdminProxy;
  readonly patch: PatchProxy;
  private readonly communicator = new Communicator();

  /** `target`: registry endpoints, `host:port[,host:port]`. */
  constructor(target: string, timeoutMs: number) {
    this.admin = this.communicator.stringToProxy(AdminProxy, target, { timeoutMs });
    this.patch = this.communicator.stringToProxy(PatchProxy, target, { timeoutMs });
  }

  /**
   * Call options for a user's call. `token` undefined = anonymous (Login).
   * `extra` adds a deadline or an AbortSignal (streams: aborted when the
   * browser goes away).
   */
  as(token: string | undefined, extra: Omit<CallOptions, "metadata"> & { clientAddress?: string; appToken?: string } = {}): CallOptions {
    const metadata: Record<string, string> = {};
    if (token !== undefined) metadata.authorization = `Bearer ${token}`;
    // The browser's address, for the registry's own login limits and event
    // log; the registry believes it only with the admin app token.
    if (extra.clientAddress) metadata[ADMIN_APP_METADATA.FORWARDED_FOR] = extra.clientAddress;
    if (extra.appToken) metadata[ADMIN_APP_METADATA.TOKEN] = extra.appToken;
    const { clientAddress: _c, appToken: _a, ...rest } = extra;
    // Unary calls get the proxy's deadline (timeoutMs); streams none unless `extra` sets one.
    return { ...rest, metadata };
  }

  close(): void {
    this.communicator.close();
  }
}
