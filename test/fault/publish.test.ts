/**
 * Issue 12, items 4 and 5: a publish, restart or rollback never takes down
 * the last serving endpoint of an Obj, and a bad config never reaches a
 * servant. Real cluster and caller (test/fault/harness); 0 failed calls in
 * every row.
 */
import { faultRow } from "./harness/row";
import { PUBLISH_SCENARIOS } from "./harness/publish-scenarios";

describe("fault suite: publishes and config, 0 failed calls @slow", function () {
  for (const s of PUBLISH_SCENARIOS) faultRow(s, (r) => {
    for (const n of r.notes) console.log(`  ${n}`);
  });
});
