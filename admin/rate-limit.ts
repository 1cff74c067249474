/**
 * Login rate limiting in the admin app (the registry limits too; this stops
 * a flood before it reaches the registry and keys on the browser's address,
 * which the registry never sees).
 *
 * Two sliding windows: attempts per client address per minute, and failures
 * per (user name, address) per 5 minutes (a success clears them). Neither
 * refuses another address: failing on purpose cannot lock anyone else out.
 * Both maps are bounded; the oldest key goes first, so a flood of random
 * names cannot grow memory.
 */
import { AdminLoginRateLimitedError } from "./errors";

const ADDRESS_WINDOW_MS = 60_000;
const USER_WINDOW_MS = 5 * 60_000;
/** Keys tracked per map; beyond this the oldest key is forgotten. */
const MAX_KEYS = 10_000;

class SlidingWindow {
  private readonly hits = new Map<string, number[]>();

  constructor(private readonly windowMs: number, private readonly limit: number) {}

  /** ms until the key may try again, or 0 when it is under the limit. */
  waitMs(key: string, now: number): number {
    const list = this.trim(key, now);
    if (list.length < this.limit) return 0;
    return list[0]! + this.windowMs - now;
  }

  add(key: string, now: number): void {
    const list = this.trim(key, now);
    list.push(now);
    this.hits.delete(key);
    this.hits.set(key, list);
    while (this.hits.size > MAX_KEYS) this.hits.delete(this.hits.keys().next().value as string);
  }

  clear(key: string): void {
    this.hits.delete(key);
  }

  private trim(key: string, now: number): number[] {
    const list = this.hits.get(key) ?? [];
    while (list.length > 0 && list[0]! <= now - this.windowMs) list.shift();
    if (list.length === 0) this.hits.delete(key);
    return list;
  }
}

function userKey(user: string, address: string): string {
  return `${user.toLowerCase()}\0${address}`;
}

export class LoginRateLimiter {
  private readonly byAddress: SlidingWindow;
  private readonly byUser: SlidingWindow;
  private readonly now: () => number;

  constructor(options: { attemptsPerMinute: number; failuresPerUser: number; now?: () => number }) {
    this.now = options.now ?? Date.now;
    this.byAddress = new SlidingWindow(ADDRESS_WINDOW_MS, options.attemptsPerMinute);
    this.byUser = new SlidingWindow(USER_WINDOW_MS, options.failuresPerUser);
  }

  /** Counts an attempt; throws AdminLoginRateLimitedError (429) when the address or the user name is over its limit. */
  begin(address: string, user: string): void {
    const now = this.now();
    const wait = Math.max(this.byAddress.waitMs(address, now), this.byUser.waitMs(userKey(user, address), now));
    // Refused attempts count too: an address that keeps trying stays refused.
    this.byAddress.add(address, now);
    if (wait > 0) {
      const retryAfterS = Math.ceil(wait / 1000);
      throw new AdminLoginRateLimitedError(`too many login attempts; try again in ${retryAfterS} s`, { retryAfterS });
    }
  }

  failed(address: string, user: string): void {
    this.byUser.add(userKey(user, address), this.now());
  }

  succeeded(address: string, user: string): void {
    this.byUser.clear(userKey(user, address));
  }
}
