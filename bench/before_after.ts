// Before/after in one run (issue 11: "L1 and L2 benchmarks are not slower. Show the
// ratios before and after in one run."). Loads createCache from two checkouts into
// ONE process (two module copies: --baseline, and this checkout or --after) and
// measures the same tasks on both in ONE tinybench Bench, interleaved task by task
// (before, after, before, after, ...; which side goes first flips every round), so
// both see the same machine state. The whole Bench runs --rounds times; the verdict
// per task is the median of the rounds' ratios, and the spread of the ratios is the
// noise band of the machine.
//
//   node --import tsx bench/before_after.ts --baseline /work/baseline
//        [--after <checkout, default this one>] [--redis redis://127.0.0.1:6379]
//        [--time <ms per task and round, default 1000>] [--rounds <default 3>]
//
// ratio = after ops/s ÷ before ops/s (medians of tinybench's per-iteration
// throughput): above 1 the after code is faster. A second column divides the fastest
// iterations instead (a cross-check on a busy machine: other processes only add time). Without --redis a throw-away
// redis-server starts on a free loopback port and is stopped at the end. Every cache
// has its own root namespace (bench_<side>_<cache>), so no two share entries or an
// invalidation channel. Figures go to bench/results/before_after.json.
import { execFileSync } from 'node:child_process'
import { existsSync, realpathSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { Bench } from 'tinybench'
import type { CacheOptions, NearCache } from '../src/index.js'
import { startStandalone } from '../test/helpers/redis_servers.js'
import { item } from './fixtures.js'
import { figure } from './report.js'
import type { TaskFigure } from './report.js'
import { writeJson } from './results_json.js'

const KEYS = 1000
/** Sequential awaited calls per tinybench iteration for the sub-µs L1 tasks, so the harness's own per-iteration cost does not flatten the ratio. */
const SEQUENTIAL = 100
const GET_MANY = 100
const WARMUP_TIME = 250
const WARMUP_ITERATIONS = 16
const keys = Array.from({ length: KEYS }, (_, i) => `item:${i}`)
const windows = Array.from({ length: KEYS / GET_MANY }, (_, w) => keys.slice(w * GET_MANY, (w + 1) * GET_MANY))

interface Api {
  createCache(options?: CacheOptions): Promise<NearCache>
}
interface Side {
  label: 'before' | 'after'
  root: string
  api: Api
}
interface Caches {
  /** redis: false: the L1 is the whole cache. */
  l1: NearCache
  /** L1 in front of standalone Redis (the default shape with Redis). */
  l1l2: NearCache
  /** Standalone Redis alone (l1: false). */
  l2: NearCache
}
/** A task's figures plus its fastest iteration as ops/s: CPU contention only ever adds time, so this moves less with the load. */
type Fig = TaskFigure & { bestOpsPerSec: number }
interface TaskDef {
  name: string
  /** Operations per tinybench iteration: ops/s = iterations/s × this. */
  ops: number
  /** What one operation is. */
  unit: string
  make(c: Caches, side: string): { fn: () => Promise<void>; beforeAll?: () => Promise<void>; afterAll?: () => void }
}

const l2Hits = (c: NearCache) => c.stats().namespaces[c.prefix]?.hits.l2 ?? 0
/** Something the optimizer cannot prove unused. */
let sink: unknown
let loaderCalls = 0
const hit = (what: string, key: string, v: unknown) => {
  if (v === undefined) throw new Error(`${what}: ${key} missed; the preload did not work`)
  sink = v
}
const sequentialGets = (cache: NearCache, what: string) => {
  let i = 0
  return async () => {
    for (let j = 0; j < SEQUENTIAL; j++) {
      const k = keys[i++ % KEYS] as string
      hit(what, k, await cache.get(k))
    }
  }
}

const TASKS: TaskDef[] = [
  { name: 'L1 hit get (redis: false)', ops: SEQUENTIAL, unit: 'get', make: (c) => ({ fn: sequentialGets(c.l1, 'L1 get') }) },
  {
    name: 'L1 hit get (L2 standalone)',
    ops: SEQUENTIAL,
    unit: 'get',
    // Rewritten and read once before each phase: an L1 copy of an L2 entry is served for
    // l1.ttl (10 s) only, and a setMany leaves some of its own keys out of L1 (see warmL1).
    make: (c, side) => {
      let l2Before = 0
      return {
        fn: sequentialGets(c.l1l2, 'L1+L2 get'),
        beforeAll: async () => { await warmL1(c.l1l2); l2Before = l2Hits(c.l1l2) },
        afterAll: () => {
          const n = l2Hits(c.l1l2) - l2Before
          if (n > 0) console.warn(`warning: ${n} of the ${side} "L1 hit get (L2 standalone)" gets were answered by L2, not L1`)
        },
      }
    },
  },
  {
    name: `L2 hit: ${KEYS} concurrent gets (l1: false)`,
    ops: KEYS,
    unit: 'get',
    make: (c) => ({
      fn: async () => {
        const values = await Promise.all(keys.map((k) => c.l2.get(k)))
        for (let j = 0; j < KEYS; j++) if (values[j] === undefined) hit('L2 get', keys[j] as string, undefined)
        sink = values
      },
    }),
  },
  {
    name: `getMany ${GET_MANY} keys (L1 hit)`,
    ops: 1,
    unit: 'getMany',
    make: (c) => {
      let i = 0
      return { fn: async () => {
        const values = await c.l1.getMany(windows[i++ % windows.length] as string[])
        if (values.includes(undefined)) throw new Error('getMany: a preloaded key missed')
        sink = values
      } }
    },
  },
  {
    name: 'set small object (L2 standalone)',
    ops: 1,
    unit: 'set',
    make: (c) => {
      let i = 0
      return { fn: async () => { const n = i++ % KEYS; await c.l1l2.set(`set:${n}`, item(n)) } }
    },
  },
  {
    name: 'getOrSet hit (L1)',
    ops: SEQUENTIAL,
    unit: 'getOrSet',
    make: (c) => {
      let i = 0
      const loader = () => { loaderCalls++; return item(-1) }
      return { fn: async () => { for (let j = 0; j < SEQUENTIAL; j++) sink = await c.l1.getOrSet(keys[i++ % KEYS] as string, loader) } }
    },
  },
]

async function preload(cache: NearCache): Promise<void> {
  await cache.setMany(keys.map((key, i) => ({ key, value: item(i) })))
}

/**
 * Preloads, then reads every key once so that each is in L1 when the timed phase starts.
 * With L2, a setMany stores a key in L1 only if no earlier key of the same batch bumped
 * its epoch word (4096 words: ~120 of 1000 keys miss L1 after the setMany).
 */
async function warmL1(cache: NearCache): Promise<void> {
  await preload(cache)
  await cache.getMany(keys)
}

async function load(checkout: string): Promise<Api> {
  const file = path.join(checkout, 'src', 'index.ts')
  if (!existsSync(file)) throw new Error(`${file} does not exist: give the root of a nearcache checkout`)
  const mod = (await import(pathToFileURL(file).href)) as Partial<Api>
  if (typeof mod.createCache !== 'function') throw new Error(`${file} exports no createCache`)
  return mod as Api
}

function describe(checkout: string): string {
  try {
    return execFileSync('git', ['-C', checkout, 'describe', '--always', '--dirty'], { encoding: 'utf8' }).trim()
  } catch {
    return 'not a git checkout'
  }
}

async function open(side: Side, redis: string, opened: NearCache[]): Promise<Caches> {
  const create = async (cache: string, options: CacheOptions) => {
    const c = await side.api.createCache({ ...options, namespace: `bench_${side.label}_${cache}` })
    opened.push(c)
    return c
  }
  const caches: Caches = {
    l1: await create('l1', { redis: false }),
    l1l2: await create('l1l2', { redis }),
    l2: await create('l2', { redis, l1: false }),
  }
  for (const [name, cache] of Object.entries(caches) as [keyof Caches, NearCache][]) {
    await preload(cache)
    const values = await cache.getMany(keys)
    values.forEach((v, i) => {
      if (JSON.stringify(v) !== JSON.stringify(item(i))) throw new Error(`${side.label} ${name}: ${keys[i]} answered ${JSON.stringify(v)}`)
    })
  }
  return caches
}

/** One Bench with every task of both sides, interleaved; answers [before, after] figures per task. */
async function round(r: number, sides: [Side, Side], caches: Map<Side, Caches>, time: number): Promise<[Fig, Fig][]> {
  const gc = (globalThis as { gc?: () => void }).gc
  const bench = new Bench({ name: `round ${r}`, time, warmupTime: WARMUP_TIME, warmupIterations: WARMUP_ITERATIONS, timestampProvider: 'hrtimeNow', warmup: true, throws: true })
  const order = r % 2 === 1 ? sides : ([sides[1], sides[0]] as const)
  for (const t of TASKS) {
    for (const side of order) {
      const { fn, beforeAll, afterAll } = t.make(caches.get(side) as Caches, side.label)
      bench.add(`${t.name} [${side.label}]`, fn, { beforeAll: async () => { await beforeAll?.(); gc?.() }, afterAll })
    }
  }
  await bench.run()
  if (loaderCalls > 0) throw new Error(`getOrSet hit: the loader ran ${loaderCalls} times; the preload did not work`)
  const byName = new Map(bench.tasks.map((t) => [t.name, t]))
  const fig = (t: TaskDef, s: Side): Fig => {
    const task = byName.get(`${t.name} [${s.label}]`)!
    const f = figure(`round ${r}`, task, t.ops)
    return { ...f, bestOpsPerSec: task.result.state === 'completed' ? (t.ops * 1000) / task.result.latency.min : NaN }
  }
  return TASKS.map((t) => [fig(t, sides[0]), fig(t, sides[1])])
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}
const perOp = (opsPerSec: number) => {
  const ns = 1e9 / opsPerSec
  return ns < 10_000 ? `${ns.toFixed(0)} ns` : `${(ns / 1000).toFixed(1)} µs`
}
const rate = (opsPerSec: number) => `${Math.round(opsPerSec).toLocaleString('en-US')}/s`
const loadAvg = () => os.loadavg().map((x) => x.toFixed(2)).join(' ')
const RATIO = 'ratio = after ops/s ÷ before ops/s (> 1: after is faster)'

/** Per task: the medians over the rounds of each side's ops/s and of the rounds' ratios. */
function summarize(results: [Fig, Fig][][]) {
  return TASKS.map((t, i) => {
    const pairs = results.map((figs) => figs[i] as [Fig, Fig])
    const ratios = pairs.map(([b, a]) => a.opsPerSec / b.opsPerSec)
    const bestRatios = pairs.map(([b, a]) => a.bestOpsPerSec / b.bestOpsPerSec)
    const beforeOpsPerSec = median(pairs.map(([b]) => b.opsPerSec))
    const afterOpsPerSec = median(pairs.map(([, a]) => a.opsPerSec))
    return { task: t.name, unit: t.unit, beforeOpsPerSec, afterOpsPerSec, ratios, medianRatio: median(ratios), bestRatios, medianBestRatio: median(bestRatios) }
  })
}

function printSummary(summary: ReturnType<typeof summarize>, rounds: number, loadAtEnd: string): void {
  console.log(`\nsummary: medians over ${rounds} rounds; ${RATIO}`)
  console.table(summary.map((s) => ({
    task: s.task,
    'before /op': perOp(s.beforeOpsPerSec),
    'after /op': perOp(s.afterOpsPerSec),
    'before ops/s': rate(s.beforeOpsPerSec),
    'after ops/s': rate(s.afterOpsPerSec),
    'ratio per round': s.ratios.map((x) => x.toFixed(2)).join(' '),
    'median ratio': s.medianRatio.toFixed(3),
    'best-iteration ratio': s.medianBestRatio.toFixed(3),
  })))
  const range = (xs: number[]) => `[${Math.min(...xs).toFixed(2)}, ${Math.max(...xs).toFixed(2)}]`
  console.log(`noise: every round's ratio lies in ${range(summary.flatMap((s) => s.ratios))}, the medians in ${range(summary.map((s) => s.medianRatio))}; best-iteration ratios of every round in ${range(summary.flatMap((s) => s.bestRatios))}; load average at the end: ${loadAtEnd}`)
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: { baseline: { type: 'string' }, after: { type: 'string' }, redis: { type: 'string' }, time: { type: 'string', default: '1000' }, rounds: { type: 'string', default: '3' } },
  })
  if (args.baseline === undefined) throw new Error('usage: node --import tsx bench/before_after.ts --baseline <checkout> [--after <checkout>] [--redis <url>] [--time <ms>] [--rounds <n>]')
  const time = Number(args.time)
  const rounds = Number(args.rounds)
  if (!(time > 0)) throw new Error(`--time must be a positive number of milliseconds, not ${args.time}`)
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, not ${args.rounds}`)
  const beforeRoot = realpathSync(args.baseline)
  const afterRoot = realpathSync(args.after ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..'))
  if (beforeRoot === afterRoot) throw new Error(`--baseline and the after checkout are the same directory (${afterRoot}): one module copy cannot be compared with itself`)
  const sides: [Side, Side] = [
    { label: 'before', root: beforeRoot, api: await load(beforeRoot) },
    { label: 'after', root: afterRoot, api: await load(afterRoot) },
  ]
  const server = args.redis === undefined ? await startStandalone() : undefined
  const redis = args.redis ?? (server?.url as string)
  const opened: NearCache[] = []
  try {
    const caches = new Map<Side, Caches>()
    for (const side of sides) caches.set(side, await open(side, redis, opened))
    for (const s of sides) console.log(`${s.label}: ${s.root} (${describe(s.root)})`)
    console.log(`redis: ${args.redis ?? `throw-away redis-server at ${redis}`}; ${rounds} rounds, ${time} ms per task; ${RATIO}`)
    const loadAtStart = loadAvg()
    console.log(`load average (1/5/15 min) at the start: ${loadAtStart} on ${os.cpus().length} cores`)

    const results: [Fig, Fig][][] = []
    for (let r = 1; r <= rounds; r++) {
      const t0 = performance.now()
      const figs = await round(r, sides, caches, time)
      results.push(figs)
      console.log(`\nround ${r} of ${rounds} (${r % 2 === 1 ? 'before' : 'after'} runs first; ${((performance.now() - t0) / 1000).toFixed(1)} s)`)
      console.table(TASKS.map((t, i) => {
        const [b, a] = figs[i] as [Fig, Fig]
        return { task: t.name, before: `${perOp(b.opsPerSec)}/${t.unit}`, after: `${perOp(a.opsPerSec)}/${t.unit}`, 'after/before': (a.opsPerSec / b.opsPerSec).toFixed(3) }
      }))
    }
    const summary = summarize(results)
    const loadAtEnd = loadAvg()
    printSummary(summary, rounds, loadAtEnd)

    const settings = {
      before: { root: beforeRoot, commit: describe(beforeRoot) },
      after: { root: afterRoot, commit: describe(afterRoot) },
      redis: args.redis ?? 'throw-away redis-server',
      rounds, time, warmupTime: WARMUP_TIME, warmupIterations: WARMUP_ITERATIONS, keys: KEYS, sequentialCallsPerIteration: SEQUENTIAL,
      ratio: RATIO,
      loadAverage: { start: loadAtStart, end: loadAtEnd },
    }
    const rows = results.map((figs, r) => figs.map(([before, after], i) => ({ round: r + 1, task: TASKS[i]?.name, before, after, ratio: after.opsPerSec / before.opsPerSec })))
    console.log(`results: ${await writeJson('before_after', settings, { summary, rounds: rows })}`)
    if (sink === Symbol.for('never')) console.log(sink)
  } finally {
    // The namespaces are ours alone; leave nothing behind in a Redis we were given.
    if (args.redis !== undefined) await Promise.allSettled(opened.filter((c) => !c.prefix.endsWith('_l1')).map((c) => c.clear()))
    await Promise.allSettled(opened.map((c) => c.close()))
    await server?.stop()
  }
}

await main()
