import { defineConfig } from 'vitest/config';

// Two projects. `unit` (test/unit) starts no Redis and runs on a machine
// without redis-server: `npx vitest run --project unit`. `integration`
// (test/integration) gets one shared standalone Redis and one 3-master
// Cluster from test/global_setup.ts. `npm test` runs both. Shared settings
// live here at the root; each project inherits them (`extends: true`).
export default defineConfig({
  test: {
    reporters: ['default', './test/helpers/summary_reporter.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        // The timeout only catches a hang: the heaviest unit tests (64 MB tables, 10,000-case
        // fuzzers) take 10-25 s alone and 2-3x that on a machine busy with other work.
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 120_000 },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['./test/global_setup.ts'],
        },
      },
    ],
  },
});
