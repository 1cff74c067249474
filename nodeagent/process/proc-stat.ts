/**
 * Reading /proc: the identity of a process (pid + start time + boot id) and
 * its session, the facts adoption after an agent restart is checked against.
 *
 * All functions are synchronous on purpose: they are called right after
 * spawn(), before the event loop can reap a child that exited at once, so
 * that even a program that dies immediately still has a readable stat entry.
 * None of them throws for a process that is gone: they return null/false.
 */
import * as fs from "node:fs";

/** The fields of /proc/<pid>/stat the agent uses. */
export interface ProcStat {
  pid: number;
  /** Executable name as the kernel shows it (field 2, without parentheses). */
  comm: string;
  /** One-letter state (field 3): R, S, D, Z (zombie), X (dead), T, ... */
  state: string;
  /** Parent pid (field 4). */
  ppid: number;
  /** Process group id (field 5). */
  pgrp: number;
  /** Session id (field 6). */
  session: number;
  /** utime + stime in clock ticks (fields 14 + 15). */
  cpuTicks: number;
  /** Start time after boot in clock ticks (field 22); with the boot id it names one process for ever. */
  startTime: number;
}

/**
 * Parses the text of /proc/<pid>/stat. The command name (field 2) may hold
 * spaces and parentheses, so fields are counted from the LAST ")".
 * Returns null when the text is not a stat line.
 */
export function parseProcStat(text: string): ProcStat | null {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) return null;
  const pid = Number(text.slice(0, open).trim());
  const rest = text.slice(close + 2).split(" ");
  // rest[0] is field 3 (state); field N is rest[N - 3].
  if (rest.length < 20 || !Number.isInteger(pid)) return null;
  return {
    pid,
    comm: text.slice(open + 1, close),
    state: rest[0] ?? "?",
    ppid: Number(rest[1]),
    pgrp: Number(rest[2]),
    session: Number(rest[3]),
    cpuTicks: Number(rest[11]) + Number(rest[12]),
    startTime: Number(rest[19]),
  };
}

/** /proc/<pid>/stat of a process, or null when there is no such process. */
export function readProcStat(pid: number): ProcStat | null {
  try {
    return parseProcStat(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return null;
  }
}

/** True when the process exists and is not a zombie (a zombie has exited; only its parent has not reaped it). */
export function isLive(stat: ProcStat | null): stat is ProcStat {
  return stat !== null && stat.state !== "Z" && stat.state !== "X" && stat.state !== "x";
}

/** True when `pid` names a running (non-zombie) process. */
export function isPidLive(pid: number): boolean {
  return isLive(readProcStat(pid));
}

let bootIdCache: string | undefined;

/** This boot's id (/proc/sys/kernel/random/boot_id); a process handle from another boot is never adopted. */
export function readBootId(): string {
  bootIdCache ??= fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  return bootIdCache;
}

/** Every pid currently listed in /proc. */
export function listPids(): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync("/proc")) {
    const n = Number(name);
    if (Number.isInteger(n) && n > 0) out.push(n);
  }
  return out;
}

/** Resident memory of a process in bytes (VmRSS), 0 when unknown or gone. */
export function readRssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Clock ticks per second as seen by user space (USER_HZ, fixed at 100 on Linux). */
export const USER_HZ = 100;
