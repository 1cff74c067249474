/**
 * `sgrid publish --canary`: the flag's forms and its refusals, before
 * anything is sent to the registry.
 */
import { expect } from "chai";
import { InvalidArgumentError } from "sgridnext";
import { canaryOptions, parseCanaryShare } from "../../cli/canary";

describe("cli: --canary flags", () => {
  it("takes a share of calls (10%, 2.5 %) or a number of instances (2)", () => {
    expect(parseCanaryShare("10%")).to.deep.equal({ percent: 10, instances: 0 });
    expect(parseCanaryShare("2.5 %")).to.deep.equal({ percent: 2.5, instances: 0 });
    expect(parseCanaryShare("2")).to.deep.equal({ percent: 0, instances: 2 });
  });

  it("refuses 0 %, 100 % and over, 0 instances and non-numbers with INVALID_ARGUMENT", () => {
    for (const bad of ["0%", "100%", "150%", "0", "ten", "10%%", "-5%", "", "1e3"]) {
      expect(() => parseCanaryShare(bad), bad).to.throw(InvalidArgumentError);
    }
    expect(() => parseCanaryShare("0%")).to.throw(/over 0 % and under 100 %/);
    expect(() => parseCanaryShare("ten")).to.throw(/neither a share of calls/);
  });

  it("a threshold flag without --canary is refused; the options carry the thresholds", () => {
    expect(() => canaryOptions({ canaryBake: 30 })).to.throw(InvalidArgumentError, /--canary-bake needs --canary/);
    expect(canaryOptions({})).to.equal(undefined);
    expect(canaryOptions({ canary: "10%", canaryBake: 30, canaryMaxErrorDelta: 0, canaryHold: true })).to.deep.include({ percent: 10, bakeS: 30, maxErrorRateDelta: 0, hold: true });
  });
});
