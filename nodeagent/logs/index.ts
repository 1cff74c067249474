/**
 * Public surface of the node agent's log pieces: copy-then-truncate
 * rotation of servants' stdout/stderr files, and bounded tails.
 */
export { rotateFile, rotateIfLarger, type RotateOptions } from "./rotate";
export { LogRotator, LOG_ROTATOR_DEFAULTS, type LogRotatorOptions } from "./log-rotator";
export { tail, TAIL_DEFAULTS, type TailOptions } from "./tail";
export { parseLogQuery, tailLogFiles, LOG_STREAMS, type LogQuery, type LogStream } from "./log-command";
