/**
 * Public surface of the native `sgrid` transport (framed TCP, multiplexed,
 * writes coalesced per tick). The transport registry (`../index.ts`)
 * registers the factories below for protocol `sgrid`; the rest is for tests,
 * benchmarks and callers that build channels with their own options (TLS CA,
 * limits).
 */
export { SgridChannel, sgridClientFactory } from "./client";
export { SgridServerTransport, sgridServerFactory, type SgridServerStats } from "./server";
export {
  SGRID_CLIENT_DEFAULTS, SGRID_SERVER_DEFAULTS, resolveClientOptions, resolveServerOptions,
  type SgridClientOptions, type SgridClientTlsOptions, type SgridServerOptions, type SgridServerTlsOptions,
} from "./options";
export { FrameType, Flag, HEADER_SIZE, MAGIC, VERSION, type CloseReason } from "./protocol";
