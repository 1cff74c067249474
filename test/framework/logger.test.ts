import { expect } from "chai";
import { getLogger, setLogLevel, getLogLevel } from "../../framework";

describe("framework/logger", () => {
  after(() => setLogLevel("info"));

  it("hands out one named child per component and changes every level at run time", () => {
    const a = getLogger("test.a");
    expect(getLogger("test.a")).to.equal(a);
    setLogLevel("debug");
    expect(getLogLevel()).to.equal("debug");
    expect(a.level).to.equal("debug");
    setLogLevel("WARN");
    expect(a.level).to.equal("warn");
  });

  it("refuses an unknown level with a TypeError naming it", () => {
    expect(() => setLogLevel("loud")).to.throw(TypeError, /loud/);
  });
});
