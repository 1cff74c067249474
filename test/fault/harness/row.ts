/** A scenario as a mocha test: prints its counts, asserts >= 200 calls/s and 0 failed calls. */
import { expect } from "chai";
import { runScenario, type Scenario, type ScenarioResult } from "./scenario";

export function faultRow(s: Scenario, extra?: (r: ScenarioResult) => void | Promise<void>): void {
  it(s.name, async function () {
    this.timeout(5 * 60_000);
    const r = await runScenario(s, (line) => console.log(line));
    expect(r.rate, "calls/s").to.be.at.least(200);
    expect(r.ok).to.be.greaterThan(0);
    expect(r.failed, `failed calls: ${JSON.stringify(r.byCode)}\n${r.errors.join("\n")}`).to.equal(0);
    await extra?.(r);
  });
}
