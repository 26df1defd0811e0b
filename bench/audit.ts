// What auditing every write costs: `set` of a ~150-byte object, audit off vs a
// file sink (JSON lines) vs a function sink, on the L1-only cache (redis: false,
// so the audit's own cost is not hidden behind a Redis round trip; with Redis a
// set costs ~100 µs more and the ratios shrink accordingly), and, when
// NEARCACHE_REDIS_URL is set, on Redis too. Also a principal's view (`as`) with a
// key-pattern check and a local rate limit, audit off.
//
// Each configuration runs ROUNDS rounds of OPS sequential awaited sets, the
// configurations interleaved round by round; the figures are medians per set:
// "calls" times the awaited sets alone (what a caller waits for; the sink runs
// in between, on the same thread), "calls + drain + close" adds closing the
// cache, which waits until every record reached the sink (the whole cost of
// writing every record). The file sink writes into a temp dir (removed at the
// end); maxQueue is raised so no record is dropped (a drop aborts the run).
//
// Run: node --import tsx bench/audit.ts   (NEARCACHE_REDIS_URL=redis://... for the Redis rows)
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createCache } from '../src/index.js'
import type { CacheOptions } from '../src/index.js'
import { item } from './fixtures.js'

const OPS = Number(process.env.OPS ?? 20_000)
const ROUNDS = Number(process.env.ROUNDS ?? 7)
const value = item(1)

interface Config {
  name: string
  options: (dir: string, round: number) => CacheOptions
  view?: boolean
}

function configs(redis: CacheOptions['redis'], label: string): Config[] {
  const base = (): CacheOptions => ({ redis, namespace: `benchaudit${label}`, l1: { maxBytes: '64mb' } })
  let sunk = 0
  return [
    { name: `${label} audit off`, options: () => base() },
    { name: `${label} audit file sink`, options: (dir, round) => ({ ...base(), audit: { sink: join(dir, `audit-${label}-${round}.jsonl`), maxQueue: OPS * 2 } }) },
    { name: `${label} audit function sink`, options: () => ({ ...base(), audit: { sink: (rs) => void (sunk += rs.length), maxQueue: OPS * 2 } }) },
    {
      name: `${label} view (as), audit off`,
      view: true,
      options: () => ({ ...base(), access: { principals: { app: { can: ['write'], keys: ['bench:*'], rateLimit: { rate: 1_000_000, burst: 1_000_000_000 } } } } }),
    },
  ]
}

async function round(c: Config, dir: string, r: number): Promise<{ loop: number; all: number }> {
  const cache = await createCache(c.options(dir, r))
  const target = c.view ? cache.as('app') : cache
  for (let i = 0; i < 500; i++) await target.set(`bench:${i % 1000}`, value)
  const start = process.hrtime.bigint()
  for (let i = 0; i < OPS; i++) await target.set(`bench:${i % 1000}`, value)
  const loop = Number(process.hrtime.bigint() - start) / OPS
  const dropped = cache.stats().process.auditDropped
  await cache.close()
  const all = Number(process.hrtime.bigint() - start) / OPS
  if (dropped > 0) throw new Error(`${c.name}: records were dropped; raise maxQueue`)
  return { loop, all }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] as number
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'nc-bench-audit-'))
  try {
    const groups = [configs(false, 'l1')]
    if (process.env.NEARCACHE_REDIS_URL) groups.push(configs(process.env.NEARCACHE_REDIS_URL, 'redis'))
    console.log(`bench/audit: set of a ~150-byte object, ${OPS} sets x ${ROUNDS} rounds per configuration, Node ${process.version}`)
    for (const cs of groups) {
      const loops = new Map<string, number[]>(cs.map((c) => [c.name, []]))
      const alls = new Map<string, number[]>(cs.map((c) => [c.name, []]))
      for (let r = 0; r < ROUNDS; r++) {
        for (const c of cs) {
          const { loop, all } = await round(c, dir, r)
          loops.get(c.name)?.push(loop)
          alls.get(c.name)?.push(all)
        }
      }
      const first = cs[0]?.name as string
      const offLoop = median(loops.get(first) as number[])
      const offAll = median(alls.get(first) as number[])
      for (const c of cs) {
        const l = median(loops.get(c.name) as number[])
        const a = median(alls.get(c.name) as number[])
        console.log(
          `${c.name.padEnd(34)} calls ${(l / 1000).toFixed(2).padStart(7)} µs/set (x${(l / offLoop).toFixed(2)})   calls + drain + close ${(a / 1000).toFixed(2).padStart(7)} µs/set (x${(a / offAll).toFixed(2)})`,
        )
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
