/**
 * Base of every generated `<Service>Servant`. A servant is one implementation
 * of one service; the Application serves it as an Obj on one or more adapters.
 */
import type { ServiceDescriptor } from "../transport/base";

export abstract class Servant {
  /** Set by the generated subclass. */
  abstract readonly $service: ServiceDescriptor;
}
