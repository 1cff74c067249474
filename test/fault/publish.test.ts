/**
 * Issue 12, items 4, 5 and 7: a publish, restart or rollback never takes
 * down the last serving endpoint of an Obj, a bad config never reaches a
 * servant, and a port another program holds on the node is moved. Real cluster and caller (test/fault/harness); 0 failed calls in
 * every row.
 */
import { faultRow } from "./harness/row";
import { PUBLISH_SCENARIOS } from "./harness/publish-scenarios";

describe("fault suite: publishes and config, 0 failed calls @slow", function () {
  for (const s of PUBLISH_SCENARIOS) faultRow(s);
});
