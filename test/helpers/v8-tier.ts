/**
 * Whether V8's optimizing compiler runs in a process (cli/agent-v8.ts keeps
 * it out of the agent, and must not keep it out of the servants).
 *
 * OPTIMIZES_SOURCE is JavaScript that defines `optimizes()`, for a preload
 * or a servant's main file: it runs a hot function until V8 reports it
 * optimized (bit 4 of %GetOptimizationStatus, kOptimized), or a million
 * calls (V8 optimizes it within a few thousand when it may). The natives
 * syntax must be allowed when `optimizes()` is first called
 * (`--allow-natives-syntax`, on the command line or set at run time):
 * it is compiled then, from strings.
 */
export const OPTIMIZES_SOURCE = `function optimizes() {
  const status = new Function("f", "return %GetOptimizationStatus(f);");
  const hot = new Function("a", "let s = 0; for (let i = 0; i < a.length; i++) s += a.charCodeAt(i); return s;");
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 50000; i++) hot("hello world");
    if ((status(hot) & 16) !== 0) return true;
  }
  return false;
}`;
