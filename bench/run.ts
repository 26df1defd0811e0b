// Entry point of `npm run bench`: starts throw-away Redis servers, runs every
// suite, prints the tables and writes bench/results/<suite>.json.
import * as getBatching from './get_batching.js'
import { report } from './report.js'
import type { SuiteResult } from './report.js'
import { withServers } from './servers.js'
import type { BenchServers } from './servers.js'

interface Suite {
  SETTINGS: Record<string, unknown>
  run(servers: BenchServers): Promise<SuiteResult>
}

const suites: Suite[] = [getBatching]

await withServers(async (servers) => {
  for (const suite of suites) await report(await suite.run(servers), suite.SETTINGS)
})
