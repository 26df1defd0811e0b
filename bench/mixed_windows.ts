// Does the mixed 90% L1 / 10% L2 workload keep a floor, or does it collapse every
// l1.ttl? (issue 13, "It collapses with the defaults"). Measurement only: this
// measures the library as it is, and asserts nothing about timing.
//
// Workload: C concurrent callers (default 512), each looping `await cache.get(key)`
// until the run ends. Each request picks, from a mulberry32 stream seeded per caller,
// a hot key (probability 0.9, uniform over HOT = 10,000 keys) or a cold key
// (probability 0.1, uniform over COLD = 300,000 keys). Every key holds `item(i)` from
// bench/fixtures.ts (~150 bytes) and is written to Redis before anything is timed,
// with setMany in chunks of 1,000 through a separate writer cache
// (`l1: false, invalidation: false`), closed before the measured cache is made, so
// the measured cache starts with an empty L1 and no entry has a TTL in Redis.
//
// Configurations, one fresh cache each, run one after the other on the same servers:
//   default — createCache({ redis, namespace }) (l1.ttl 10 s, l1.maxBytes 64 MB)
//   4mb     — the same with `l1: { maxBytes: '4mb' }`
// There is no warm-up: timing starts when the callers start, with an empty L1 (the
// first window includes filling the hot set, as in the run).
//
// Each configuration runs for ceil(seconds / 2) windows of 2 seconds (default
// seconds 35, i.e. 18 windows = 36 s, more than 3 l1.ttl periods). At each window
// boundary the request counter and `cache.stats()` are read; req/s is the window's
// completed gets / its measured length (performance.now). The boundary is checked by
// a 20 ms timer and by the callers every 256 gets: while L1 answers every get, the
// callers never leave the microtask queue and no timer fires (seen with a small key
// set, where one "2 s" window lasted 8 s), so the callers close windows themselves. The L1 share is the window's
// namespace hits.l1 / (hits.l1 + hits.l2 + misses.l1 + misses.l2). Per window it also
// prints L2 hits, misses (must be 0: every key exists), errors thrown by get, values
// whose id was not the key's, and the L1's live entries at the window's end.
// Summary per configuration: median window, slowest window, slowest / median and the
// L1 share range, over all windows and again without the first (warm-up) window.
//
// Servers: withServers (bench/servers.ts) starts a throw-away standalone Redis and a
// 3-master Cluster; the Cluster is used unless --standalone is given.
//
//   node --import tsx bench/mixed_windows.ts [--cluster | --standalone]
//       [--callers 512] [--seconds 35] [--hot 10000] [--cold 300000] [--config default|4mb|both]
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { createCache } from '../src/index.js'
import type { CacheOptions, NearCache, RedisOption } from '../src/index.js'
import { item, mulberry32 } from './fixtures.js'
import { withServers } from './servers.js'

export const SUITE = 'mixed_windows'
const NAMESPACE = 'mixed'
const HOT_SHARE = 0.9
const WINDOW_MS = 2000
const CHUNK = 1000
const SEED = 0x13c0

type Item = ReturnType<typeof item>

interface Args {
  cluster: boolean
  callers: number
  seconds: number
  hot: number
  cold: number
  configs: ConfigName[]
}

type ConfigName = 'default' | '4mb'
const CONFIGS: Record<ConfigName, Pick<CacheOptions, 'l1'>> = {
  default: {},
  '4mb': { l1: { maxBytes: '4mb' } },
}

interface Window {
  index: number
  startS: number
  endS: number
  reqPerSec: number
  l1Share: number
  l2Hits: number
  misses: number
  errors: number
  wrong: number
  l1Entries: number
}

function parse(): Args {
  const { values } = parseArgs({
    options: {
      cluster: { type: 'boolean', default: false },
      standalone: { type: 'boolean', default: false },
      callers: { type: 'string', default: '512' },
      seconds: { type: 'string', default: '35' },
      hot: { type: 'string', default: '10000' },
      cold: { type: 'string', default: '300000' },
      config: { type: 'string', default: 'both' },
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
    callers: whole('callers', values.callers, 1),
    seconds: whole('seconds', values.seconds, 2),
    hot: whole('hot', values.hot, 1),
    cold: whole('cold', values.cold, 1),
    configs: config === 'both' ? ['default', '4mb'] : [config as ConfigName],
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
async function preload(redis: RedisOption, args: Args): Promise<void> {
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
    await write(args.hot, hotKey)
    await write(args.cold, coldKey)
    const check = await writer.getMany([hotKey(0), hotKey(args.hot - 1), coldKey(0), coldKey(args.cold - 1)])
    if (check.some((v) => v === undefined)) throw new Error('preload: a written key reads back missing')
  } finally {
    await writer.close()
  }
  console.log(`preloaded ${num(args.hot)} hot + ${num(args.cold)} cold keys in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
}

interface Counters {
  done: number
  errors: number
  wrong: number
}

/** Every CHECK_EVERY completed gets, a caller gives the window clock a chance to close a window. */
const CHECK_EVERY = 256

async function caller(cache: NearCache, seed: number, args: Args, c: Counters, running: () => boolean, check: () => void): Promise<void> {
  const rnd = mulberry32(seed)
  while (running()) {
    const isHot = rnd() < HOT_SHARE
    const i = Math.floor(rnd() * (isHot ? args.hot : args.cold))
    const key = isHot ? HOT_KEYS[i]! : COLD_KEYS[i]!
    try {
      const v = await cache.get<Item>(key)
      if (v !== undefined && v.id !== i) c.wrong++
    } catch {
      c.errors++
    }
    if (++c.done % CHECK_EVERY === 0) check()
  }
}

let HOT_KEYS: string[] = []
let COLD_KEYS: string[] = []

function nsCounts(cache: NearCache): { l1: number; l2: number; misses: number; l1Entries: number } {
  const s = cache.stats()
  const ns = s.namespaces[NAMESPACE]
  if (!ns) return { l1: 0, l2: 0, misses: 0, l1Entries: s.l1.entries }
  return { l1: ns.hits.l1, l2: ns.hits.l2, misses: ns.misses.l1 + ns.misses.l2, l1Entries: s.l1.entries }
}

async function runConfig(name: ConfigName, redis: RedisOption, args: Args): Promise<Window[]> {
  const cache = await createCache({ redis, namespace: NAMESPACE, ...CONFIGS[name] })
  const windows: Window[] = []
  try {
    const capacity = cache.stats().l1.capacity
    const count = Math.ceil(args.seconds / (WINDOW_MS / 1000))
    console.log(`\n[${name}] ${args.cluster ? 'Cluster (3 masters)' : 'standalone'}, ${args.callers} callers, ` +
      `${num(args.hot)} hot / ${num(args.cold)} cold keys, L1 capacity ${num(capacity)} bytes, ${count} windows of ${WINDOW_MS / 1000} s`)
    const c: Counters = { done: 0, errors: 0, wrong: 0 }
    let run = true
    const running = () => run
    let prev = { ...nsCounts(cache), done: 0, errors: 0, wrong: 0, at: performance.now() }
    const t0 = prev.at
    let finished!: () => void
    const allWindows = new Promise<void>((r) => { finished = r })
    // Closes the current window once its end has passed. Called from a 20 ms timer and,
    // every CHECK_EVERY gets, from the callers themselves: while every get is answered
    // from L1 the callers never leave the microtask queue, and no timer would fire.
    const check = () => {
      if (!run) return
      const now = performance.now()
      if (now < t0 + (windows.length + 1) * WINDOW_MS) return
      const cur = { ...nsCounts(cache), done: c.done, errors: c.errors, wrong: c.wrong, at: now }
      const l1 = cur.l1 - prev.l1
      const l2 = cur.l2 - prev.l2
      const misses = cur.misses - prev.misses
      const lookups = l1 + l2 + misses
      const win: Window = {
        index: windows.length + 1,
        startS: (prev.at - t0) / 1000,
        endS: (now - t0) / 1000,
        reqPerSec: (cur.done - prev.done) / ((now - prev.at) / 1000),
        l1Share: lookups > 0 ? l1 / lookups : 0,
        l2Hits: l2,
        misses,
        errors: cur.errors - prev.errors,
        wrong: cur.wrong - prev.wrong,
        l1Entries: cur.l1Entries,
      }
      windows.push(win)
      console.log(`  w${String(win.index).padStart(2)} ${win.startS.toFixed(1).padStart(5)}-${win.endS.toFixed(1).padStart(5)} s ` +
        `${num(win.reqPerSec).padStart(9)} req/s  L1 ${win.l1Share.toFixed(2)}  L2 hits ${num(l2).padStart(8)}  ` +
        `misses ${misses} errors ${win.errors} wrong ${win.wrong}  L1 entries ${num(win.l1Entries)}`)
      prev = cur
      if (windows.length >= count) {
        run = false
        finished()
      }
    }
    const timer = setInterval(check, 20)
    const loops = Array.from({ length: args.callers }, (_, k) => caller(cache, SEED + k, args, c, running, check))
    try {
      await allWindows
    } finally {
      clearInterval(timer)
      run = false
      await Promise.all(loops)
    }
    summarize(name, windows)
  } finally {
    await cache.close()
  }
  return windows
}

function summaryLine(label: string, ws: Window[]): string {
  if (ws.length === 0) return `  ${label}: no windows`
  const rates = ws.map((w) => w.reqPerSec)
  const med = median(rates)
  const slow = ws.reduce((a, b) => (b.reqPerSec < a.reqPerSec ? b : a))
  const shares = ws.map((w) => w.l1Share)
  return `  ${label}: ${ws.length} windows, median ${num(med)} req/s, slowest ${num(slow.reqPerSec)} req/s (w${slow.index}), ` +
    `slowest/median ${(slow.reqPerSec / med).toFixed(2)}, L1 share ${Math.min(...shares).toFixed(2)}-${Math.max(...shares).toFixed(2)}`
}

function summarize(name: ConfigName, ws: Window[]): void {
  console.log(`[${name}] summary`)
  console.log(summaryLine('all windows', ws))
  console.log(summaryLine('without w1 ', ws.slice(1)))
}

async function main(): Promise<void> {
  const args = parse()
  HOT_KEYS = Array.from({ length: args.hot }, (_, i) => hotKey(i))
  COLD_KEYS = Array.from({ length: args.cold }, (_, i) => coldKey(i))
  await withServers(async (servers) => {
    const redis: RedisOption = args.cluster ? { cluster: servers.clusterNodes } : servers.redisUrl
    await preload(redis, args)
    for (const name of args.configs) await runConfig(name, redis, args)
  })
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main()
}
