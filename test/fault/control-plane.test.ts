/**
 * Issue 12: callers never fail because of the control plane. Each row of
 * the table runs on a real cluster (registry, two agents in their
 * own network namespaces, real cgroups, servants, a caller process calling
 * two Objs by name at 250 calls/s; test/fault/harness) and must end with 0
 * failed calls; the counts of every phase are printed. Every outage is
 * longer than the heartbeat timeout (3 s, set with the registry's
 * --heartbeat-timeout).
 */
import { faultRow } from "./harness/row";
import { mariadbAvailable } from "./harness/databases";
import { agentKillLong, agentKillQuick, duplicateNodeName, mariadbDown, noFault, registryKill, sqliteDown } from "./harness/scenarios";

describe("fault suite: the control plane's faults, 0 failed calls @slow", function () {
  faultRow(noFault);
  faultRow(registryKill);
  faultRow(agentKillQuick);
  faultRow(agentKillLong);
  faultRow(duplicateNodeName);
  faultRow(sqliteDown);
  if (mariadbAvailable()) faultRow(mariadbDown());
  else it.skip("database down, back (MariaDB stopped): needs /usr/sbin/mariadbd and mariadb-install-db");
});
