/**
 * Run-as: a user name from an instance's launch options to the uid and gid
 * the process wrangler drops to (via setpriv). Looked up in /etc/passwd
 * (no native getpwnam in Node); a numeric name is taken as a uid and its
 * primary group looked up the same way. An unknown user is a
 * LaunchConfigError, reported on the instance, never a silent run as root.
 */
import * as fs from "node:fs";
import { LaunchConfigError } from "../launch";

export interface RunAs {
  uid: number;
  gid: number;
}

/** Resolves `user` against a passwd file (default /etc/passwd). Throws LaunchConfigError for an unknown user. */
export function resolveRunAs(user: string, passwdFile = "/etc/passwd"): RunAs {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\$?$/.test(user)) {
    throw new LaunchConfigError(`run-as user ${JSON.stringify(user)} is not a valid user name`, { user });
  }
  let text: string;
  try {
    text = fs.readFileSync(passwdFile, "utf8");
  } catch (err) {
    throw new LaunchConfigError(`cannot look up run-as user ${user}: ${(err as Error).message}`, { user });
  }
  const numeric = /^\d+$/.test(user);
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 4) continue;
    if ((numeric ? f[2] : f[0]) !== user) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (Number.isInteger(uid) && Number.isInteger(gid)) return { uid, gid };
  }
  throw new LaunchConfigError(`run-as user ${user} does not exist on this node`, { user });
}
