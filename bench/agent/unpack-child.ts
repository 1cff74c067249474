/**
 * One process of the agent bench's unpack comparison: unpacks the package
 * at argv[2] into fresh folders under argv[3], argv[4] times in a row, and
 * prints the CPU (user + system, µs) of each unpack as JSON. The bench
 * starts it with and without V8's optimizing compiler (cli/agent-v8.ts):
 * the first unpack is what an agent pays for a publish after a quiet spell,
 * the later ones what it pays once V8 knows the code.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { unpackPackage } from "../../nodeagent/install/unpack";

async function main(): Promise<void> {
  const [pkg, dir, times] = process.argv.slice(2);
  const cpu: number[] = [];
  for (let i = 0; i < Number(times); i++) {
    const dest = path.join(dir!, `unpack-${i}`);
    fs.mkdirSync(dest, { recursive: true });
    const c0 = process.cpuUsage();
    await unpackPackage(pkg!, dest);
    const c = process.cpuUsage(c0);
    cpu.push(c.user + c.system);
    fs.rmSync(dest, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify(cpu)}\n`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
