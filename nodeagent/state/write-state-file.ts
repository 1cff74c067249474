/**
 * The agent's durable writes: sgridnext's crash-safe {@link writeFileAtomic}
 * (temp file, fsync, rename, directory fsync), with a failure reported as
 * StateWriteError naming the file.
 */
import { writeFileAtomic } from "sgridnext";
import { StateWriteError } from "../errors";

/** Replaces `file` with `data` atomically and durably (mode 0600 unless given). Rejects with StateWriteError; the old content stays. */
export async function writeStateFile(file: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  try {
    await writeFileAtomic(file, data, { mode });
  } catch (err) {
    throw new StateWriteError(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { file });
  }
}
