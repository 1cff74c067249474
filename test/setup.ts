// Loaded by mocha before any test: keep test output readable. Set SGRID_TEST_LOG=debug to see logs.
process.env.SGRID_LOG_LEVEL = process.env.SGRID_TEST_LOG ?? "silent";
