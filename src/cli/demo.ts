/**
 * The demo: a read-through workload on a skewed (Zipf-like) key set, the way a
 * server with a slow data source uses nearcache. It connects to
 * NEARCACHE_REDIS_URL (default redis://127.0.0.1:6379); when no Redis answers it
 * falls back to the L1-only embedded cache and says so.
 *
 *   npm run demo            # or: node dist/src/cli/demo.js [seconds]
 */
import { createCache, L2UnavailableError } from '../index.js'
import type { NearCache } from '../index.js'
import { parsePrometheus, statsFromSamples } from '../observability/prometheus_parse.js'
import { formatCacheStats } from './stats_format.js'

const KEYS = 20_000
const CONCURRENCY = 64
const LOADER_MS = 2

function zipfSampler(n: number, alpha: number): () => number {
  const cdf = new Float64Array(n)
  let sum = 0
  for (let i = 0; i < n; i++) cdf[i] = sum += 1 / Math.pow(i + 1, alpha)
  return () => {
    const x = Math.random() * sum
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if ((cdf[mid] as number) < x) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}

async function open(): Promise<{ cache: NearCache; where: string }> {
  const url = process.env.NEARCACHE_REDIS_URL || 'redis://127.0.0.1:6379'
  try {
    const cache = await createCache({ redis: url, namespace: 'nc-demo', ttl: '5m', connectTimeout: 1500 })
    return { cache, where: `Redis at ${url} (L2)` }
  } catch (err) {
    if (!(err instanceof L2UnavailableError)) throw err
    console.log(`No Redis answered at ${url}: falling back to the L1-only embedded cache (redis: false).`)
    console.log('Set NEARCACHE_REDIS_URL to use another server.\n')
    const cache = await createCache({ redis: false, namespace: 'nc-demo', ttl: '5m', l1: { maxBytes: '64mb' } })
    return { cache, where: 'the in-process L1 (no Redis)' }
  }
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 3)
  const { cache, where } = await open()
  await cache.clear()
  const next = zipfSampler(KEYS, 0.99)
  let loads = 0
  let ops = 0
  const loadProduct = async (id: number) => {
    loads++
    await new Promise((r) => setTimeout(r, LOADER_MS)) // a database round trip
    return { id, name: `product ${id}`, price: (id % 1000) / 10, tags: ['demo'], updatedAt: new Date() }
  }
  console.log(`nearcache demo: ${CONCURRENCY} concurrent clients, ${KEYS} keys (Zipf 0.99), ${seconds}s against ${where}`)
  const deadline = performance.now() + seconds * 1000
  const started = performance.now()
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < deadline) {
        const id = next()
        await cache.getOrSet(`product:${id}`, () => loadProduct(id), { tags: [`product:${id % 100}`] })
        ops++
      }
    }),
  )
  const elapsed = (performance.now() - started) / 1000
  console.log(`  requests     ${ops} in ${elapsed.toFixed(2)}s = ${Math.round(ops / elapsed)} req/s; the data source was called ${loads} times\n`)
  // The figures below are read back from cache.metrics(), the Prometheus text a
  // scrape of serveMetrics() or `nearcache stats --from` would see.
  const figures = statsFromSamples(parsePrometheus(cache.metrics()))
  if (!figures) throw new Error('cache.metrics() carried no nearcache_* series')
  const health = await cache.health()
  console.log(formatCacheStats(figures, health).replace(/^/gm, '  '))
  const ns = figures.namespaces[cache.prefix]
  if (ns) console.log(`  loader calls ${ns.loads} (nearcache_loader_calls_total), ${ns.coalesced} getOrSet calls joined a load already running\n`)
  await cache.invalidateTags(['product:7'])
  const after = await cache.getMany(['product:7', 'product:8'])
  console.log(`  invalidateTags(['product:7']) → product:7 ${after[0] === undefined ? 'gone' : 'still there'}, product:8 ${after[1] === undefined ? 'not cached' : 'kept'}`)
  await cache.clear()
  await cache.close()
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
