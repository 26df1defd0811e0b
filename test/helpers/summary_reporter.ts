// Prints exactly one plain line `N passed, N failed[, N skipped]` when the run
// ends (vitest 4 `onTestRunEnd`). Listed after 'default' in vitest.config.ts so
// it is the last line of output. Modules/suites that errored without any
// failed test (import error, failing beforeAll/afterAll) count as 1 failed
// each, and so does every unhandled error, so a red run never says "0 failed".
import type { SerializedError } from 'vitest';
import type { Reporter, TestModule, TestRunEndReason, TestSuite } from 'vitest/node';

function countFailedTests(entity: TestModule | TestSuite): number {
  let n = 0;
  for (const _ of entity.children.allTests('failed')) n++;
  return n;
}

export default class SummaryReporter implements Reporter {
  onTestRunEnd(
    testModules: ReadonlyArray<TestModule>,
    unhandledErrors: ReadonlyArray<SerializedError>,
    reason: TestRunEndReason,
  ): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const mod of testModules) {
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else if (state === 'skipped') skipped++;
      }
      // Errors outside tests (collection/import errors, hook failures) that no failed test accounts for.
      let extra = 0;
      for (const entity of [mod, ...mod.children.allSuites()]) {
        if (entity.errors().length > 0 && countFailedTests(entity) === 0) extra++;
      }
      if (extra === 0 && mod.state() === 'failed' && countFailedTests(mod) === 0) extra = 1;
      failed += extra;
    }
    failed += unhandledErrors.length;
    // e.g. globalSetup threw or no test files were found: vitest fails the run without a failed test.
    if (reason === 'failed' && failed === 0) failed = 1;
    const line = `${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`;
    process.stdout.write(`${line}\n`);
  }
}
