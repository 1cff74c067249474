// Loaded by mocha before any test.
// Stack traces name the TypeScript sources. Enabled here rather than with
// mocha's --enable-source-maps, which makes mocha run the tests in a second
// process that a SIGTERM to mocha does not stop.
process.setSourceMapsEnabled(true);
import { watchMochaRuns } from "./helpers/output";
import { installReaper } from "./helpers/reaper";

// Keep test output readable. Set SGRID_TEST_LOG=debug to see logs.
process.env.SGRID_LOG_LEVEL = process.env.SGRID_TEST_LOG ?? "silent";
// Nothing this run starts outlives it, even when mocha is interrupted; what a killed run left is swept now.
installReaper();
// A test's run folders (helpers/paths.ts outputDir) are removed when it passes and kept, named in its failure, when it fails.
watchMochaRuns();
