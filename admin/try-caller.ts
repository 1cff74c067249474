/**
 * The admin process's own channel to servants, used by "try a call"
 * (api/try-call.ts): one Communicator per admin app, closed with it.
 */
import { Communicator } from "sgridnext";

export class TryCaller {
  readonly communicator = new Communicator();

  close(): void {
    this.communicator.close();
  }
}
