/**
 * Server reflection: the servants every adapter (gRPC and native) hosts, and the client
 * helper that lists, describes and calls a service through them.
 */
import type { Servant } from "../servant/servant";
import type { ServiceDescriptor } from "../transport/base";
import { DescriptorIndex } from "./descriptor-index";
import { ReflectionV1AlphaService, ReflectionV1Service } from "./reflection-servant";

export { DescriptorIndex } from "./descriptor-index";
export { answerReflection, ReflectionV1AlphaService, ReflectionV1Service } from "./reflection-servant";

/**
 * The reflection servants (v1 and v1alpha) of one adapter, sharing one index
 * built on the first request from `hosted` (the adapter's other services;
 * the reflection services list and describe themselves too).
 */
export function reflectionServants(hosted: readonly ServiceDescriptor[]): Servant[] {
  let index: DescriptorIndex | undefined;
  const servants: Servant[] = [];
  const get = () => (index ??= new DescriptorIndex([...hosted, ...servants.map((s) => s.$service)]));
  servants.push(new ReflectionV1Service(get), new ReflectionV1AlphaService(get));
  return servants;
}
export { ReflectionClient, REFLECTION_CLIENT_DEFAULTS, type JsonCallOptions, type ReflectedMethod, type ReflectedService, type ReflectionClientOptions } from "./reflection-client";
