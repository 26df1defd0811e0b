// Entry point of `npm run bench`: runs the suites that need no Redis first (nothing
// else running on the cores), then starts throw-away Redis servers and runs the ones
// that do; prints the tables and writes bench/results/<suite>.json.
//
// Only some suites: npm run bench -- l1_hit hash   (Redis starts only if a selected suite needs it)
import * as clusterReads from './cluster_reads.js'
import * as getBatching from './get_batching.js'
import * as codecPool from './codec_pool.js'
import * as encryption from './encryption.js'
import * as goals from './goals.js'
import * as hash from './hash.js'
import * as l1Fill from './l1_fill.js'
import * as l1Hit from './l1_hit.js'
import { report } from './report.js'
import { withServers } from './servers.js'
import type { BenchServers } from './servers.js'
import * as threadsSharedL1 from './threads_shared_l1.js'
import * as zipfHitRatio from './zipf_hit_ratio.js'

/** A suite that runs in process, without Redis. */
interface LocalSuite {
  SUITE: string
  run(): Promise<void>
}

/** A suite that needs the Redis servers. */
interface RedisSuite {
  SUITE: string
  run(servers: BenchServers): Promise<void>
}

const localSuites: LocalSuite[] = [
  { SUITE: l1Hit.SUITE, run: async () => report(await l1Hit.run(), l1Hit.SETTINGS) },
  { SUITE: zipfHitRatio.SUITE, run: async () => zipfHitRatio.report(await zipfHitRatio.run()) },
  { SUITE: l1Fill.SUITE, run: async () => l1Fill.report(await l1Fill.run()) },
  { SUITE: hash.SUITE, run: async () => hash.report(await hash.run()) },
  { SUITE: threadsSharedL1.SUITE, run: async () => threadsSharedL1.report(await threadsSharedL1.run()) },
  { SUITE: codecPool.SUITE, run: async () => codecPool.report(await codecPool.run()) },
]
const redisSuites: RedisSuite[] = [
  { SUITE: getBatching.SUITE, run: async (servers) => report(await getBatching.run(servers), getBatching.SETTINGS) },
  { SUITE: encryption.SUITE, run: async (servers) => encryption.print(await encryption.run(servers.redisUrl)) },
  { SUITE: clusterReads.SUITE, run: async (servers) => clusterReads.print(await clusterReads.run(servers)) },
  // Keep last: the goals summary runs after every other suite.
  { SUITE: goals.SUITE, run: async (servers) => goals.report(await goals.run(servers)) },
]

const wanted = process.argv.slice(2)
const known = [...localSuites, ...redisSuites].map((s) => s.SUITE)
const unknown = wanted.filter((w) => !known.includes(w))
if (unknown.length > 0) throw new Error(`Unknown suite(s) ${unknown.join(', ')}; known: ${known.join(', ')}`)
const selected = <S extends { SUITE: string }>(suites: S[]) => suites.filter((s) => wanted.length === 0 || wanted.includes(s.SUITE))

for (const suite of selected(localSuites)) {
  const t = performance.now()
  await suite.run()
  console.log(`(${suite.SUITE}: ${((performance.now() - t) / 1000).toFixed(1)} s)`)
}
const needRedis = selected(redisSuites)
if (needRedis.length > 0) {
  await withServers(async (servers) => {
    for (const suite of needRedis) {
      const t = performance.now()
      await suite.run(servers)
      console.log(`(${suite.SUITE}: ${((performance.now() - t) / 1000).toFixed(1)} s)`)
    }
  })
}
