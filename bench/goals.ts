// The product's throughput goals, each one a ratio against a peer measured in this
// same process and run (never against a remembered figure):
//
//   1. L1 hit `get` (redis: false), each caller its own copy: nearcache / bentocache memory
//      tier >= 15, / cacheable >= 15; with l1.shareValues (one frozen value per thread):
//      / bentocache >= 40; lru-cache (async wrapper) and getSync reported
//   2. L2 hit `get`, l1: false, 1000 concurrent distinct keys per iteration, standalone:
//      nearcache / raw ioredis getBuffer (auto-pipelining) >= 2, / bentocache Redis tier >= 8
//   3. The same on the 3-master Cluster: nearcache / raw ioredis Cluster (auto-pipelining) >= 2.5
//   4. Codec pool (rows from bench/codec_pool.ts's goalRows(), if it has one)
//   5. Latency under a fixed 50,000 get/s open-loop L2 load (l1: false) against raw
//      ioredis at the same rate, and per-call L1-hit latency against bentocache's
//      memory tier. No goal ratio was set for these; they are reported, not judged.
//   6. Worker threads (piscina, 2) doing L2 gets through workerCache() / the same
//      workers each owning an ioredis client >= 0.9 (bench/worker_l2.ts)
//   7. Mixed 90% L1 / 10% L2 gets on the Cluster, 512 and 64 callers, the hot set
//      warmed at one moment: slowest 2-s window / median >= 0.7 with the default
//      options (bench/mixed_windows.ts; the 4 MB L1 rows are reported)
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
import { Cluster, Redis } from 'ioredis'
import { writeJson } from './results_json.js'
import { withServers } from './servers.js'
import type { BenchServers } from './servers.js'
import { fmt, ratioText, svg } from './goals_chart.js'
import { SETTINGS } from './goals_common.js'
import type { GoalRow, GoalsResult } from './goals_common.js'
import { l1Goals } from './goals_l1.js'
import { l2Goals } from './goals_l2.js'
import { openLoopGoals } from './goals_open_loop.js'
import * as mixedWindows from './mixed_windows.js'
import * as workerL2 from './worker_l2.js'

export { SETTINGS }
export type { GoalRow, GoalsResult }
export const SUITE = 'goals'
// ---- mixed 90/10 (bench/mixed_windows.ts): the floor of req/s per 2-s window -------

function mixedRow(r: mixedWindows.MixedRow): GoalRow {
  const goal = r.config === 'default' ? 0.7 : null
  const bad = r.errors + r.wrong + r.misses > 0 ? ` (${r.errors} errors, ${r.wrong} wrong, ${r.misses} misses)` : ''
  return {
    goal: `7. mixed 90% L1 / 10% L2, Cluster, ${r.config === 'default' ? 'default options' : '4 MB L1'}`,
    scenario: `${r.callers} callers: slowest 2-s window vs the median one (${Math.round(r.medianReqPerSec).toLocaleString('en-US')} req/s)${bad}`,
    unit: 'req/s',
    ours: r.slowestReqPerSec,
    peer: r.medianReqPerSec,
    ratio: r.slowestOverMedian,
    goalRatio: goal,
    met: goal === null ? null : r.slowestOverMedian >= goal && bad === '',
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
    () => new Redis(servers.redisUrl, { enableAutoPipelining: true }), 2))
  await part('l2 cluster', () => l2Goals('3. L2 hit get, 3-master Cluster, 1000 concurrent', { cluster: servers.clusterNodes },
    () => new Cluster(servers.clusterNodes, { enableAutoPipelining: true }), null, 2.5))
  await part('open loop', () => openLoopGoals(servers.redisUrl))
  await part('worker threads', () => workerL2.run(servers))
  await part('mixed 90/10', async () => (await mixedWindows.run(servers)).map(mixedRow))
  await part('codec pool', codecGoals)
  rows.sort((a, b) => a.goal.localeCompare(b.goal, 'en', { numeric: true }))
  return { rows, seconds, loadAverage: { start: loadStart, end: os.loadavg() } }
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
