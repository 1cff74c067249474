/**
 * The standard gRPC server reflection service, grpc.reflection.v1 and its
 * older twin v1alpha (same messages, what most tools still ask first),
 * served on every gRPC adapter: grpcurl, Postman or the admin console can
 * list the adapter's services and fetch their descriptors to call them with
 * JSON.
 *
 * A request the index cannot answer (unknown file, symbol or extension, or no
 * request at all) gets an `error_response` with its gRPC code on the same
 * stream, and the stream goes on serving, as the protocol asks.
 */
import type { ServerReflectionRequest as Request, ServerReflectionResponse as Response } from "../gen/grpc/reflection/v1/reflection";
import { ServerReflectionServant as V1Servant } from "../gen/grpc/reflection/v1/reflection.sgrid";
import { ServerReflectionServant as V1AlphaServant } from "../gen/grpc/reflection/v1alpha/reflection.sgrid";
import { Status } from "../status";
import type { DeepPartial, ServerContext } from "../transport/base";
import type { DescriptorIndex } from "./descriptor-index";

function error(code: Status, message: string): DeepPartial<Response>["messageResponse"] {
  return { $case: "errorResponse", value: { errorCode: code, errorMessage: message } };
}

function files(bytes: Uint8Array[] | undefined, what: string): DeepPartial<Response>["messageResponse"] {
  if (!bytes) return error(Status.NOT_FOUND, `${what} not found`);
  return { $case: "fileDescriptorResponse", value: { fileDescriptorProto: bytes.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)) } };
}

/** The answer to one reflection request. */
export function answerReflection(index: DescriptorIndex, request: Request): DeepPartial<Response> {
  const r = request.messageRequest;
  let messageResponse: DeepPartial<Response>["messageResponse"];
  switch (r?.$case) {
    case "listServices":
      messageResponse = { $case: "listServicesResponse", value: { service: index.services.map((name) => ({ name })) } };
      break;
    case "fileByFilename":
      messageResponse = files(index.fileWithImports(r.value), `file "${r.value}"`);
      break;
    case "fileContainingSymbol": {
      const file = index.fileOfSymbol(r.value);
      messageResponse = files(file === undefined ? undefined : index.fileWithImports(file), `symbol "${r.value}"`);
      break;
    }
    case "fileContainingExtension": {
      const { containingType, extensionNumber } = r.value;
      const file = index.fileOfExtension(containingType, extensionNumber);
      messageResponse = files(file === undefined ? undefined : index.fileWithImports(file), `extension ${extensionNumber} of "${containingType}"`);
      break;
    }
    case "allExtensionNumbersOfType": {
      const numbers = index.extensionNumbers(r.value);
      messageResponse = numbers
        ? { $case: "allExtensionNumbersResponse", value: { baseTypeName: r.value, extensionNumber: numbers } }
        : error(Status.NOT_FOUND, `type "${r.value}" not found`);
      break;
    }
    default:
      messageResponse = error(Status.INVALID_ARGUMENT, "empty reflection request: set one of file_by_filename, file_containing_symbol, file_containing_extension, all_extension_numbers_of_type, list_services");
  }
  return { validHost: request.host, originalRequest: request, messageResponse };
}

async function* serve(index: () => DescriptorIndex, requests: AsyncIterable<Request>, ctx: ServerContext): AsyncIterable<DeepPartial<Response>> {
  for await (const request of requests) {
    if (ctx.signal.aborted) return;
    yield answerReflection(index(), request);
  }
}

/** grpc.reflection.v1.ServerReflection over an adapter's index (built on first use). */
export class ReflectionV1Service extends V1Servant {
  constructor(private readonly index: () => DescriptorIndex) {
    super();
  }

  serverReflectionInfo(requests: AsyncIterable<Request>, ctx: ServerContext): AsyncIterable<DeepPartial<Response>> {
    return serve(this.index, requests, ctx);
  }
}

/** grpc.reflection.v1alpha.ServerReflection: the same answers under the older package name. */
export class ReflectionV1AlphaService extends V1AlphaServant {
  constructor(private readonly index: () => DescriptorIndex) {
    super();
  }

  serverReflectionInfo(requests: AsyncIterable<Request>, ctx: ServerContext): AsyncIterable<DeepPartial<Response>> {
    return serve(this.index, requests, ctx);
  }
}
