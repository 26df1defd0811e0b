// The product's throughput goals, each one a ratio against a peer measured in this
// same process and run (never against a remembered figure):
//
//   1. L1 hit `get` (redis: false): nearcache / bentocache memory tier >= 10, / cacheable >= 10
//   2. L2 hit `get`, l1: false, 1000 concurrent distinct keys per iteration, standalone:
//      nearcache / raw ioredis getBuffer (auto-pipelining) >= 2, / bentocache Redis tier >= 8
//   3. The same on the 3-master Cluster: nearcache / raw ioredis Cluster (auto-pipelining) >= 2
//   4. Codec pool (rows from bench/codec_pool.ts's goalRows(), if it has one)
//   5. Latency under a fixed 50,000 get/s open-loop L2 load (l1: false) against raw
//      ioredis at the same rate, and per-call L1-hit latency against bentocache's
//      memory tier. No goal ratio was set for these; they are reported, not judged.
//
// The goal rows of 1 and 2 read the same 1000 keys over and over, so nearcache's
// per-thread decode memo (4096 entries) always hits there; "memo cold" rows (no goal,
// reported) cycle over more keys than it keeps, to show the other side.
//
// Every ratio reads "higher is better": ours/peer for throughput, peer/ours for latency.
// Prints a table, writes bench/results/goals.json and bench/results/goals.svg (a bar
// chart of the ratios with each goal marked). Runs last in `npm run bench`.
//
// Alone: npm run bench -- goals
import { writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { redisDriver } from 'bentocache/drivers/redis'
import { Cacheable } from 'cacheable'
import { Cluster, Redis } from 'ioredis'
import { Bench } from 'tinybench'
import { createCache } from '../src/index.js'
import type { RedisOption } from '../src/index.js'
import { item } from './fixtures.js'
import { figure } from './report.js'
import type { TaskFigure } from './report.js'
import { writeJson } from './results_json.js'
import { withServers } from './servers.js'
import type { BenchServers } from './servers.js'

export const SUITE = 'goals'
const NAMESPACE = 'goals'
const L1_KEYS = 1000
/** More keys than the per-thread decode memo keeps (4096), so it never hits: the "memo cold" L1 rows. */
const L1_COLD_KEYS = 20_000
const L1_GETS_PER_ITERATION = 1000
const L2_KEYS_PER_ITERATION = 1000
const OPEN_LOOP_KEYS = 50_000
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

/** Something the optimizer cannot prove unused. */
let sink: unknown

const l1Keys = Array.from({ length: L1_COLD_KEYS }, (_, i) => `bench:item:${i}`)
/** The standalone server holds all of these (the open loop and the cold-memo task cycle through them); the Cluster the first 1000. */
const manyKeys = Array.from({ length: OPEN_LOOP_KEYS }, (_, i) => `bench:item:${i}`)
const l2Keys = manyKeys.slice(0, L2_KEYS_PER_ITERATION)

function throughputRow(goal: string, scenario: string, ours: TaskFigure, peer: TaskFigure, goalRatio: number | null): GoalRow {
  const ratio = ours.opsPerSec / peer.opsPerSec
  return { goal, scenario, unit: 'gets/s', ours: ours.opsPerSec, peer: peer.opsPerSec, ratio, goalRatio, met: goalRatio === null ? null : ratio >= goalRatio }
}

function latencyRow(goal: string, scenario: string, unit: string, ours: number, peer: number): GoalRow {
  return { goal, scenario, unit, ours, peer, ratio: peer / ours, goalRatio: null, met: null }
}

function expectHit(what: string, v: unknown): void {
  if (v === undefined || v === null) throw new Error(`${what}: a preloaded key missed`)
}

function expectAllHit(what: string, values: readonly unknown[]): void {
  const misses = values.filter((v) => v === undefined || v === null).length
  if (misses > 0) throw new Error(`${what}: ${misses} of ${values.length} gets missed; the preload did not work`)
}

async function ready(client: Redis | Cluster): Promise<void> {
  if (client.status === 'ready') return
  await new Promise<void>((resolve, reject) => {
    client.once('ready', resolve)
    client.once('error', reject)
  })
}

function bench(name: string, s: { time: number; warmupTime: number; warmupIterations: number }): Bench {
  return new Bench({ name, ...s, timestampProvider: 'hrtimeNow', warmup: true, throws: true })
}

/** Nearest-rank percentile of an ascending array. */
function pct(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] as number
}

// ---- 1 and 5b: L1 hit ---------------------------------------------------------------

async function l1Goals(): Promise<GoalRow[]> {
  const ours = await createCache({ redis: false, namespace: NAMESPACE })
  const bento = new BentoCache({
    default: 'memory',
    stores: { memory: bentostore().useL1Layer(memoryDriver({ maxSize: '100mb', maxItems: 100_000 })) },
  })
  const cacheable = new Cacheable()
  try {
    await ours.setMany(l1Keys.map((key, i) => ({ key, value: item(i) })))
    for (let i = 0; i < L1_COLD_KEYS; i++) {
      await bento.set({ key: l1Keys[i] as string, value: item(i) })
      await cacheable.set(l1Keys[i] as string, item(i))
    }
    const getters: [string, (k: string) => Promise<unknown>][] = [
      ['nearcache', (k) => ours.get(k)],
      ['bentocache memory', (k) => bento.get({ key: k })],
      ['cacheable', (k) => cacheable.get(k)],
    ]
    for (const [name, get] of getters) {
      for (let i = 0; i < L1_COLD_KEYS; i += i < L1_KEYS ? 1 : 7) {
        const v = await get(l1Keys[i] as string)
        if (JSON.stringify(v) !== JSON.stringify(item(i))) throw new Error(`${name}: ${l1Keys[i]} answered ${JSON.stringify(v)}`)
      }
    }

    const scenario = 'L1 hit get'
    const b = bench(scenario, SETTINGS.l1Hit)
    for (const n of [L1_KEYS, L1_COLD_KEYS]) {
      for (const [name, get] of getters) {
        let i = 0
        b.add(`${name}, ${n} keys`, async () => {
          for (let j = 0; j < L1_GETS_PER_ITERATION; j++) {
            const v = await get(l1Keys[i++ % n] as string)
            if (v === undefined) expectHit(name, v)
            sink = v
          }
        })
      }
    }
    await b.run()
    const [near, bentoFig, cacheableFig, nearCold, bentoCold, cacheableCold] = b.tasks.map((t) => figure(scenario, t, L1_GETS_PER_ITERATION)) as [TaskFigure, TaskFigure, TaskFigure, TaskFigure, TaskFigure, TaskFigure]
    const g1 = '1. L1 hit get (1000 sequential / iteration)'
    const rows = [
      throughputRow(g1, `vs bentocache memory tier (${L1_KEYS} keys)`, near, bentoFig, 10),
      throughputRow(g1, `vs cacheable (${L1_KEYS} keys)`, near, cacheableFig, 10),
      throughputRow(g1, `memo cold (${L1_COLD_KEYS.toLocaleString('en-US')} keys) vs bentocache memory tier`, nearCold, bentoCold, null),
      throughputRow(g1, `memo cold (${L1_COLD_KEYS.toLocaleString('en-US')} keys) vs cacheable`, nearCold, cacheableCold, null),
    ]

    // 5b: per-call latency of an L1 hit, ours and bentocache's memory tier, same call count.
    const lat = async (get: (k: string) => Promise<unknown>) => {
      const { calls, warmupCalls } = SETTINGS.l1Latency
      for (let i = 0; i < warmupCalls; i++) sink = await get(l1Keys[i % L1_KEYS] as string)
      const out = new Float64Array(calls)
      for (let i = 0; i < calls; i++) {
        const k = l1Keys[i % L1_KEYS] as string
        const t0 = performance.now()
        const v = await get(k)
        out[i] = performance.now() - t0
        sink = v
      }
      out.sort()
      return { p50: pct(out, 0.5) * 1000, p99: pct(out, 0.99) * 1000, p999: pct(out, 0.999) * 1000 }
    }
    const o = await lat(getters[0]![1])
    const p = await lat(getters[1]![1])
    const g = '5. L1 hit get latency, 1M calls over 1000 keys'
    rows.push(
      latencyRow(g, 'p50 vs bentocache memory tier', 'µs', o.p50, p.p50),
      latencyRow(g, 'p99 vs bentocache memory tier', 'µs', o.p99, p.p99),
      latencyRow(g, 'p99.9 vs bentocache memory tier', 'µs', o.p999, p.p999),
    )
    return rows
  } finally {
    await Promise.allSettled([ours.close(), bento.disconnect(), cacheable.disconnect()])
  }
}

// ---- 2 and 3: L2 hit throughput -----------------------------------------------------

interface Closer { close(): Promise<unknown> }

async function l2Goals(goal: string, redis: RedisOption, raw: () => Redis | Cluster, standalone: (() => Redis) | null): Promise<GoalRow[]> {
  const opened: Closer[] = []
  try {
    const ours = await createCache({ redis, namespace: NAMESPACE, l1: false })
    opened.push(ours)
    const rawClient = raw()
    opened.push({ close: () => rawClient.quit() })
    await ready(rawClient)
    const preload = standalone ? manyKeys : l2Keys
    for (let i = 0; i < preload.length; i += 5000) {
      await ours.setMany(preload.slice(i, i + 5000).map((key, j) => ({ key, value: item(i + j) })))
    }
    const rawKeys = l2Keys.map((k) => `${NAMESPACE}:${k}`)

    const tasks: [string, () => Promise<unknown[]>][] = [
      ['nearcache', () => Promise.all(l2Keys.map((k) => ours.get(k)))],
      ['ioredis getBuffer (autopipelining)', () => Promise.all(rawKeys.map((k) => rawClient.getBuffer(k)))],
    ]
    if (standalone) {
      const slices = Array.from({ length: OPEN_LOOP_KEYS / L2_KEYS_PER_ITERATION }, (_, i) => manyKeys.slice(i * L2_KEYS_PER_ITERATION, (i + 1) * L2_KEYS_PER_ITERATION))
      let next = 0
      tasks.push(['nearcache, memo cold', () => Promise.all((slices[next++ % slices.length] as string[]).map((k) => ours.get(k)))])
      const connection = standalone()
      opened.push({ close: () => connection.quit() })
      await ready(connection)
      const bento = new BentoCache({ default: 'redis', stores: { redis: bentostore().useL2Layer(redisDriver({ connection })) } })
      opened.push({ close: () => bento.disconnect() })
      for (let i = 0; i < L2_KEYS_PER_ITERATION; i += 100) {
        await Promise.all(l2Keys.slice(i, i + 100).map((key, j) => bento.set({ key, value: item(i + j) })))
      }
      tasks.push(['bentocache redis tier', () => Promise.all(l2Keys.map((k) => bento.get({ key: k })))])
    }
    for (const [name, getAll] of tasks) expectAllHit(`${goal} ${name}`, await getAll())

    const b = bench(goal, SETTINGS.l2Hit)
    for (const [name, getAll] of tasks) b.add(name, async () => { sink = await getAll() })
    await b.run()
    const figs = b.tasks.map((t) => figure(goal, t, L2_KEYS_PER_ITERATION))
    const [near, io, cold, bentoFig] = figs as [TaskFigure, TaskFigure, TaskFigure | undefined, TaskFigure | undefined]
    const rows = [throughputRow(goal, 'vs raw ioredis getBuffer, autopipelined', near, io, 2)]
    if (bentoFig) rows.push(throughputRow(goal, "vs bentocache's Redis tier", near, bentoFig, 8))
    if (cold) {
      rows.push(
        throughputRow(goal, 'memo cold (keys over 50,000) vs raw ioredis', cold, io, null),
        throughputRow(goal, "memo cold (keys over 50,000) vs bentocache's Redis tier", cold, bentoFig as TaskFigure, null),
      )
    }
    return rows
  } finally {
    await Promise.allSettled(opened.reverse().map((c) => c.close()))
  }
}

// ---- 5a: latency under a fixed open-loop load ---------------------------------------

interface OpenLoopResult {
  p50: number
  p99: number
  /** Completed gets per second, from the first scheduled start to the last completion. */
  achievedRate: number
  misses: number
  errors: number
  /** Requests still pending at the drain deadline; their latency counts as their age then (a lower bound). */
  unfinished: number
  /** This process's CPU time (user + system) per completed get. */
  cpuUsPerGet: number
  /** Settles when no request of this run is pending any more (later than the result when some were unfinished). */
  drained: Promise<void>
}

/**
 * Issues `rate` gets per second for `durationMs`, scheduled by elapsed time (each
 * ~1 ms timer tick issues every request whose scheduled start has passed), never
 * waiting for earlier ones. Latency runs from a request's scheduled start, so a late
 * tick counts against the system (no coordinated omission). Waits at most
 * `drainMs` after the last scheduled start for the stragglers, so an overloaded
 * system cannot stretch the suite without bound.
 */
export function openLoop(get: (k: string) => Promise<unknown>, keys: readonly string[], rate: number, durationMs: number, drainMs = SETTINGS.openLoop.drainMs): Promise<OpenLoopResult> {
  const total = Math.round((rate * durationMs) / 1000)
  const lat = new Float64Array(total).fill(Number.NaN)
  const perMs = rate / 1000
  let issued = 0
  let done = 0
  let misses = 0
  let errors = 0
  let lastDone = 0
  let over = false
  let pending = 0
  let onDrained: () => void = () => {}
  const drained = new Promise<void>((r) => (onDrained = r))
  return new Promise((resolve) => {
    const start = performance.now()
    const cpu = process.cpuUsage()
    const scheduled = (idx: number) => start + idx / perMs
    const end = (unfinished: number) => {
      over = true
      clearTimeout(deadline)
      const used = process.cpuUsage(cpu)
      const completed = total - unfinished
      lat.sort()
      resolve({
        p50: pct(lat, 0.5),
        p99: pct(lat, 0.99),
        achievedRate: completed / ((lastDone - start) / 1000),
        misses,
        errors,
        unfinished,
        cpuUsPerGet: (used.user + used.system) / Math.max(1, completed),
        drained,
      })
    }
    const deadline = setTimeout(() => {
      const now = performance.now()
      for (let i = 0; i < total; i++) if (Number.isNaN(lat[i])) lat[i] = now - scheduled(i)
      end(total - done)
    }, durationMs + drainMs)
    const finish = (idx: number) => {
      if (--pending === 0 && issued === total) onDrained()
      if (over) return
      const now = performance.now()
      lat[idx] = now - scheduled(idx)
      lastDone = now
      if (++done === total) end(0)
    }
    const tick = () => {
      if (over) return
      const due = Math.min(total, Math.floor((performance.now() - start) * perMs) + 1)
      while (issued < due) {
        const idx = issued++
        pending++
        get(keys[idx % keys.length] as string).then(
          (v) => {
            if (v === undefined || v === null) misses++
            finish(idx)
          },
          () => {
            errors++
            finish(idx)
          },
        )
      }
      if (issued < total) setTimeout(tick, SETTINGS.openLoop.tickMs)
    }
    tick()
  })
}

/** Runs after l2Goals on the standalone server, which left the 50,000 keys there. */
async function openLoopGoals(redisUrl: string): Promise<GoalRow[]> {
  const { rate, durationMs, warmupMs } = SETTINGS.openLoop
  const keys = manyKeys
  const ours = await createCache({ redis: redisUrl, namespace: NAMESPACE, l1: false })
  const raw = new Redis(redisUrl, { enableAutoPipelining: true })
  try {
    await ready(raw)
    const rawKeys = keys.map((k) => `${NAMESPACE}:${k}`)
    const oursGet = (k: string) => ours.get(k)
    const rawGet = (k: string) => raw.getBuffer(`${NAMESPACE}:${k}`)
    expectAllHit('open loop nearcache', await Promise.all(keys.slice(-1000).map(oursGet)))
    expectAllHit('open loop ioredis', await Promise.all(rawKeys.slice(-1000).map((k) => raw.getBuffer(k))))

    // An overloaded run leaves requests pending: let them finish (bounded) before the next run starts.
    const settle = (r: OpenLoopResult) => Promise.race([r.drained, new Promise((ok) => setTimeout(ok, SETTINGS.openLoop.drainMs))]).then(() => r)
    await settle(await openLoop(oursGet, keys, rate, warmupMs))
    const o = await settle(await openLoop(oursGet, keys, rate, durationMs))
    await settle(await openLoop(rawGet, keys, rate, warmupMs))
    const p = await settle(await openLoop(rawGet, keys, rate, durationMs))
    for (const [name, r] of [['nearcache', o], ['ioredis', p]] as const) {
      if (r.misses > 0 || r.errors > 0) throw new Error(`open loop ${name}: ${r.misses} misses, ${r.errors} errors`)
    }
    const g = '5. L2 get at a fixed 50,000/s, 5 s'
    const total = (rate * durationMs) / 1000
    const note = (what: string, r: OpenLoopResult) => (r.unfinished > 0 ? `; ${what} ${r.unfinished.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} unfinished after +${SETTINGS.openLoop.drainMs / 1000} s (lower bound)` : '')
    return [
      latencyRow(g, 'p50 from scheduled start vs raw ioredis', 'ms', o.p50, p.p50),
      latencyRow(g, `p99 from scheduled start vs raw ioredis${note('ours', o)}${note('peer', p)}`, 'ms', o.p99, p.p99),
      // Throughput: ours/peer, as for the other throughput rows.
      { goal: g, scenario: 'achieved rate vs raw ioredis (target 50,000/s)', unit: 'gets/s', ours: o.achievedRate, peer: p.achievedRate, ratio: o.achievedRate / p.achievedRate, goalRatio: null, met: null },
      // Where the time goes: this process's CPU time per get while holding the rate.
      latencyRow(g, 'process CPU per get vs raw ioredis', 'µs', o.cpuUsPerGet, p.cpuUsPerGet),
    ]
  } finally {
    await Promise.allSettled([ours.close(), raw.quit()])
  }
}

// ---- 4: codec pool (another suite's rows) -------------------------------------------

interface CodecRow { scenario: string; ours: number; peer: number; ratio: number; goal: number }

async function codecGoals(): Promise<GoalRow[]> {
  const g = '4. codec pool'
  const missing = (why: string): GoalRow[] => [{ goal: g, scenario: `not measured (${why})`, unit: '', ours: null, peer: null, ratio: null, goalRatio: null, met: null }]
  let mod: { goalRows?: unknown }
  try {
    // A computed specifier: the file may not exist yet, and tsc must not resolve it.
    mod = (await import(new URL('./codec_pool.js', import.meta.url).href)) as { goalRows?: unknown }
  } catch (err) {
    const code = (err as { code?: string }).code
    return missing(code === 'ERR_MODULE_NOT_FOUND' ? 'bench/codec_pool.ts missing goalRows' : `bench/codec_pool.ts failed to load: ${(err as Error).message}`)
  }
  if (typeof mod.goalRows !== 'function') return missing('bench/codec_pool.ts missing goalRows')
  let rows: unknown
  try {
    rows = await (mod.goalRows as () => Promise<unknown>)()
  } catch (err) {
    return missing(`bench/codec_pool.ts goalRows() failed: ${(err as Error).message}`)
  }
  const valid = (r: unknown): r is CodecRow => {
    const o = r as Record<string, unknown>
    return typeof r === 'object' && r !== null && typeof o.scenario === 'string' &&
      ['ours', 'peer', 'ratio', 'goal'].every((f) => typeof o[f] === 'number' && Number.isFinite(o[f]))
  }
  if (!Array.isArray(rows) || rows.length === 0 || !rows.every(valid)) return missing('bench/codec_pool.ts goalRows() answered no valid rows')
  return rows.map((r) => ({ goal: g, scenario: r.scenario, unit: '', ours: r.ours, peer: r.peer, ratio: r.ratio, goalRatio: r.goal, met: r.ratio >= r.goal }))
}

// ---- run, report --------------------------------------------------------------------

export interface GoalsResult {
  rows: GoalRow[]
  seconds: Record<string, number>
  /** os.loadavg() (1, 5, 15 min) before and after: other work on the 2 cores moves every figure. */
  loadAverage: { start: number[]; end: number[] }
}

/** Runs every part one after the other (never concurrently: they would share the 2 cores). */
export async function run(servers: BenchServers): Promise<GoalsResult> {
  const rows: GoalRow[] = []
  const seconds: Record<string, number> = {}
  const loadStart = os.loadavg()
  const part = async (name: string, fn: () => Promise<GoalRow[]>) => {
    const t = performance.now()
    rows.push(...(await fn()))
    seconds[name] = Number(((performance.now() - t) / 1000).toFixed(1))
  }
  await part('l1', l1Goals)
  await part('l2 standalone', () => l2Goals('2. L2 hit get, standalone, 1000 concurrent', servers.redisUrl,
    () => new Redis(servers.redisUrl, { enableAutoPipelining: true }),
    () => new Redis(servers.redisUrl, { enableAutoPipelining: true })))
  await part('l2 cluster', () => l2Goals('3. L2 hit get, 3-master Cluster, 1000 concurrent', { cluster: servers.clusterNodes },
    () => new Cluster(servers.clusterNodes, { enableAutoPipelining: true }), null))
  await part('open loop', () => openLoopGoals(servers.redisUrl))
  await part('codec pool', codecGoals)
  rows.sort((a, b) => a.goal.localeCompare(b.goal, 'en', { numeric: true }))
  if (sink === Symbol.for('never')) console.log(sink)
  return { rows, seconds, loadAverage: { start: loadStart, end: os.loadavg() } }
}

function fmt(n: number | null, unit: string): string {
  if (n === null) return '—'
  if (unit === 'µs' || unit === 'ms') return `${n.toFixed(n < 10 ? 3 : 1)} ${unit}`
  const s = n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2)
  return unit ? `${s} ${unit}` : s
}

function ratioText(r: number | null): string {
  if (r === null) return '—'
  return r >= 0.1 ? r.toFixed(2) : r.toPrecision(2)
}

function machine() {
  const cpus = os.cpus()
  return { cpu: cpus[0]?.model ?? 'unknown', cores: cpus.length, node: process.version }
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

/**
 * A horizontal bar per row, grouped under its goal: the ratio, the goal as a black
 * vertical line; green when met, red when missed, grey when there is no goal.
 */
export function svg(result: GoalsResult, date: string): string {
  const { rows } = result
  const m = machine()
  const W = 1100
  const labelW = 400
  const plotX = labelW + 12
  const plotW = W - plotX - 70
  const barH = 16
  const rowH = 24
  const headH = 26
  const top = 96
  const groups: { goal: string; rows: GoalRow[] }[] = []
  for (const r of rows) {
    const last = groups[groups.length - 1]
    if (last && last.goal === r.goal) last.rows.push(r)
    else groups.push({ goal: r.goal, rows: [r] })
  }
  const plotH = groups.length * headH + rows.length * rowH
  const H = top + plotH + 56
  const max = Math.max(1, ...rows.flatMap((r) => [r.ratio ?? 0, r.goalRatio ?? 0])) * 1.08
  const x = (v: number) => plotX + (Math.min(v, max) / max) * plotW
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="12" y="26" font-size="17" font-weight="bold">${esc(`nearcache throughput goals — ${date.slice(0, 16).replace('T', ' ')} UTC`)}</text>`,
    `<text x="12" y="46" fill="#333">${esc(`${m.cpu}, ${m.cores} cores, Node ${m.node}, ${process.platform} ${os.release()} · load average at start ${result.loadAverage.start.map((n) => n.toFixed(2)).join(' ')}`)}</text>`,
    `<text x="12" y="64" fill="#555">${esc('ratio = ours / peer (latency and CPU rows: peer / ours), higher is better; peers measured in the same run and process')}</text>`,
  ]
  // Legend.
  const legend: [string, string][] = [['#2e9e44', 'goal met'], ['#d0342c', 'goal missed'], ['#9e9e9e', 'no goal set (reported)']]
  legend.forEach(([color, text], i) => {
    const lx = 12 + i * 190
    out.push(`<rect x="${lx}" y="74" width="12" height="12" fill="${color}"/><text x="${lx + 18}" y="85">${esc(text)}</text>`)
  })
  out.push(`<line x1="${12 + 3 * 190}" y1="73" x2="${12 + 3 * 190}" y2="87" stroke="#000" stroke-width="2"/><text x="${18 + 3 * 190}" y="85">goal ratio</text>`)
  // Gridlines.
  const step = max > 24 ? 5 : max > 12 ? 2 : max > 3 ? 1 : 0.5
  for (let v = 0; v <= max; v += step) {
    out.push(`<line x1="${x(v)}" y1="${top}" x2="${x(v)}" y2="${top + plotH}" stroke="#e6e6e6"/>`)
    out.push(`<text x="${x(v)}" y="${top + plotH + 16}" text-anchor="middle" fill="#666">${v}</text>`)
  }
  out.push(`<line x1="${x(1)}" y1="${top}" x2="${x(1)}" y2="${top + plotH}" stroke="#bbbbbb" stroke-dasharray="4 3"/>`)
  out.push(`<text x="${plotX + plotW / 2}" y="${top + plotH + 36}" text-anchor="middle" fill="#444">ratio (dashed: 1 = parity)</text>`)
  let y = top
  for (const g of groups) {
    out.push(`<text x="12" y="${y + 18}" font-weight="bold">${esc(g.goal)}</text>`)
    y += headH
    for (const r of g.rows) {
      const mid = y + barH / 2 + 4
      const label = r.scenario.length > 62 ? `${r.scenario.slice(0, 61)}…` : r.scenario
      out.push(`<text x="${labelW}" y="${mid}" text-anchor="end">${esc(label)}</text>`)
      if (r.ratio === null) {
        out.push(`<text x="${plotX + 4}" y="${mid}" fill="#888" font-style="italic">not measured</text>`)
      } else {
        const color = r.met === null ? '#9e9e9e' : r.met ? '#2e9e44' : '#d0342c'
        out.push(`<rect x="${plotX}" y="${y}" width="${Math.max(1.5, x(r.ratio) - plotX)}" height="${barH}" fill="${color}"><title>${esc(`${r.scenario}: ours ${fmt(r.ours, r.unit)}, peer ${fmt(r.peer, r.unit)}`)}</title></rect>`)
        out.push(`<text x="${x(r.ratio) + 4}" y="${mid}">${ratioText(r.ratio)}</text>`)
        if (r.goalRatio !== null) {
          out.push(`<line x1="${x(r.goalRatio)}" y1="${y - 3}" x2="${x(r.goalRatio)}" y2="${y + barH + 3}" stroke="#000" stroke-width="2"/>`)
          out.push(`<text x="${x(r.goalRatio) + 4}" y="${mid}" font-size="10" fill="#000">${r.ratio < r.goalRatio * 0.8 || r.ratio > r.goalRatio * 1.25 ? `goal ${r.goalRatio}` : ''}</text>`)
        }
      }
      y += rowH
    }
  }
  out.push('</svg>')
  return `${out.join('\n')}\n`
}

/** Prints the table, writes bench/results/goals.json and goals.svg. */
export async function report(result: GoalsResult): Promise<void> {
  console.log(`\n== ${SUITE} ==`)
  console.table(result.rows.map((r) => ({
    goal: r.goal,
    scenario: r.scenario,
    ours: fmt(r.ours, r.unit),
    peer: fmt(r.peer, r.unit),
    ratio: ratioText(r.ratio),
    'goal ratio': r.goalRatio === null ? '—' : `>= ${r.goalRatio}`,
    'met?': r.met === null ? (r.ratio === null ? '—' : 'n/a (no goal)') : r.met ? 'yes' : 'NO',
  })))
  const judged = result.rows.filter((r) => r.met !== null)
  console.log(`goals met: ${judged.filter((r) => r.met).length} of ${judged.length} · ratio = ours/peer (latency rows: peer/ours), higher is better`)
  const la = (l: number[]) => l.map((n) => n.toFixed(2)).join(' ')
  console.log(`time per part (s): ${JSON.stringify(result.seconds)} · load average at start ${la(result.loadAverage.start)}, at end ${la(result.loadAverage.end)}`)
  const file = await writeJson(SUITE, SETTINGS, { rows: result.rows, secondsPerPart: result.seconds, loadAverage: result.loadAverage })
  const date = new Date().toISOString()
  const svgFile = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results', `${SUITE}.svg`)
  await writeFile(svgFile, svg(result, date))
  console.log(`results: ${file}, ${path.relative(process.cwd(), svgFile)}`)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await withServers(async (servers) => report(await run(servers)))
}
