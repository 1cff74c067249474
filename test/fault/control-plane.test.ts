/**
 * Issue 12: callers never fail because of the control plane. Each row of
 * the table runs on a real cluster (registry, two agents in their
 * own network namespaces, servants, a caller process calling by Obj name at
 * 250 calls/s; test/fault/harness) and must end with 0 failed calls; the
 * counts of every phase are printed.
 */
import { faultRow } from "./harness/row";
import { noFault } from "./harness/scenarios";

describe("fault suite: the control plane's faults, 0 failed calls @slow", function () {
  faultRow(noFault);
});
