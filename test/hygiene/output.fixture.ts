/**
 * Not a test of its own: a mocha file that test/hygiene/output.test.ts runs
 * in a child mocha. It makes run folders where real tests make them (a
 * before hook, a beforeEach hook, a test), in suites that pass and suites
 * that fail, and appends `<what> <folder>` lines to $OUTPUT_FOLDERS.
 * OUTPUT_FIXTURE=wait: one test makes a folder and waits to be killed;
 * OUTPUT_FIXTURE=pass: the process's folders (made while the file loads, or
 * shared by later tests), and every test passes.
 */
import * as fs from "node:fs";
import { outputDir } from "../helpers/paths";

function made(what: string, name = what): string {
  const dir = outputDir(`fixture-${name}`, { shared: what === "shared-by-tests" });
  fs.appendFileSync(process.env.OUTPUT_FOLDERS!, `${what} ${dir}\n`);
  return dir;
}

if (process.env.OUTPUT_FIXTURE === "wait") {
  describe("output (fixture): a run that is killed", function () {
    this.timeout(0);
    it("makes a folder and waits", async () => {
      made("waiting");
      await new Promise(() => undefined);
    });
  });
} else if (process.env.OUTPUT_FIXTURE === "pass") {
  let shared = "";
  describe("output (fixture): the process's folders", () => {
    made("loading");
    it("makes a shared folder", () => void (shared = made("shared-by-tests", "shared")));
  });
  describe("output (fixture): a later suite", () => {
    it("still finds the shared folder", () => {
      if (!fs.existsSync(shared)) throw new Error(`the shared folder ${shared} is gone`);
    });
  });
} else {
  describe("output (fixture)", () => {
    made("loading");
    describe("a suite that passes", () => {
      before(() => void made("passing-suite-before"));
      beforeEach(function () {
        made(`passing-suite-each:${this.currentTest!.title}`, "passing-each");
      });
      it("one", () => void made("passing-test"));
      it("two", () => undefined);
    });

    describe("a suite with a failing test", () => {
      before(() => void made("failing-suite-before"));
      beforeEach(function () {
        made(`failing-suite-each:${this.currentTest!.title}`, "failing-each");
      });
      it("fails", () => {
        made("failing-test");
        throw new Error("deliberate failure");
      });
      it("passes beside it", () => void made("passing-test-beside"));
    });

    describe("a suite whose before hook fails", () => {
      before(() => {
        made("failing-hook");
        throw new Error("deliberate hook failure");
      });
      it("never runs", () => undefined);
    });
  });
}
