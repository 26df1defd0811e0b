// Worker threads doing L2 gets (issue 13): what do threads attached to a cache get
// from Redis, against the same threads each owning an ioredis client?
//
// A piscina pool of 2 threads per scenario; every task does CONCURRENT concurrent
// `get`s of distinct keys (the 1000 preloaded keys of the goals suite, ~150-byte
// `item(i)` values) and checks every answer. Scenarios:
//   own    workerCache() on a cache made with { l1: false, workerConnections: 'own' }:
//          each thread reads with its own connection (SplitTier → RedisTier)
//   owner  the same with workerConnections: 'owner': every read goes to the owning
//          (main) thread over the BroadcastChannel (RemoteTier → TierServer)
//   raw    the peer: each thread owns `new Redis(url, { enableAutoPipelining: true })`
//          (or a Cluster) and calls getBuffer
// l1: false on the owning cache, so every get is an L2 read. Throughput: for
// MEASURE_MS the main thread keeps IN_FLIGHT tasks queued on the pool (so neither
// thread idles between tasks) and counts finished gets / elapsed time. Each round
// runs every scenario once, in a rotated order; medians over ROUNDS rounds, and the
// ratios ours / raw per round (their median is quoted).
//
// This file is also the piscina workers' module (default export). No top-level
// await: piscina require()s it first through tsx.
//
// Alone: node --import tsx bench/worker_l2.ts  (NEARCACHE_WORKER_L2_MS, _ROUNDS, _CLUSTER=0 to skip the Cluster)
import os from 'node:os'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { isMainThread, workerData } from 'node:worker_threads'
import { Cluster, Redis } from 'ioredis'
import { Piscina } from 'piscina'
import { createCache, workerCache } from '../src/index.js'
import type { NearCache, RedisOption } from '../src/index.js'
import { item } from './fixtures.js'
import type { GoalRow } from './goals.js'
import { writeJson } from './results_json.js'
import { withServers } from './servers.js'
import type { BenchServers } from './servers.js'

export const SUITE = 'worker_l2'
const NAMESPACE = 'workers'
const KEYS = 1000
const CONCURRENT = 1000
const THREADS = 2
const IN_FLIGHT = 4
const MEASURE_MS = Number(process.env.NEARCACHE_WORKER_L2_MS ?? 3000)
const WARMUP_MS = 1000
const ROUNDS = Number(process.env.NEARCACHE_WORKER_L2_ROUNDS ?? 5)
const GOAL = 0.9

export const SETTINGS = {
  threads: THREADS,
  concurrentGetsPerTask: CONCURRENT,
  keys: `${KEYS} preloaded keys, item(i) (~150 bytes encoded); every task reads all of them at once`,
  tasksInFlight: IN_FLIGHT,
  measureMs: MEASURE_MS,
  warmupMs: WARMUP_MS,
  rounds: ROUNDS,
  own: "workerCache() on createCache({ redis, l1: false, workerConnections: 'own' })",
  owner: "workerCache() on createCache({ redis, l1: false, workerConnections: 'owner' })",
  raw: 'per thread: new Redis(url, { enableAutoPipelining: true }) or new Cluster(nodes, { enableAutoPipelining: true }); getBuffer',
  pool: "new Piscina({ filename: this file, execArgv: ['--import', 'tsx'], minThreads: 2, maxThreads: 2, idleTimeout: Infinity })",
}

type Kind = 'own' | 'owner' | 'raw'
const KINDS: Kind[] = ['own', 'owner', 'raw']

interface WorkerInput {
  kind: Kind
  nearcache?: unknown
  /** raw only: where to connect. */
  redis?: { url: string } | { cluster: { host: string; port: number }[] }
}

const keyOf = (i: number) => `item:${i}`

// ---- worker side ---------------------------------------------------------------------

let rawClient: Redis | Cluster | undefined

/** One task: CONCURRENT concurrent gets; answers how many; throws on a wrong or missing answer. */
export default async function task(): Promise<number> {
  const input = workerData as WorkerInput
  const gets = new Array<Promise<unknown>>(CONCURRENT)
  if (input.kind === 'raw') {
    const r = input.redis as WorkerInput['redis'] & object
    rawClient ??= 'url' in r ? new Redis(r.url, { enableAutoPipelining: true }) : new Cluster(r.cluster, { enableAutoPipelining: true })
    for (let i = 0; i < CONCURRENT; i++) gets[i] = rawClient.getBuffer(`${NAMESPACE}:${keyOf(i % KEYS)}`)
    const values = await Promise.all(gets)
    for (const v of values) if (v === null) throw new Error('raw: a preloaded key missed')
  } else {
    const cache: NearCache = await workerCache()
    for (let i = 0; i < CONCURRENT; i++) gets[i] = cache.get(keyOf(i % KEYS))
    const values = (await Promise.all(gets)) as { id: number }[]
    for (let i = 0; i < CONCURRENT; i++) if (values[i]?.id !== i % KEYS) throw new Error(`${input.kind}: wrong or missing value for ${keyOf(i % KEYS)}`)
  }
  return CONCURRENT
}

// ---- main side -----------------------------------------------------------------------

/** Gets per second of `pool` over `ms`, with IN_FLIGHT tasks kept queued. */
async function measure(pool: Piscina, ms: number): Promise<number> {
  let gets = 0
  const start = performance.now()
  const end = start + ms
  const lane = async () => {
    while (performance.now() < end) gets += (await pool.run(null)) as number
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane))
  return (gets / (performance.now() - start)) * 1000
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

export interface WorkerL2Result {
  server: string
  /** Per scenario, gets/s of each round. */
  rounds: Record<Kind, number[]>
  medians: Record<Kind, number>
  /** Median over rounds of ours / raw in that round. */
  ratios: { own: number; owner: number }
}

async function scenario(server: string, redis: Exclude<RedisOption, false>, raw: WorkerInput['redis']): Promise<WorkerL2Result> {
  const filename = fileURLToPath(import.meta.url)
  const caches: NearCache[] = []
  const pools = new Map<Kind, Piscina>()
  try {
    for (const kind of KINDS) {
      let data: WorkerInput = { kind, redis: raw }
      if (kind !== 'raw') {
        const cache = await createCache({ redis, namespace: NAMESPACE, l1: false, workerConnections: kind })
        caches.push(cache)
        if (caches.length === 1) await cache.setMany(Array.from({ length: KEYS }, (_, i) => ({ key: keyOf(i), value: item(i) })))
        data = { kind, nearcache: cache.handle }
      }
      pools.set(kind, new Piscina({ filename, workerData: data, execArgv: ['--import', 'tsx'], minThreads: THREADS, maxThreads: THREADS, idleTimeout: Infinity }))
    }
    for (const kind of KINDS) await measure(pools.get(kind) as Piscina, WARMUP_MS)
    const rounds: Record<Kind, number[]> = { own: [], owner: [], raw: [] }
    for (let r = 0; r < ROUNDS; r++) {
      for (let j = 0; j < KINDS.length; j++) {
        const kind = KINDS[(r + j) % KINDS.length] as Kind
        rounds[kind].push(await measure(pools.get(kind) as Piscina, MEASURE_MS))
      }
    }
    const ratio = (k: Kind) => median(rounds[k].map((v, i) => v / (rounds.raw[i] as number)))
    return { server, rounds, medians: { own: median(rounds.own), owner: median(rounds.owner), raw: median(rounds.raw) }, ratios: { own: ratio('own'), owner: ratio('owner') } }
  } finally {
    await Promise.all([...pools.values()].map((p) => p.destroy()))
    for (const c of caches) await c.close()
  }
}

export async function measureAll(servers: BenchServers, cluster = process.env.NEARCACHE_WORKER_L2_CLUSTER !== '0'): Promise<WorkerL2Result[]> {
  const out = [await scenario('standalone', servers.redisUrl, { url: servers.redisUrl })]
  if (cluster) out.push(await scenario('3-master Cluster', { cluster: servers.clusterNodes }, { cluster: servers.clusterNodes }))
  return out
}

/** Rows for bench/goals.ts: ours / the same workers each owning an ioredis client. */
export async function run(servers: BenchServers): Promise<GoalRow[]> {
  const rows: GoalRow[] = []
  for (const r of await measureAll(servers)) {
    for (const kind of ['own', 'owner'] as const) {
      const ratio = r.ratios[kind]
      rows.push({
        goal: `6. worker threads (piscina, ${THREADS}) L2 get, ${r.server}, workerConnections '${kind}'`,
        scenario: `workerCache() vs workers owning an ioredis client, ${CONCURRENT} concurrent per task`,
        unit: 'gets/s',
        ours: r.medians[kind],
        peer: r.medians.raw,
        ratio,
        goalRatio: kind === 'own' ? GOAL : null,
        met: kind === 'own' ? ratio >= GOAL : null,
      })
    }
  }
  return rows
}

async function main(): Promise<void> {
  const load = os.loadavg()[0]
  const results = await withServers((servers) => measureAll(servers))
  for (const r of results) {
    console.log(`\n${r.server}: gets/s per round (${THREADS} threads, ${CONCURRENT} concurrent gets per task)`)
    for (const k of KINDS) console.log(`  ${k.padEnd(6)} ${r.rounds[k].map((v) => Math.round(v).toLocaleString('en-US').padStart(9)).join(' ')}   median ${Math.round(r.medians[k]).toLocaleString('en-US')}`)
    console.log(`  ratio own / raw:   ${r.ratios.own.toFixed(2)}   (goal >= ${GOAL})`)
    console.log(`  ratio owner / raw: ${r.ratios.owner.toFixed(2)}`)
  }
  console.log(`load average (1 min) before / after: ${load?.toFixed(2)} / ${os.loadavg()[0]?.toFixed(2)}`)
  console.log(`results: ${await writeJson(SUITE, SETTINGS, { results })}`)
}

if (isMainThread && process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err)
    process.exitCode = 1
  })
}
