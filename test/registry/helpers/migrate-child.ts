/**
 * Child process for the concurrent-migration test: opens the database given
 * as argv[2], prints "ready", waits for a line on stdin (so that every child
 * starts migrating at the same moment), migrates, prints the result as JSON
 * and exits. Not a test file itself.
 */
import { migrateLatest, openDatabase } from "../../../registry/store";

async function main(): Promise<void> {
  const url = process.argv[2];
  const db = await openDatabase(url);
  process.stdout.write("ready\n");
  await new Promise<void>((resolve) => process.stdin.once("data", () => resolve()));
  try {
    const result = await migrateLatest(db, { initialBackoffMs: 10, maxBackoffMs: 200, lockTimeoutMs: 30_000 });
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await db.destroy();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${err?.code ?? ""} ${err?.stack ?? err}\n`);
    process.exit(1);
  },
);
