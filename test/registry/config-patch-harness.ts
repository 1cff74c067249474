/**
 * A real gRPC server hosting the registry's ConfigObj and PatchObj on a
 * loopback port over a real store (one private database per call), with
 * DatabaseStorage (64 KiB chunks) and a small Authenticator stand-in
 * that maps bearer tokens to users (the same contract as the registry's:
 * UNAUTHENTICATED without a known token, PERMISSION_DENIED without the role
 * on the application or on `*`).
 */
import { EventEmitter } from "node:events";
import {
  Application, Communicator, getLogger, PermissionDeniedError, UnauthenticatedError, UnavailableError,
  type ServerContext,
} from "sgridnext";
import { ConfigProxy } from "sgridnext/gen/sgrid/registry/v1/config.sgrid";
import { PatchProxy } from "sgridnext/gen/sgrid/registry/v1/patch.sgrid";
import type {
  AuthUser, Authenticator, ChangeFeed, RegistryContext, RegistrySettings, SessionHub,
} from "../../registry/server/context";
import { configPart, DatabaseStorage, patchPart } from "../../registry/services";
import { TOPICS, type KnexStore, type Role, type Topic } from "../../registry/store";
import { type DialectCase, freshStore } from "./helpers/db";

const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

/** Tokens -> users; `queryToken` set = Config reads need it. */
export class TokenAuth implements Authenticator {
  constructor(readonly users: Map<string, AuthUser>, public queryToken?: string) {}

  private token(ctx: ServerContext): string | undefined {
    const m = /^Bearer\s+(\S+)$/i.exec(String(ctx.metadata["authorization"] ?? ""));
    return m?.[1];
  }

  async requireUser(ctx: ServerContext, need?: { role: Role; application?: string }): Promise<AuthUser> {
    const t = this.token(ctx);
    const user = t === undefined ? undefined : this.users.get(t);
    if (!user) throw new UnauthenticatedError("missing or invalid login token");
    if (need && !user.roles.some((g) => RANK[g.role] >= RANK[need.role] && (g.application === "*" || g.application === need.application))) {
      throw new PermissionDeniedError(`user ${user.name} needs role ${need.role} on ${need.application ?? "*"}`);
    }
    return user;
  }

  requireCluster(): void {
    throw new UnavailableError("no node sessions in this test");
  }

  requireQuery(ctx: ServerContext): void {
    if (this.queryToken !== undefined && this.token(ctx) !== this.queryToken) throw new UnauthenticatedError("missing or invalid query token");
  }
}

class StillFeed extends EventEmitter<{ change: [Set<Topic>] }> implements ChangeFeed {
  kicks = 0;
  readonly healthy = true;
  readonly revisions = Object.fromEntries(TOPICS.map((t) => [t, 0])) as Record<Topic, number>;
  kick(): void {
    this.kicks++;
  }
}

const noSessions: SessionHub = {
  localNodes: () => [],
  sendCommand: () => Promise.reject(new UnavailableError("no node sessions in this test")),
  samples: () => [],
  usage: () => undefined,
  lastSeenAt: () => undefined,
};

export interface Harness {
  store: KnexStore;
  storage: DatabaseStorage;
  auth: TokenAuth;
  settings: RegistrySettings;
  config: ConfigProxy;
  patch: PatchProxy;
  /** Call options carrying a user's token. */
  as(token: string): { metadata: Record<string, string> };
  /** Keys of the stored packages, sorted. */
  storedPackages(): Promise<string[]>;
  /** Uploads with chunks in the database but no stored package (in progress, or left behind). */
  unfinishedUploads(): Promise<string[]>;
  close(): Promise<void>;
}

/** Users every harness knows: admin (`*`), op (operator on Demo), viewer (viewer on Demo), other (operator on Other). */
export const TOKENS = { admin: "t-admin", op: "t-op", viewer: "t-viewer", other: "t-other" } as const;

export async function startHarness(d: DialectCase, opts: { maxPatchBytes?: number } = {}): Promise<Harness> {
  const { store, cleanup } = await freshStore(d);
  // 64 KiB chunks: small packages span several, and an upload in progress shows after its first 64 KiB.
  const storage = new DatabaseStorage(store, { chunkBytes: 64 * 1024 });
  const auth = new TokenAuth(new Map<string, AuthUser>([
    [TOKENS.admin, { name: "root", roles: [{ application: "*", role: "admin" }] }],
    [TOKENS.op, { name: "ann", roles: [{ application: "Demo", role: "operator" }] }],
    [TOKENS.viewer, { name: "vic", roles: [{ application: "Demo", role: "viewer" }] }],
    [TOKENS.other, { name: "oscar", roles: [{ application: "Other", role: "operator" }] }],
  ]));
  const settings: RegistrySettings = {
    advertise: "127.0.0.1:0",
    heartbeatIntervalMs: 5000,
    heartbeatTimeoutMs: 15000,
    maxPatchBytes: opts.maxPatchBytes ?? 512 * 1024 * 1024,
    batchTimeoutMs: 120000,
    processId: "test",
  };
  const ctx: RegistryContext = {
    store, settings, storage, auth, changes: new StillFeed(), sessions: noSessions, log: getLogger("registry.test"),
  };
  const app = new Application({ handleSignals: false, app: "Sgrid", server: "Registry", adapters: { ConfigObj: "127.0.0.1:0", PatchObj: "127.0.0.1:0" } });
  for (const part of [configPart(ctx), patchPart(ctx)]) {
    for (const [obj, servant] of Object.entries(part.servants)) app.addServant(obj, servant);
  }
  try {
    await app.start();
  } catch (err) {
    await cleanup();
    throw err;
  }
  const port = app.adapters()[0]!.endpoint.port;
  const communicator = new Communicator();
  return {
    store,
    storage,
    auth,
    settings,
    config: communicator.stringToProxy(ConfigProxy, `127.0.0.1:${port}`),
    patch: communicator.stringToProxy(PatchProxy, `127.0.0.1:${port}`),
    as: (token) => ({ metadata: { authorization: `Bearer ${token}` } }),
    storedPackages: async () => (await store.packageBlobs.list()).map((b) => b.key).sort(),
    unfinishedUploads: async () => {
      const rows = await store.knex("package_chunks").distinct("upload_id").whereNotIn("upload_id", store.knex("package_blobs").select("upload_id"));
      return rows.map((r: { upload_id: string }) => r.upload_id).sort();
    },
    async close() {
      communicator.close();
      await app.stop(0);
      await cleanup();
    },
  };
}
