/**
 * `npm run bench chaos`: the fault suite's scenarios (test/fault/harness,
 * the same code the suite runs), one after another, each on its own real
 * cluster with a caller process at 250 calls/s; one table of failed calls
 * per scenario and the time each recovery took. BENCH_CHAOS picks scenarios
 * by a part of their name.
 */
import { installReaper } from "../test/helpers/reaper";
import { formatResults, runScenario, type ScenarioResult } from "../test/fault/harness/scenario";
import { CONTROL_PLANE_SCENARIOS } from "../test/fault/harness/scenarios";
import { PUBLISH_SCENARIOS } from "../test/fault/harness/publish-scenarios";

export async function runChaosBench(log: (line: string) => void): Promise<string> {
  // Everything a scenario starts carries this process's mark and ends with it, even when it is killed.
  installReaper();
  const filter = process.env.BENCH_CHAOS;
  const results: ScenarioResult[] = [];
  for (const s of [...CONTROL_PLANE_SCENARIOS, ...PUBLISH_SCENARIOS].filter((x) => !filter || x.name.includes(filter))) {
    results.push(await runScenario(s, log));
  }
  return formatResults(results);
}
