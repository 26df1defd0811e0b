// Does the mixed 90% L1 / 10% L2 workload keep a floor, or does it collapse every
// l1.ttl? (issue 13, "It collapses with the defaults"). Measurement only: this
// measures the library as it is, and asserts nothing about timing.
//
// Workload: C concurrent callers (512, and a 64-caller variant), each looping
// `await cache.get(key)` until the run ends. Each request picks, from a mulberry32
// stream seeded per caller, a hot key (probability 0.9, uniform over HOT = 10,000
// keys) or a cold key (probability 0.1, uniform over COLD = 300,000 keys). Every key
// holds `item(i)` from bench/fixtures.ts (~150 bytes) and is written to Redis once,
// before anything is timed, with setMany in chunks of 1,000 through a separate writer
// cache (`l1: false, invalidation: false`), closed before any measured cache is made;
// no entry has a TTL in Redis.
//
// Each configuration gets a fresh measured cache. Its hot set is then read through it
// at one moment (getMany in chunks of 1,000, all at once), as a service warming up
// would: every hot key's L1 copy starts its l1.ttl at the same time, which is what
// made the issue's run collapse when l1.ttl ran out. Timing starts right after.
//
// Configurations (run one after the other on the same servers, for each caller count):
//   default — createCache({ redis, namespace }) (l1.ttl 10 s, l1.maxBytes 64 MB)
//   4mb     — the same with `l1: { maxBytes: '4mb' }`
// --l1-ttl <ms> sets l1.ttl in both, for quick runs (the published run uses the defaults).
//
// Each configuration runs for ceil(seconds / 2) windows of 2 seconds (default
// seconds 36, i.e. 18 windows, more than 3 l1.ttl periods). At each window boundary
// the request counter and `cache.stats()` are read; req/s is the window's completed
// gets / its measured length (performance.now). The boundary is checked by a 20 ms
// timer and by the callers every 256 gets (while L1 answers every get the callers
// never leave the microtask queue, and no timer fires). The L1 share is the window's
// namespace hits.l1 / (hits.l1 + hits.l2 + misses.l1 + misses.l2). Per window it also
// prints L2 hits, misses (must be 0: every key exists), errors thrown by get, values
// whose id was not the key's, and the L1's live entries at the window's end.
// Summary per configuration: median window, slowest window, slowest / median and the
// L1 share range, over all windows.
//
// Servers: withServers (bench/servers.ts) starts a throw-away standalone Redis and a
// 3-master Cluster; the Cluster is used unless --standalone is given.
//
//   node --import tsx bench/mixed_windows.ts [--cluster | --standalone]
//       [--callers 512,64] [--seconds 36] [--hot 10000] [--cold 300000]
//       [--config default|4mb|both] [--l1-ttl ms]
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { createCache } from '../src/index.js'
import type { CacheOptions, RedisOption } from '../src/index.js'
import { item } from './fixtures.js'
import { runConfig, NAMESPACE } from './mixed_windows_config.js'
import type { Window } from './mixed_windows_config.js'
import { withServers } from './servers.js'
import type { BenchServers } from './servers.js'

export const SUITE = 'mixed_windows'
const CHUNK = 1000

export type ConfigName = 'default' | '4mb'
const CONFIGS: Record<ConfigName, { maxBytes?: string }> = {
  default: {},
  '4mb': { maxBytes: '4mb' },
}

export interface MixedOptions {
  cluster: boolean
  callers: number[]
  seconds: number
  hot: number
  cold: number
  configs: ConfigName[]
  /** l1.ttl in ms for every configuration; undefined = the default (10 s). */
  l1Ttl?: number
}

export const DEFAULTS: MixedOptions = { cluster: true, callers: [512, 64], seconds: 36, hot: 10_000, cold: 300_000, configs: ['default', '4mb'] }

/** One configuration's summary: for bench/goals.ts. */
export interface MixedRow {
  config: ConfigName
  callers: number
  windows: number
  medianReqPerSec: number
  slowestReqPerSec: number
  slowestWindow: number
  /** Slowest 2-s window / median window (issue 13's goal: >= 0.7). */
  slowestOverMedian: number
  l1ShareMin: number
  l1ShareMax: number
  errors: number
  wrong: number
  misses: number
}

function parse(): MixedOptions {
  const { values } = parseArgs({
    options: {
      cluster: { type: 'boolean', default: false },
      standalone: { type: 'boolean', default: false },
      callers: { type: 'string', default: DEFAULTS.callers.join(',') },
      seconds: { type: 'string', default: String(DEFAULTS.seconds) },
      hot: { type: 'string', default: String(DEFAULTS.hot) },
      cold: { type: 'string', default: String(DEFAULTS.cold) },
      config: { type: 'string', default: 'both' },
      'l1-ttl': { type: 'string' },
    },
  })
  if (values.cluster && values.standalone) throw new Error('give --cluster or --standalone, not both')
  const whole = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v)
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be a whole number >= ${min} (got ${v})`)
    return n
  }
  const config = values.config ?? 'both'
  if (config !== 'both' && !(config in CONFIGS)) throw new Error(`--config must be default, 4mb or both (got ${config})`)
  return {
    cluster: !values.standalone,
    callers: (values.callers ?? '').split(',').map((v) => whole('callers', v, 1)),
    seconds: whole('seconds', values.seconds, 2),
    hot: whole('hot', values.hot, 1),
    cold: whole('cold', values.cold, 1),
    configs: config === 'both' ? ['default', '4mb'] : [config as ConfigName],
    l1Ttl: values['l1-ttl'] === undefined ? undefined : whole('l1-ttl', values['l1-ttl'], 1),
  }
}

const hotKey = (i: number) => `h:${i}`
const coldKey = (i: number) => `c:${i}`
const num = (n: number) => Math.round(n).toLocaleString('en-US')

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** Writes every hot and cold key to Redis through a cache with no L1 (closed before timing). */
async function preload(redis: RedisOption, o: MixedOptions): Promise<void> {
  const t0 = performance.now()
  const writer = await createCache({ redis, namespace: NAMESPACE, l1: false, invalidation: false })
  try {
    const write = async (count: number, key: (i: number) => string) => {
      for (let from = 0; from < count; from += CHUNK) {
        const to = Math.min(count, from + CHUNK)
        const entries = []
        for (let i = from; i < to; i++) entries.push({ key: key(i), value: item(i) })
        await writer.setMany(entries)
      }
    }
    await write(o.hot, hotKey)
    await write(o.cold, coldKey)
    const check = await writer.getMany([hotKey(0), hotKey(o.hot - 1), coldKey(0), coldKey(o.cold - 1)])
    if (check.some((v) => v === undefined)) throw new Error('preload: a written key reads back missing')
  } finally {
    await writer.close()
  }
  console.log(`preloaded ${num(o.hot)} hot + ${num(o.cold)} cold keys in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
}

function summarize(config: ConfigName, callers: number, ws: Window[]): MixedRow {
  const rates = ws.map((w) => w.reqPerSec)
  const med = median(rates)
  const slow = ws.reduce((a, b) => (b.reqPerSec < a.reqPerSec ? b : a))
  const shares = ws.map((w) => w.l1Share)
  const sum = (f: (w: Window) => number) => ws.reduce((a, w) => a + f(w), 0)
  return {
    config, callers, windows: ws.length, medianReqPerSec: med, slowestReqPerSec: slow.reqPerSec, slowestWindow: slow.index,
    slowestOverMedian: slow.reqPerSec / med, l1ShareMin: Math.min(...shares), l1ShareMax: Math.max(...shares),
    errors: sum((w) => w.errors), wrong: sum((w) => w.wrong), misses: sum((w) => w.misses),
  }
}

function rowLine(r: MixedRow): string {
  return `[${r.config}, ${r.callers} callers] ${r.windows} windows, median ${num(r.medianReqPerSec)} req/s, ` +
    `slowest ${num(r.slowestReqPerSec)} req/s (w${r.slowestWindow}), slowest/median ${r.slowestOverMedian.toFixed(2)}, ` +
    `L1 share ${r.l1ShareMin.toFixed(2)}-${r.l1ShareMax.toFixed(2)}, errors ${r.errors}, wrong ${r.wrong}, misses ${r.misses}`
}

/** Runs every configuration for every caller count, one after the other; answers one summary row each. */
export async function run(servers: BenchServers, options: Partial<MixedOptions> = {}): Promise<MixedRow[]> {
  const o = { ...DEFAULTS, ...options }
  const redis: RedisOption = o.cluster ? { cluster: servers.clusterNodes } : servers.redisUrl
  const workload = {
    seconds: o.seconds,
    hotKeys: Array.from({ length: o.hot }, (_, i) => hotKey(i)),
    coldKeys: Array.from({ length: o.cold }, (_, i) => coldKey(i)),
  }
  await preload(redis, o)
  const rows: MixedRow[] = []
  for (const callers of o.callers) {
    for (const config of o.configs) {
      const l1: NonNullable<CacheOptions['l1']> = { ...CONFIGS[config], ...(o.l1Ttl === undefined ? {} : { ttl: o.l1Ttl }) }
      const label = `${config}${o.l1Ttl === undefined ? '' : `, l1.ttl ${o.l1Ttl} ms`}`
      const ws = await runConfig(label, redis, Object.keys(l1).length > 0 ? { l1 } : {}, { ...workload, callers }, o.cluster)
      const row = summarize(config, callers, ws)
      console.log(rowLine(row))
      rows.push(row)
    }
  }
  console.log(`\n== ${SUITE} summary ==`)
  for (const r of rows) console.log(rowLine(r))
  return rows
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const o = parse()
  await withServers((servers) => run(servers, o))
}
