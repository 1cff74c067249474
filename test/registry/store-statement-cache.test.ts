/**
 * The SQLite connection's prepared-statement cache (registry/store/db.ts,
 * cacheStatements): queries through knex give the same answers as before,
 * including after a schema change, with BigInt-free integers even after a
 * query that asked for safe integers; the cache stays within its bound.
 */
import { expect } from "chai";
import { cacheStatements, openDatabase } from "../../registry/store/db";

/** The parts of a better-sqlite3 connection this test uses (the package ships no types). */
interface Statement {
  run(...args: unknown[]): unknown;
  get(...args: unknown[]): unknown;
  safeIntegers(on: boolean): Statement;
}
interface Connection {
  exec(sql: string): void;
  prepare(sql: string): Statement;
  close(): void;
}
const Database = require("better-sqlite3") as new (filename: string) => Connection;

describe("registry store: SQLite prepared-statement cache", () => {
  it("reuses a statement per SQL text, resets safe integers on reuse, and keeps at most its bound", () => {
    const db = new Database(":memory:");
    try {
      let prepared = 0;
      const prepare = db.prepare.bind(db);
      db.prepare = (sql: string) => {
        prepared++;
        return prepare(sql);
      };
      cacheStatements(db, 2);
      db.exec("create table t (n integer)");
      db.prepare("insert into t values (?)").run(2 ** 40);
      const a = db.prepare("select n from t");
      a.safeIntegers(true);
      expect(a.get()).to.deep.equal({ n: BigInt(2 ** 40) });
      const again = db.prepare("select n from t");
      expect(again).to.equal(a);
      expect(again.get(), "a reused statement is back to plain numbers").to.deep.equal({ n: 2 ** 40 });
      expect(prepared).to.equal(2);
      db.prepare("select count(*) as c from t");
      db.prepare("select max(n) as m from t"); // the third: "insert" (least recently used) goes
      db.prepare("insert into t values (?)").run(1);
      expect(prepared).to.equal(5);
      expect(db.prepare("select count(*) as c from t").get()).to.deep.equal({ c: 2 });
    } finally {
      db.close();
    }
  });

  it("through knex: the same query sees rows and columns added since it was first run", async () => {
    const knex = await openDatabase("sqlite::memory:");
    try {
      await knex.schema.createTable("t", (t) => t.integer("n"));
      await knex("t").insert({ n: 1 });
      expect(await knex("t").select("*")).to.deep.equal([{ n: 1 }]);
      await knex.schema.alterTable("t", (t) => t.string("s").notNullable().defaultTo("x"));
      await knex("t").insert({ n: 2, s: "y" });
      expect(await knex("t").select("*").orderBy("n")).to.deep.equal([{ n: 1, s: "x" }, { n: 2, s: "y" }]);
      expect(await knex("t").where({ n: 2 }).update({ s: "z" })).to.equal(1);
      expect(await knex("t").where({ n: 2 }).update({ s: "w" })).to.equal(1);
      expect(await knex("t").where({ n: 2 }).first()).to.deep.equal({ n: 2, s: "w" });
    } finally {
      await knex.destroy();
    }
  });
});
