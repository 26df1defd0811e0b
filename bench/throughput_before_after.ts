// Issue 13's before/after in one run: the throughput scenarios measured on two
// checkouts of nearcache (--baseline, and this checkout or --after) loaded into ONE
// process, next to the peers, in the same tinybench Bench (tasks interleaved, the
// whole Bench repeated --rounds times; the figure per task is the median of its
// rounds). Each side is reported as a ratio against the peer of the same run, and
// after/before.
//
//   L1 hit get, ~150-byte object, 1000 keys, 1000 sequential awaited gets / iteration
//     (redis: false): before, after, after with l1.shareValues, after getSync (when the
//     after side has it); peers bentocache's memory tier and lru-cache (async wrapper).
//   L2 hit get, l1: false, 1000 concurrent distinct keys / iteration, 3-master Cluster
//     and standalone: before, after; peer raw ioredis getBuffer with auto-pipelining.
//   Mixed 90% hot (10k keys, L1) / 10% cold (300k keys, L2) gets on the Cluster with
//     64 callers, default options, after a warm-up that reads the hot set once:
//     completed gets in --mixed-seconds, before and after alternately.
//
//   node --import tsx bench/throughput_before_after.ts --baseline /path/to/old/checkout
//        [--after <checkout>] [--rounds 3] [--time 1000] [--mixed-seconds 4]
//
// Throw-away servers (bench/servers.ts). Figures go to bench/results/throughput_before_after.json.
import path from 'node:path'
import { existsSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { Cluster, Redis } from 'ioredis'
import { LRUCache } from 'lru-cache'
import { Bench } from 'tinybench'
import type { CacheOptions, NearCache } from '../src/index.js'
import { item, mulberry32 } from './fixtures.js'
import { figure } from './report.js'
import { writeJson } from './results_json.js'
import { withServers } from './servers.js'
import type { BenchServers } from './servers.js'

interface Api {
  createCache(options?: CacheOptions): Promise<NearCache>
}
type GetSync = { getSync?: (key: string) => unknown }

const { values: args } = parseArgs({
  options: {
    baseline: { type: 'string' },
    after: { type: 'string', default: path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..') },
    rounds: { type: 'string', default: '3' },
    time: { type: 'string', default: '1000' },
    'mixed-seconds': { type: 'string', default: '4' },
  },
})
if (!args.baseline) throw new Error('--baseline <checkout> is required')
const ROUNDS = Number(args.rounds)
const TIME = Number(args.time)
const MIXED_MS = Number(args['mixed-seconds']) * 1000
const KEYS = Array.from({ length: 1000 }, (_, i) => `item:${i}`)
const HOT = 10_000
const COLD = 300_000
let sink: unknown

async function load(checkout: string): Promise<Api> {
  const file = path.join(checkout, 'src', 'index.ts')
  if (!existsSync(file)) throw new Error(`${file} does not exist`)
  return (await import(pathToFileURL(file).href)) as Api
}

type Task = [name: string, fn: () => Promise<void>]
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

/** Runs the tasks in one Bench, ROUNDS times (order flipped every round); the median ops/s per task. */
async function measure(scenario: string, ops: number, tasks: Task[]): Promise<Map<string, number>> {
  const per = new Map<string, number[]>(tasks.map(([n]) => [n, []]))
  for (let r = 0; r < ROUNDS; r++) {
    const b = new Bench({ name: scenario, time: TIME, warmupTime: 250, warmupIterations: 16, timestampProvider: 'hrtimeNow', throws: true })
    for (const [name, fn] of r % 2 === 0 ? tasks : [...tasks].reverse()) b.add(name, fn)
    await b.run()
    for (const t of b.tasks) per.get(t.name)?.push(figure(scenario, t, ops).opsPerSec)
    console.log(`  ${scenario}: round ${r + 1} of ${ROUNDS} done`)
  }
  return new Map([...per].map(([n, xs]) => [n, median(xs)]))
}

const sequential = (get: (k: string) => unknown): (() => Promise<void>) => {
  let i = 0
  return async () => {
    for (let j = 0; j < 1000; j++) {
      const v = await get(KEYS[i++ % KEYS.length] as string)
      if (v === undefined) throw new Error('an L1 get missed')
      sink = v
    }
  }
}

async function l1Hit(before: Api, after: Api): Promise<Map<string, number>> {
  const b = await before.createCache({ redis: false, namespace: 'ba_b' })
  const a = await after.createCache({ redis: false, namespace: 'ba_a' })
  const shared = await after.createCache({ redis: false, namespace: 'ba_s', l1: { shareValues: true } } as CacheOptions)
  const bento = new BentoCache({ default: 'm', stores: { m: bentostore().useL1Layer(memoryDriver({ maxSize: '100mb', maxItems: 100_000 })) } })
  const lru = new LRUCache<string, object>({ max: 100_000 })
  try {
    for (const c of [b, a, shared]) await c.setMany(KEYS.map((key, i) => ({ key, value: item(i) })))
    for (const [i, k] of KEYS.entries()) {
      await bento.set({ key: k, value: item(i) })
      lru.set(k, item(i))
    }
    const tasks: Task[] = [
      ['before', sequential((k) => b.get(k))],
      ['after', sequential((k) => a.get(k))],
      ['after, l1.shareValues', sequential((k) => shared.get(k))],
      ['bentocache memory', sequential((k) => bento.get({ key: k }))],
      ['lru-cache (async wrapper)', sequential(async (k) => lru.get(k))],
    ]
    const sync = (a as unknown as GetSync).getSync
    if (typeof sync === 'function') tasks.splice(3, 0, ['after, getSync', sequential((k) => sync.call(a, k))])
    return await measure('L1 hit get', 1000, tasks)
  } finally {
    await Promise.allSettled([b.close(), a.close(), shared.close(), bento.disconnect()])
  }
}

async function l2Hit(label: string, redis: CacheOptions['redis'], raw: Redis | Cluster, before: Api, after: Api): Promise<Map<string, number>> {
  const b = await before.createCache({ redis, namespace: 'ba_l2', l1: false })
  const a = await after.createCache({ redis, namespace: 'ba_l2', l1: false })
  try {
    await a.setMany(KEYS.map((key, i) => ({ key, value: item(i) })))
    const rawKeys = KEYS.map((k) => `ba_l2:${k}`)
    const all = (get: (k: string) => Promise<unknown>, ks: string[]) => async () => {
      const vs = await Promise.all(ks.map(get))
      if (vs.some((v) => v === undefined || v === null)) throw new Error(`${label}: a get missed`)
      sink = vs
    }
    return await measure(`L2 hit, ${label}`, 1000, [
      ['before', all((k) => b.get(k), KEYS)],
      ['after', all((k) => a.get(k), KEYS)],
      ['ioredis getBuffer (auto-pipelining)', all((k) => raw.getBuffer(k), rawKeys)],
    ])
  } finally {
    await Promise.allSettled([b.close(), a.close()])
  }
}

/** Completed gets per second of the 90/10 mix with `callers` callers for MIXED_MS (after reading the hot set once). */
async function mixedOnce(cache: NearCache, callers: number, seed: number): Promise<number> {
  for (let i = 0; i < HOT; i += 1000) await cache.getMany(Array.from({ length: 1000 }, (_, j) => `hot:${i + j}`))
  let done = 0
  const end = performance.now() + MIXED_MS
  const start = performance.now()
  await Promise.all(
    Array.from({ length: callers }, async (_, c) => {
      const rnd = mulberry32(seed + c)
      while (performance.now() < end) {
        const k = rnd() < 0.9 ? `hot:${Math.floor(rnd() * HOT)}` : `cold:${Math.floor(rnd() * COLD)}`
        if ((await cache.get(k)) === undefined) throw new Error(`mixed: ${k} missed`)
        done++
      }
    }),
  )
  return done / ((performance.now() - start) / 1000)
}

async function mixed(servers: BenchServers, before: Api, after: Api): Promise<Map<string, number>> {
  const redis = { cluster: servers.clusterNodes }
  const writer = await after.createCache({ redis, namespace: 'ba_mix', l1: false, invalidation: false })
  const fill = async (prefix: string, n: number) => {
    for (let i = 0; i < n; i += 1000) await writer.setMany(Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({ key: `${prefix}:${i + j}`, value: item(i + j) })))
  }
  await fill('hot', HOT)
  await fill('cold', COLD)
  await writer.close()
  const out = new Map<string, number[]>([['before', []], ['after', []]])
  for (let r = 0; r < ROUNDS; r++) {
    for (const [side, api] of (r % 2 === 0 ? [['before', before], ['after', after]] : [['after', after], ['before', before]]) as [string, Api][]) {
      const cache = await api.createCache({ redis, namespace: 'ba_mix' })
      try {
        out.get(side)?.push(await mixedOnce(cache, 64, 1000 * r))
      } finally {
        await cache.close()
      }
    }
    console.log(`  mixed 90/10: round ${r + 1} of ${ROUNDS} done`)
  }
  return new Map([...out].map(([n, xs]) => [n, median(xs)]))
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
function print(scenario: string, m: Map<string, number>, peer?: string): Record<string, unknown> {
  const before = m.get('before') as number
  console.log(`\n${scenario}`)
  for (const [name, ops] of m) {
    const vsPeer = peer && m.get(peer) ? ` | ×${(ops / (m.get(peer) as number)).toFixed(2)} ${peer}` : ''
    console.log(`  ${name.padEnd(38)} ${fmt(ops).padStart(12)} /s | ×${(ops / before).toFixed(2)} before${vsPeer}`)
  }
  return { scenario, peer, opsPerSec: Object.fromEntries(m) }
}

const before = await load(args.baseline)
const after = await load(args.after)
await withServers(async (servers) => {
  const results: Record<string, unknown>[] = []
  const l1 = await l1Hit(before, after)
  results.push(print('L1 hit get (1000 keys, ~150 B objects)', l1, 'bentocache memory'))
  const cluster = new Cluster(servers.clusterNodes, { enableAutoPipelining: true })
  const standalone = new Redis(servers.redisUrl, { enableAutoPipelining: true })
  try {
    results.push(print('L2 hit, 1000 concurrent, 3-master Cluster', await l2Hit('Cluster', { cluster: servers.clusterNodes }, cluster, before, after), 'ioredis getBuffer (auto-pipelining)'))
    results.push(print('L2 hit, 1000 concurrent, standalone', await l2Hit('standalone', servers.redisUrl, standalone, before, after), 'ioredis getBuffer (auto-pipelining)'))
  } finally {
    cluster.disconnect()
    standalone.disconnect()
  }
  results.push(print('Mixed 90/10, Cluster, 64 callers, default options (req/s)', await mixed(servers, before, after)))
  const file = await writeJson('throughput_before_after', { baseline: args.baseline, after: args.after, rounds: ROUNDS, timeMs: TIME, mixedMs: MIXED_MS }, { results })
  console.log(`\nwrote ${file}`)
})
