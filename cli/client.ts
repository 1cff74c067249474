/**
 * What every CLI command that talks to the registry shares: where the
 * registry is, how to log in, and the typed proxies of its APIs.
 *
 * Settings (flags, then env, then defaults):
 * - `--registry <host:port,...>` / `SGRID_REGISTRY`; default `127.0.0.1:9500`
 *   (a registry on this machine, on the registry's default port).
 * - `--user <name>` / `SGRID_USER`; default `admin` (the registry's first user).
 *
 * Credentials, in this order:
 * 1. `SGRID_TOKEN`: a login token used as it is (CI that logs in elsewhere);
 * 2. a token cached by `sgrid login` (or by an interactive login) in
 *    `$SGRID_HOME/tokens.json` (default `~/.sgrid/tokens.json`; folder 0700,
 *    file 0600), per registry and user, until it expires or is refused;
 * 3. `SGRID_PASSWORD`: a login for this run only — the token is NOT cached,
 *    so a CI job leaves no valid token on disk;
 * 4. a password prompt (no echo) when stdin is a terminal; the token is cached.
 * A cached token the registry refuses (UNAUTHENTICATED) is dropped and the
 * call is retried once after logging in again with 3 or 4.
 *
 * Config reads (Config API) send `SGRID_QUERY_TOKEN` when set: they are open
 * unless the registry has a query token, and login tokens do not open them.
 *
 * Secrets never appear in output or errors: messages name the registry and
 * the user, never a password or token.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Command } from "commander";
import { Communicator } from "sgridnext/internal/communicator";
import { CancelledError, ConfigError, SgridError, UnauthenticatedError } from "sgridnext";
import { AdminProxy } from "sgridnext/gen/sgrid/registry/v1/admin.sgrid";
import { ConfigProxy } from "sgridnext/gen/sgrid/registry/v1/config.sgrid";
import { PatchProxy } from "sgridnext/gen/sgrid/registry/v1/patch.sgrid";

export const CLIENT_DEFAULTS = Object.freeze({
  registry: "127.0.0.1:9500",
  user: "admin",
  /** Unary calls to the registry: generous, a registry under load may take a while to commit. */
  timeoutMs: 30_000,
});

/** Flags every registry command accepts. */
export interface ClientFlags {
  registry?: string;
  user?: string;
}

/** Adds `--registry` and `--user` to a command. */
export function withClientOptions(cmd: Command): Command {
  return cmd
    .option("--registry <host:port,...>", `registry endpoints [SGRID_REGISTRY] (default: ${CLIENT_DEFAULTS.registry})`)
    .option("--user <name>", `user to log in as [SGRID_USER] (default: ${CLIENT_DEFAULTS.user}); password from SGRID_PASSWORD or a prompt`);
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** `$SGRID_HOME` or `~/.sgrid`. */
export function sgridHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.SGRID_HOME || path.join(os.homedir(), ".sgrid");
}

/** The per-user token cache file. Never throws on read; a broken file is treated as empty. */
export class TokenCache {
  readonly file: string;
  constructor(home: string) {
    this.file = path.join(home, "tokens.json");
  }

  private readAll(): Record<string, CachedToken> {
    try {
      const parsed = JSON.parse(fs.readFileSync(this.file, "utf8")) as unknown;
      return parsed && typeof parsed === "object" ? (parsed as Record<string, CachedToken>) : {};
    } catch {
      return {};
    }
  }

  get(key: string, now = Date.now()): string | undefined {
    const e = this.readAll()[key];
    return e && typeof e.token === "string" && typeof e.expiresAt === "number" && e.expiresAt > now + 60_000 ? e.token : undefined;
  }

  /** Writes atomically with mode 0600 (folder 0700); expired entries are dropped on the way. */
  set(key: string, value: CachedToken | undefined): void {
    const now = Date.now();
    const all = Object.fromEntries(Object.entries(this.readAll()).filter(([, v]) => v && v.expiresAt > now));
    if (value) all[key] = value;
    else delete all[key];
    fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, `${JSON.stringify(all, null, 2)}\n`, { mode: 0o600 });
    fs.renameSync(tmp, this.file);
  }
}

/** Reads a line from the terminal without echoing it. Rejects when stdin is not a terminal. */
export function promptHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) return Promise.reject(new UnauthenticatedError("no password: set SGRID_PASSWORD (or SGRID_TOKEN), or run `sgrid login` in a terminal"));
  return new Promise((resolve, reject) => {
    process.stderr.write(prompt);
    let value = "";
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding("utf8");
    const finish = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.removeListener("data", onData);
      process.stderr.write("\n");
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === "\r" || ch === "\n" || ch === "\u0004") return finish();
        if (ch === "\u0003") return finish(new CancelledError("login cancelled"));
        if (ch === "\u007f" || ch === "\b") value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on("data", onData);
  });
}

/** A connection to the registry with its proxies and the login of this run. */
export class RegistryClient {
  readonly registry: string;
  readonly user: string;
  readonly communicator = new Communicator();
  readonly admin: AdminProxy;
  readonly patch: PatchProxy;
  readonly config: ConfigProxy;
  private token: string | undefined;
  private tokenSource: "env" | "cache" | "password" | "prompt" | undefined;
  private readonly cache: TokenCache;
  private readonly env: NodeJS.ProcessEnv;

  constructor(flags: ClientFlags = {}, env: NodeJS.ProcessEnv = process.env) {
    this.env = env;
    this.registry = (flags.registry ?? env.SGRID_REGISTRY ?? CLIENT_DEFAULTS.registry).trim();
    this.user = flags.user ?? env.SGRID_USER ?? CLIENT_DEFAULTS.user;
    if (!this.registry) throw new ConfigError("--registry / SGRID_REGISTRY is empty");
    this.cache = new TokenCache(sgridHome(env));
    const opts = { timeoutMs: CLIENT_DEFAULTS.timeoutMs };
    this.admin = this.communicator.stringToProxy(AdminProxy, this.registry, opts);
    this.patch = this.communicator.stringToProxy(PatchProxy, this.registry, opts);
    this.config = this.communicator.stringToProxy(ConfigProxy, this.registry, opts);
  }

  private get cacheKey(): string {
    return `${this.registry}|${this.user}`;
  }

  /**
   * Logs in with a password (SGRID_PASSWORD, else a prompt) and returns the
   * token. `cache`: keep the token in the token cache (default: only when the
   * password was typed).
   */
  async login(cache?: boolean): Promise<string> {
    const fromEnv = this.env.SGRID_PASSWORD;
    const password = fromEnv ?? (await promptHidden(`password for ${this.user} at ${this.registry}: `));
    const reply = await this.admin.login({ user: this.user, password });
    this.token = reply.token;
    this.tokenSource = fromEnv !== undefined ? "password" : "prompt";
    if (cache ?? fromEnv === undefined) this.cache.set(this.cacheKey, { token: reply.token, expiresAt: reply.expiresAt });
    return reply.token;
  }

  /** The token to send: SGRID_TOKEN, the cached one, or a fresh login. */
  async ensureToken(): Promise<string> {
    if (this.token) return this.token;
    if (this.env.SGRID_TOKEN) {
      this.tokenSource = "env";
      return (this.token = this.env.SGRID_TOKEN);
    }
    const cached = this.cache.get(this.cacheKey);
    if (cached) {
      this.tokenSource = "cache";
      return (this.token = cached);
    }
    return this.login();
  }

  /** Call metadata carrying the login token. */
  async auth(): Promise<{ authorization: string }> {
    return { authorization: `Bearer ${await this.ensureToken()}` };
  }

  /**
   * Runs `fn` with the login metadata; when a cached token is refused, drops
   * it, logs in again and runs `fn` once more.
   */
  async call<T>(fn: (metadata: { authorization: string }) => Promise<T>): Promise<T> {
    const metadata = await this.auth();
    try {
      return await fn(metadata);
    } catch (err) {
      if (!(err instanceof SgridError) || err.code !== "UNAUTHENTICATED" || this.tokenSource !== "cache") throw err;
      this.cache.set(this.cacheKey, undefined);
      this.token = undefined;
      await this.login();
      return fn(await this.auth());
    }
  }

  /** Metadata for Config reads: the query token when one is configured, else nothing. */
  queryMetadata(): Record<string, string> {
    const token = this.env.SGRID_QUERY_TOKEN || this.env.SGRID_REGISTRY_TOKEN;
    return token ? { authorization: `Bearer ${token}` } : {};
  }

  /** Forgets the cached token and ends the session on the registry (best effort there). */
  async logout(): Promise<void> {
    const cached = this.cache.get(this.cacheKey, 0);
    this.cache.set(this.cacheKey, undefined);
    const token = this.token ?? cached;
    if (token) await this.admin.logout({}, { metadata: { authorization: `Bearer ${token}` } }).catch(() => undefined);
    this.token = undefined;
  }

  close(): void {
    this.communicator.close();
  }
}

/** Runs `fn` with a client made from the flags, and closes it afterwards. */
export async function withClient<T>(flags: ClientFlags, fn: (client: RegistryClient) => Promise<T>): Promise<T> {
  const client = new RegistryClient(flags);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

export function registerLogin(program: Command): void {
  withClientOptions(program.command("login").description("log in to the registry and cache the token in ~/.sgrid/tokens.json (0600)"))
    .action(async (flags: ClientFlags) => {
      await withClient(flags, async (client) => {
        await client.login(true);
        const who = await client.admin.whoAmI({}, { metadata: await client.auth() });
        const roles = who.roles.map((r) => `${r.role} on ${r.application}`).join(", ") || "no roles";
        process.stdout.write(`logged in to ${client.registry} as ${who.user} (${roles})\n`);
      });
    });
}

export function registerLogout(program: Command): void {
  withClientOptions(program.command("logout").description("forget the cached token and end its session on the registry"))
    .action(async (flags: ClientFlags) => {
      await withClient(flags, async (client) => {
        await client.logout();
        process.stdout.write(`logged out of ${client.registry} (${client.user})\n`);
      });
    });
}
