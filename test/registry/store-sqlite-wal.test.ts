/**
 * The SQLite connection's journal settings (registry/store/db.ts): WAL,
 * synchronous NORMAL, and a checkpoint every SQLITE_WAL_AUTOCHECKPOINT pages,
 * on the connection the store really uses.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import { SQLITE_WAL_AUTOCHECKPOINT, openDatabase } from "../../registry/store/db";

describe("registry store: SQLite journal settings", () => {
  it("uses WAL, synchronous NORMAL and checkpoints every SQLITE_WAL_AUTOCHECKPOINT pages", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sgrid-wal-"));
    const knex = await openDatabase(`sqlite:${path.join(dir, "registry.db")}`);
    try {
      const one = async (pragma: string) => Object.values((await knex.raw(`pragma ${pragma}`))[0] as Record<string, unknown>)[0];
      expect(String(await one("journal_mode")).toLowerCase()).to.equal("wal");
      expect(await one("synchronous")).to.equal(1);
      expect(await one("wal_autocheckpoint")).to.equal(SQLITE_WAL_AUTOCHECKPOINT);
    } finally {
      await knex.destroy();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
