/**
 * The agent's own files in `state/` besides the supervisor's records:
 * - desired.json: the last DesiredState from the registry, re-applied at
 *   start so that an agent restarted while the registry is away supervises
 *   on from it (writes serialised, atomic and durable);
 * - agent.json: the local channel's address, so that an agent asked for
 *   port 0 listens where its servants' SGRID_AGENT already points after a
 *   restart.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { getLogger } from "sgridnext";
import { DesiredState } from "sgridnext/gen/sgrid/registry/v1/node";
import { writeStateFile } from "../state";
import { LocalChannelServer, type LocalChannelOptions } from "./local-channel";

const log = getLogger("agent");

export class DesiredStateFile {
  private readonly file: string;
  private writing: Promise<void> = Promise.resolve();

  constructor(stateDir: string) {
    this.file = path.join(stateDir, "desired.json");
  }

  /** Persists `state` after the writes before it; a failure is logged (the state in memory is good). */
  save(state: DesiredState): void {
    const text = JSON.stringify({ version: 1, savedAt: new Date().toISOString(), desired: DesiredState.toJSON(state) });
    this.writing = this.writing.then(() => writeStateFile(this.file, text)).catch((err: unknown) => {
      log.error({ err: (err as Error).message }, "cannot persist the desired state");
    });
  }

  /** Resolves once every save has landed. */
  flush(): Promise<void> {
    return this.writing;
  }

  /** The persisted state, or undefined (none, or unreadable: logged). */
  async load(): Promise<DesiredState | undefined> {
    let text: string;
    try {
      text = await fs.promises.readFile(this.file, "utf8");
    } catch {
      return undefined;
    }
    try {
      const parsed = JSON.parse(text) as { version?: number; desired?: unknown };
      if (parsed.version !== 1 || parsed.desired === undefined) throw new Error(`unknown format version ${String(parsed.version)}`);
      return DesiredState.fromJSON(parsed.desired);
    } catch (err) {
      log.error({ file: this.file, err: (err as Error).message }, "ignoring an unreadable persisted desired state");
      return undefined;
    }
  }
}

/**
 * Starts the local channel on `wanted`; with port 0, first on the address
 * remembered in agent.json (servants started by an earlier agent point
 * there). Remembers where it listens.
 */
export async function startLocalChannel(stateDir: string, wanted: string, common: Omit<LocalChannelOptions, "listen">): Promise<LocalChannelServer> {
  const agentFile = path.join(stateDir, "agent.json");
  let remembered: string | undefined;
  try {
    remembered = (JSON.parse(await fs.promises.readFile(agentFile, "utf8")) as { agentListen?: string }).agentListen;
  } catch {
    remembered = undefined;
  }
  const host = wanted.slice(0, wanted.lastIndexOf(":"));
  const candidates: string[] = [];
  if (wanted.endsWith(":0") && remembered && remembered.slice(0, remembered.lastIndexOf(":")) === host) candidates.push(remembered);
  candidates.push(wanted);
  let lastErr: unknown;
  for (const listen of candidates) {
    const ch = new LocalChannelServer({ listen, ...common });
    try {
      const bound = await ch.start();
      if (listen !== wanted || remembered !== bound) {
        if (remembered && remembered !== bound) log.warn({ was: remembered, now: bound }, "local channel moved to another port; servants get the new SGRID_AGENT when next started");
        await writeStateFile(agentFile, JSON.stringify({ agentListen: bound }));
      }
      return ch;
    } catch (err) {
      lastErr = err;
      await ch.stop().catch(() => undefined);
    }
  }
  throw lastErr;
}
