export { generate, type GenerateOptions, type GenerateResult } from "./gen";
export { DEFAULT_TS_PROTO_OPTIONS } from "./ts-proto";
export { GENERATED_HEADER } from "./services";
