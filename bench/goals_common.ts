// Shared by the parts of the goals suite (bench/goals.ts): settings, the row shape and small helpers.
import type { Cluster, Redis } from 'ioredis'
import { Bench } from 'tinybench'
import type { TaskFigure } from './report.js'

export const NAMESPACE = 'goals'
export const L1_KEYS = 1000
/** More keys than the per-thread decode memo keeps (4096), so it never hits: the "memo cold" L1 rows. */
export const L1_COLD_KEYS = 20_000
export const L1_GETS_PER_ITERATION = 1000
export const L2_KEYS_PER_ITERATION = 1000
export const OPEN_LOOP_KEYS = 50_000
export const SETTINGS = {
  l1Hit: {
    preloadedKeys: L1_COLD_KEYS, sequentialGetsPerIteration: L1_GETS_PER_ITERATION, time: 1000, warmupTime: 250, warmupIterations: 16,
    keys: `the goal rows cycle over the first ${L1_KEYS} keys (as bench/l1_hit.ts); the "memo cold" rows over all ${L1_COLD_KEYS}`,
  },
  l2Hit: {
    concurrentGetsPerIteration: L2_KEYS_PER_ITERATION, time: 2000, warmupTime: 500, warmupIterations: 16,
    keys: 'the same 1000 keys every iteration (the goal rows); the "memo cold" row cycles 1000-key slices of 50,000 so the per-thread decode memo (4096 entries) never hits',
  },
  openLoop: { rate: 50_000, tickMs: 1, durationMs: 5000, warmupMs: 1000, drainMs: 3000, distinctKeys: OPEN_LOOP_KEYS, latencyFrom: 'scheduled start' },
  l1Latency: { calls: 1_000_000, warmupCalls: 50_000, clock: 'performance.now() around each awaited get' },
  peers: {
    nearcache: "createCache({ redis: false }) for L1; createCache({ redis: url | { cluster }, l1: false }) for L2 (default batchGets)",
    'bentocache memory': "bentostore().useL1Layer(memoryDriver({ maxSize: '100mb', maxItems: 100000 }))",
    cacheable: 'new Cacheable() (Keyv over CacheableMemory, useClone: true)',
    'bentocache redis': 'bentostore().useL2Layer(redisDriver({ connection: new Redis(url, { enableAutoPipelining: true }) })) — L2 only, no L1 layer',
    ioredis: 'getBuffer with enableAutoPipelining: true (Redis or Cluster)',
  },
  ratio: 'higher is better: ours/peer for throughput, peer/ours for latency',
}

/** One line of the goals table. `ratio` is null when nothing was measured. */
export interface GoalRow {
  goal: string
  scenario: string
  unit: string
  ours: number | null
  peer: number | null
  /** Higher is better: ours/peer for throughput, peer/ours for latency. */
  ratio: number | null
  /** The ratio the product aims for; null = reported only, no goal set. */
  goalRatio: number | null
  met: boolean | null
}


export const l1Keys = Array.from({ length: L1_COLD_KEYS }, (_, i) => `bench:item:${i}`)
/** The standalone server holds all of these (the open loop and the cold-memo task cycle through them); the Cluster the first 1000. */
export const manyKeys = Array.from({ length: OPEN_LOOP_KEYS }, (_, i) => `bench:item:${i}`)
export const l2Keys = manyKeys.slice(0, L2_KEYS_PER_ITERATION)

export function throughputRow(goal: string, scenario: string, ours: TaskFigure, peer: TaskFigure, goalRatio: number | null): GoalRow {
  const ratio = ours.opsPerSec / peer.opsPerSec
  return { goal, scenario, unit: 'gets/s', ours: ours.opsPerSec, peer: peer.opsPerSec, ratio, goalRatio, met: goalRatio === null ? null : ratio >= goalRatio }
}

export function latencyRow(goal: string, scenario: string, unit: string, ours: number, peer: number): GoalRow {
  return { goal, scenario, unit, ours, peer, ratio: peer / ours, goalRatio: null, met: null }
}

export function expectHit(what: string, v: unknown): void {
  if (v === undefined || v === null) throw new Error(`${what}: a preloaded key missed`)
}

export function expectAllHit(what: string, values: readonly unknown[]): void {
  const misses = values.filter((v) => v === undefined || v === null).length
  if (misses > 0) throw new Error(`${what}: ${misses} of ${values.length} gets missed; the preload did not work`)
}

export async function ready(client: Redis | Cluster): Promise<void> {
  if (client.status === 'ready') return
  await new Promise<void>((resolve, reject) => {
    client.once('ready', resolve)
    client.once('error', reject)
  })
}

export function bench(name: string, s: { time: number; warmupTime: number; warmupIterations: number }): Bench {
  return new Bench({ name, ...s, timestampProvider: 'hrtimeNow', warmup: true, throws: true })
}

/** Nearest-rank percentile of an ascending array. */
export function pct(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] as number
}
export interface GoalsResult {
  rows: GoalRow[]
  seconds: Record<string, number>
  /** os.loadavg() (1, 5, 15 min) before and after: other work on the 2 cores moves every figure. */
  loadAverage: { start: number[]; end: number[] }
}
