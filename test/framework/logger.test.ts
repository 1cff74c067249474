import { expect } from "chai";
import { getLogger, setLogLevel, getLogLevel } from "sgridnext";

describe("framework/logger", () => {
  // Leave the level as the suite set it (silent unless SGRID_TEST_LOG says otherwise).
  let before: string;
  beforeEach(() => { before = getLogLevel(); });
  afterEach(() => setLogLevel(before));

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
