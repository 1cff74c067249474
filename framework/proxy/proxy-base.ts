/**
 * Base of every generated `<Service>Proxy`. Generated methods delegate to
 * `$invoker`; the `$` prefix keeps it clear of any method name a .proto can
 * declare.
 */
import type { ServiceDescriptor } from "../transport/base";
import type { Invoker } from "./invoker";

export abstract class ProxyBase {
  constructor(readonly $invoker: Invoker) {}
}

/** A generated proxy class. */
export interface ProxyClass<P extends ProxyBase> {
  new (invoker: Invoker): P;
  readonly service: ServiceDescriptor;
}
