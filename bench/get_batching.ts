// Should nearcache coalesce the gets of one tick into per-slot MGETs (batchGets: true)
// or send one command per get through ioredis auto-pipelining (batchGets: false)?
// Each iteration awaits 1000 concurrent gets of distinct existing keys; raw ioredis
// getBuffer with enableAutoPipelining is the peer.
//
// Alone: node --import tsx bench/get_batching.ts
import { pathToFileURL } from 'node:url'
import { Cluster, Redis } from 'ioredis'
import { Bench } from 'tinybench'
import { createCache } from '../src/index.js'
import type { NearCache, RedisOption } from '../src/index.js'
import { item } from './fixtures.js'
import { compare, figure, report } from './report.js'
import type { Comparison, SuiteResult, TaskFigure } from './report.js'
import { withServers } from './servers.js'
import type { BenchServers } from './servers.js'
import { expectAllHit, ready } from './goals_common.js'

export const SUITE = 'get_batching'
const NAMESPACE = 'bench'
const KEYS = 1000
export const SETTINGS = { keysPerIteration: KEYS, time: 2000, warmupTime: 500, warmupIterations: 16 }

const keys = Array.from({ length: KEYS }, (_, i) => `bench:item:${i}`)

interface Backend {
  scenario: string
  redis: RedisOption
  raw(): Redis | Cluster
}

function backends(servers: BenchServers): Backend[] {
  return [
    { scenario: 'standalone', redis: servers.redisUrl, raw: () => new Redis(servers.redisUrl, { enableAutoPipelining: true }) },
    { scenario: 'cluster (3 masters)', redis: { cluster: servers.clusterNodes }, raw: () => new Cluster(servers.clusterNodes, { enableAutoPipelining: true }) },
  ]
}

async function runBackend(b: Backend): Promise<{ tasks: TaskFigure[]; rows: Comparison[] }> {
  const opened: { close(): Promise<unknown> }[] = []
  try {
    const batched = await createCache({ redis: b.redis, namespace: NAMESPACE, batchGets: true, l1: false })
    opened.push(batched)
    const unbatched = await createCache({ redis: b.redis, namespace: NAMESPACE, batchGets: false, l1: false })
    opened.push(unbatched)
    const raw = b.raw()
    opened.push({ close: () => raw.quit() })
    await ready(raw)

    await batched.setMany(keys.map((key, i) => ({ key, value: item(i) })))
    const rawKeys = keys.map((k) => `${NAMESPACE}:${k}`)
    const getAll = (cache: NearCache) => Promise.all(keys.map((k) => cache.get(k)))
    const rawGetAll = () => Promise.all(rawKeys.map((k) => raw.getBuffer(k)))
    expectAllHit(`${b.scenario} batchGets:true`, await getAll(batched))
    expectAllHit(`${b.scenario} batchGets:false`, await getAll(unbatched))
    const rawValues = await rawGetAll()
    expectAllHit(`${b.scenario} raw ioredis`, rawValues)
    const avgBytes = rawValues.reduce((n, v) => n + (v?.length ?? 0), 0) / rawValues.length
    console.log(`${b.scenario}: ${KEYS} keys preloaded, ${avgBytes.toFixed(0)} bytes per stored entry on average`)

    const bench = new Bench({ ...SETTINGS, name: b.scenario, warmup: true, throws: true })
    bench
      .add('nearcache batchGets:true', async () => { await getAll(batched) })
      .add('nearcache batchGets:false', async () => { await getAll(unbatched) })
      .add('ioredis getBuffer (autopipelining)', async () => { await rawGetAll() })
    await bench.run()

    const [on, off, peer] = bench.tasks.map((t) => figure(b.scenario, t, KEYS)) as [TaskFigure, TaskFigure, TaskFigure]
    const best = on.opsPerSec >= off.opsPerSec ? on : off
    return {
      tasks: [on, off, peer],
      rows: [compare(b.scenario, on, off), compare(b.scenario, best, peer)],
    }
  } finally {
    await Promise.allSettled(opened.map((c) => c.close()))
  }
}

/** Runs both backends one after the other (never concurrently: they would share the 2 cores). */
export async function run(servers: BenchServers): Promise<SuiteResult> {
  const result: SuiteResult = { suite: SUITE, tasks: [], rows: [] }
  for (const b of backends(servers)) {
    const { tasks, rows } = await runBackend(b)
    result.tasks.push(...tasks)
    result.rows.push(...rows)
  }
  return result
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await withServers(async (servers) => report(await run(servers), SETTINGS))
}
