/**
 * `sgrid gateway <args>` as a bench child: the CLI's own command (cli/gateway.ts,
 * the same code `sgrid gateway` runs in production) in this process, plus the
 * bench's IPC: {ev: "ready", port, httpPort} once the command printed the
 * ports it serves (those lines are not printed), `cpu` answered with process.cpuUsage(). `exit`, or the
 * parent going away, is a SIGTERM to itself: the command stops the gateway and
 * exits 0, so a `--cpu-prof` profile is written.
 */
import { runCommand } from "sgridnext-tools/commands";
import { buildProgram } from "../../cli/main";

const args = process.argv.slice(2);
const wantsHttp = args.includes("--http");
let out = "";
let ready = false;
const write = process.stdout.write.bind(process.stdout) as (...a: unknown[]) => boolean;
process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => {
  if (!ready) {
    out += String(chunk);
    const grpc = /serving gRPC on \S+:(\d+)/.exec(out);
    const httpLine = /serving HTTP on \S+:(\d+)/.exec(out);
    if (grpc && (httpLine || !wantsHttp)) {
      ready = true;
      process.send!({ ev: "ready", port: Number(grpc[1]), httpPort: httpLine ? Number(httpLine[1]) : 0 });
    }
    return true; // the serving lines are for the bench, not the table
  }
  return write(chunk, ...rest);
}) as typeof process.stdout.write;

const stop = () => process.kill(process.pid, "SIGTERM");
process.on("message", (m: { cmd: string }) => {
  if (m.cmd === "cpu") process.send!({ ev: "cpu", cpu: process.cpuUsage() });
  else if (m.cmd === "exit") stop();
});
process.on("disconnect", stop);
// The command resolves once serving (or having failed to start: it printed why, and this child exits).
void runCommand(buildProgram("gateway"), [process.execPath, "sgrid", "gateway", ...args]).then(() => { if (!ready) process.exit(process.exitCode || 1); });
