/**
 * Password hashing with node:crypto scrypt, and the random secrets of login
 * tokens.
 *
 * Hash string format (self-describing, so parameters can change later
 * without breaking stored hashes):
 *
 *     scrypt$N=<cost>,r=<blockSize>,p=<parallelism>$<salt base64url>$<key base64url>
 *
 * Defaults (SCRYPT_DEFAULTS): N=16384, r=8, p=1, 16-byte salt, 32-byte key —
 * the parameters OWASP lists for scrypt, about 50 ms and 16 MiB per hash on
 * one core: slow enough for offline guessing, cheap enough for a login.
 */
import { createHash, randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { InvalidArgumentError } from "sgridnext";

export const SCRYPT_DEFAULTS = Object.freeze({
  /** CPU/memory cost (power of two). */
  N: 16384,
  r: 8,
  p: 1,
  saltBytes: 16,
  keyBytes: 32,
});

/** Shortest and longest password accepted (bytes of UTF-8 are not counted: characters). */
export const PASSWORD_MIN_LENGTH = 8;
export const PASSWORD_MAX_LENGTH = 1024;

function scryptAsync(password: string, salt: Buffer, keyLen: number, p: { N: number; r: number; p: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // maxmem: 128 * N * r * 2 leaves room for the parameters above and a little more.
    scrypt(password, salt, keyLen, { N: p.N, r: p.r, p: p.p, maxmem: 256 * p.N * p.r + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** Throws InvalidArgumentError (never echoing the password) when it is too short or too long. */
export function validatePassword(password: unknown): string {
  if (typeof password !== "string" || password.length < PASSWORD_MIN_LENGTH || password.length > PASSWORD_MAX_LENGTH) {
    throw new InvalidArgumentError(`invalid password: expected ${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters`, { kind: "password" });
  }
  return password;
}

/** Hashes a password with a fresh random salt. */
export async function hashPassword(password: string): Promise<string> {
  const { N, r, p, saltBytes, keyBytes } = SCRYPT_DEFAULTS;
  const salt = randomBytes(saltBytes);
  const key = await scryptAsync(password, salt, keyBytes, { N, r, p });
  return `scrypt$N=${N},r=${r},p=${p}$${salt.toString("base64url")}$${key.toString("base64url")}`;
}

interface ParsedHash {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  key: Buffer;
}

function parseHash(hash: string): ParsedHash | undefined {
  const parts = hash.split("$");
  if (parts.length !== 4 || parts[0] !== "scrypt") return undefined;
  const params = new Map(parts[1]!.split(",").map((kv) => kv.split("=") as [string, string]));
  const N = Number(params.get("N"));
  const r = Number(params.get("r"));
  const p = Number(params.get("p"));
  // Bounds keep a tampered row from making us allocate gigabytes.
  if (!Number.isInteger(N) || N < 2 || N > 2 ** 20 || (N & (N - 1)) !== 0) return undefined;
  if (!Number.isInteger(r) || r < 1 || r > 32 || !Number.isInteger(p) || p < 1 || p > 16) return undefined;
  const salt = Buffer.from(parts[2]!, "base64url");
  const key = Buffer.from(parts[3]!, "base64url");
  if (salt.length === 0 || key.length < 16 || key.length > 128) return undefined;
  return { N, r, p, salt, key };
}

/**
 * True when `password` matches `hash` (constant-time compare of the derived
 * keys). An unparsable hash is a mismatch, never an error.
 */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const parsed = parseHash(hash);
  if (!parsed) return false;
  const key = await scryptAsync(password, parsed.salt, parsed.key.length, parsed);
  return key.length === parsed.key.length && timingSafeEqual(key, parsed.key);
}

/**
 * A hash that matches no password, used to spend the same time on an unknown
 * user as on a known one (so timing does not tell which user names exist).
 */
let dummyHash: Promise<string> | undefined;
export function dummyPasswordHash(): Promise<string> {
  dummyHash ??= hashPassword(randomBytes(24).toString("base64url"));
  return dummyHash;
}

/** A new random secret: 32 bytes, base64url (43 characters). */
export function newSecret(bytes = 32): string {
  return randomBytes(bytes).toString("base64url");
}

/** sha256 hex of a token: what the database stores instead of the token. */
export function tokenHash(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** Constant-time string compare (compares sha256 digests so lengths may differ). */
export function safeEqual(a: string, b: string): boolean {
  const da = createHash("sha256").update(a, "utf8").digest();
  const db = createHash("sha256").update(b, "utf8").digest();
  return timingSafeEqual(da, db);
}
