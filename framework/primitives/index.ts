/**
 * Small building blocks every part of Sgrid uses, each written once:
 * retry delays, a push-driven async queue, durable atomic file writes, a
 * per-key mutex, a non-overlapping periodic task and push reading of a
 * message stream, and the longest timer delay.
 */
export { Backoff, BACKOFF_DEFAULTS, type BackoffPolicy } from "./backoff";
export { AsyncQueue } from "./async-queue";
export { writeFileAtomic, readFileIfExists, readFileIfExistsSync, LatestWriter, type AtomicWriteOptions } from "./atomic-file";
export { KeyedMutex, Mutex } from "./keyed-mutex";
export { PeriodicTask, type PeriodicTaskOptions } from "./periodic-task";
export { eachMessage, PUSH_READ, type MessageResult, type PushReadable } from "./each-message";
export { MAX_TIMER_MS } from "./timers";
