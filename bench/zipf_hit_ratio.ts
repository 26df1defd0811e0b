// Hit ratio, not speed: how much of a skewed read-through workload does the L1
// serve, against lru-cache given the same byte budget? A deterministic Zipf trace
// (mulberry32-seeded; alpha 0.9 and 1.0) over 1,000,000 keys of 11 characters,
// every value a 100-character string. The L1 gets 1% of the data's bytes, counting
// key + value + 64 bytes of overhead per entry; lru-cache gets the same bytes with
// `sizeCalculation: (v, k) => v.length + k.length + 64`, i.e. exactly 10,000 entries.
// Read-through: each request awaits `get`; on a miss it awaits `set` of the value.
//
// Per alpha, two replays of one trace on fresh caches:
//   no scan — the whole trace;
//   scan    — the first half, then a one-time scan of 10× the nominal capacity in
//             distinct never-repeated keys (each a read-through miss + set), then
//             the second half.
// Hit ratios are counted over the whole trace, its second half, and the first 50,000
// requests of the second half (where a scan's damage shows most).
//
// Capacity differs from the nominal 10,000 entries: nearcache charges l1.maxBytes by
// its own accounting (what it stores per entry, plus its index), not by the +64 model,
// so what it holds is measured: `stats().l1.entries` at the end of each replay (where
// stats() reports it), and a probe: the largest n such that n distinct keys written to
// a fresh cache are all still there, i.e. its first eviction (for a plain LRU that is
// its capacity; for a sharded S3-FIFO table it is where the fullest shard's small
// FIFO overflows). "lru-cache @ ours' entries" replays with lru-cache
// `{ max: <ours' entries at the end of the same replay, else the probe> }`, which
// separates the eviction policy from the byte accounting.
//
// Requests: 2,000,000 per trace, every one an awaited get (a miss also an awaited
// set); the 4 nearcache replays take ~32 s of the suite's ~40 s on the 2-core machine
// (shared L1 of 2026-11-23). If the L1 gets slower, lower NEARCACHE_ZIPF_REQUESTS
// (1,000,000 gave the same ratios within 0.6 pp).
//
// No Redis needed. Alone: node --import tsx bench/zipf_hit_ratio.ts
import { pathToFileURL } from 'node:url'
import { LRUCache } from 'lru-cache'
import { createCache } from '../src/index.js'
import type { NearCache } from '../src/index.js'
import { mulberry32 } from './fixtures.js'
import { writeJson } from './results_json.js'

export const SUITE = 'zipf_hit_ratio'
const KEYS = 1_000_000
const REQUESTS = Number(process.env.NEARCACHE_ZIPF_REQUESTS ?? 2_000_000)
const ALPHAS = [0.9, 1.0]
const SEED = 0x5eed
const VALUE = 'v'.repeat(100)
const KEY_CHARS = 11 // 'key:' + 7 digits; scan keys 'scn:' + 7 digits
const OVERHEAD = 64
const ENTRY_BYTES = KEY_CHARS + VALUE.length + OVERHEAD
const L1_BYTES = Math.floor((KEYS * ENTRY_BYTES) / 100)
const NOMINAL_ENTRIES = Math.floor(L1_BYTES / ENTRY_BYTES)
const SCAN_KEYS = 10 * NOMINAL_ENTRIES
const HALF = Math.floor(REQUESTS / 2)
const WINDOW = Math.min(50_000, REQUESTS - HALF)

export const SETTINGS = {
  keys: KEYS,
  requestsPerTrace: REQUESTS,
  alphas: ALPHAS,
  seed: SEED,
  valueChars: VALUE.length,
  keyChars: KEY_CHARS,
  modelOverheadPerEntry: OVERHEAD,
  l1MaxBytes: L1_BYTES,
  nominalEntries: NOMINAL_ENTRIES,
  scanKeys: SCAN_KEYS,
  scanAt: HALF,
  windowAfterMidpoint: WINDOW,
  nearcache: `createCache({ redis: false, l1: { maxBytes: ${L1_BYTES} } })`,
  lruCache: `new LRUCache({ maxSize: ${L1_BYTES}, sizeCalculation: (v, k) => v.length + k.length + ${OVERHEAD} })`,
}

const key = (id: number) => `key:${String(id).padStart(7, '0')}`
const scanKey = (id: number) => `scn:${String(id).padStart(7, '0')}`

/** The trace: REQUESTS key ids, Zipf(alpha) over ranks, ranks mapped to ids by a seeded shuffle. */
function zipfTrace(alpha: number, seed: number): Int32Array {
  const cdf = new Float64Array(KEYS)
  let sum = 0
  for (let r = 0; r < KEYS; r++) cdf[r] = sum += 1 / Math.pow(r + 1, alpha)
  for (let r = 0; r < KEYS; r++) (cdf[r] as number) /= sum
  const rand = mulberry32(seed)
  const ids = new Int32Array(KEYS)
  for (let i = 0; i < KEYS; i++) ids[i] = i
  for (let i = KEYS - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    const t = ids[i] as number
    ids[i] = ids[j] as number
    ids[j] = t
  }
  const trace = new Int32Array(REQUESTS)
  for (let n = 0; n < REQUESTS; n++) {
    const u = rand()
    let lo = 0
    let hi = KEYS - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((cdf[mid] as number) < u) lo = mid + 1
      else hi = mid
    }
    trace[n] = ids[lo] as number
  }
  return trace
}

/** One read-through cache, behind the same two calls for every library. */
interface Subject {
  get(key: string): unknown
  set(key: string, value: string): unknown
}

/** Hits in [0, HALF), [HALF, HALF + WINDOW), [HALF + WINDOW, REQUESTS). */
interface Counts {
  first: number
  window: number
  rest: number
  /** The counts the cache itself reported (stats().l1), when it has them. */
  reported?: { hits: number; misses: number }
  /** Entries held at the end (stats().l1.entries, or lru-cache's size), when known. */
  entriesAtEnd?: number
  /** Bytes held at the end (stats().l1.bytes), when known. */
  bytesAtEnd?: number
}

async function replayAsync(c: Subject, trace: Int32Array, from: number, to: number): Promise<number> {
  let hits = 0
  for (let n = from; n < to; n++) {
    const k = key(trace[n] as number)
    if ((await c.get(k)) !== undefined) hits++
    else await c.set(k, VALUE)
  }
  return hits
}

function replaySync(c: Subject, trace: Int32Array, from: number, to: number): number {
  let hits = 0
  for (let n = from; n < to; n++) {
    const k = key(trace[n] as number)
    if (c.get(k) !== undefined) hits++
    else c.set(k, VALUE)
  }
  return hits
}

async function scanAsync(c: Subject): Promise<void> {
  for (let j = 0; j < SCAN_KEYS; j++) {
    const k = scanKey(j)
    if ((await c.get(k)) === undefined) await c.set(k, VALUE)
  }
}

function scanSync(c: Subject): void {
  for (let j = 0; j < SCAN_KEYS; j++) {
    const k = scanKey(j)
    if (c.get(k) === undefined) c.set(k, VALUE)
  }
}

async function replay(c: Subject, sync: boolean, trace: Int32Array, withScan: boolean): Promise<Counts> {
  const run = (from: number, to: number) => (sync ? replaySync(c, trace, from, to) : replayAsync(c, trace, from, to))
  const first = await run(0, HALF)
  if (withScan) await (sync ? scanSync(c) : scanAsync(c))
  const window = await run(HALF, HALF + WINDOW)
  const rest = await run(HALF + WINDOW, REQUESTS)
  return { first, window, rest }
}

const ourCache = () => createCache({ redis: false, l1: { maxBytes: L1_BYTES } })
const lruBytes = () => new LRUCache<string, string>({ maxSize: L1_BYTES, sizeCalculation: (v, k) => v.length + k.length + OVERHEAD })

async function replayOurs(trace: Int32Array, withScan: boolean): Promise<Counts> {
  const cache = await ourCache()
  try {
    const counts = await replay(cache, false, trace, withScan)
    const l1 = cache.stats().l1 as { hits: number; misses: number; entries?: number; bytes?: number }
    return {
      ...counts,
      reported: { hits: l1.hits, misses: l1.misses },
      ...(l1.entries === undefined ? {} : { entriesAtEnd: l1.entries }),
      ...(l1.bytes === undefined ? {} : { bytesAtEnd: l1.bytes }),
    }
  } finally {
    await cache.close()
  }
}

/** The largest n such that n distinct freshly written keys all stay in the cache. */
async function probeEntries(fresh: () => Promise<{ write(keys: string[]): Promise<void>; held(keys: string[]): Promise<number>; close(): Promise<void> }>): Promise<number> {
  const fits = async (n: number) => {
    const c = await fresh()
    try {
      const keys = Array.from({ length: n }, (_, i) => key(i))
      for (let i = 0; i < n; i += 1000) await c.write(keys.slice(i, i + 1000))
      let held = 0
      for (let i = 0; i < n; i += 1000) held += await c.held(keys.slice(i, i + 1000))
      return held === n
    } finally {
      await c.close()
    }
  }
  let lo = 1
  let hi = NOMINAL_ENTRIES
  while (await fits(hi)) {
    lo = hi
    hi *= 2
    if (hi > 64 * NOMINAL_ENTRIES) throw new Error('capacity probe: the cache keeps everything; is l1.maxBytes applied?')
  }
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1
    if (await fits(mid)) lo = mid
    else hi = mid
  }
  return lo
}

async function replayLru(lru: LRUCache<string, string>, trace: Int32Array, withScan: boolean): Promise<Counts> {
  const counts = await replay(lru, true, trace, withScan)
  return { ...counts, entriesAtEnd: lru.size }
}

async function oursEntries(): Promise<number> {
  return probeEntries(async () => {
    const cache: NearCache = await ourCache()
    return {
      write: (keys) => cache.setMany(keys.map((k) => ({ key: k, value: VALUE }))),
      held: async (keys) => (await cache.getMany(keys)).filter((v) => v !== undefined).length,
      close: () => cache.close(),
    }
  })
}

async function lruEntries(): Promise<number> {
  return probeEntries(async () => {
    const lru = lruBytes()
    return {
      write: async (keys) => { for (const k of keys) lru.set(k, VALUE) },
      held: async (keys) => keys.filter((k) => lru.get(k) !== undefined).length,
      close: async () => lru.clear(),
    }
  })
}

export interface HitRatioRow {
  alpha: number
  scenario: string
  requests: number
  oursHitPct: number
  lruHitPct: number
  /** ours − lru-cache, in percentage points. */
  diffPp: number
  lruSameEntriesHitPct: number
  /** ours − lru-cache with ours' entry count, in percentage points. */
  diffSameEntriesPp: number
}

export interface HitRatioResult {
  suite: string
  capacity: { nominalEntries: number; oursEntries: number; lruEntries: number }
  /** Entries each cache held at the end of each replay (null: the cache does not report it). */
  entriesAtEnd: Record<string, number | null>
  /** Bytes nearcache reported holding at the end of each replay (stats().l1.bytes; null: not reported). */
  bytesAtEnd: Record<string, number | null>
  rows: HitRatioRow[]
  /** stats() disagreeing with the replay's own hit/miss count. */
  warnings: string[]
  elapsedMs: Record<string, number>
}

export async function run(): Promise<HitRatioResult> {
  const elapsedMs: Record<string, number> = {}
  const timed = async <T>(what: string, fn: () => Promise<T> | T): Promise<T> => {
    const t = performance.now()
    try {
      return await fn()
    } finally {
      elapsedMs[what] = Math.round(performance.now() - t)
    }
  }
  const capacity = {
    nominalEntries: NOMINAL_ENTRIES,
    oursEntries: await timed('probe nearcache capacity', oursEntries),
    lruEntries: await timed('probe lru-cache capacity', lruEntries),
  }
  const rows: HitRatioRow[] = []
  const entriesAtEnd: Record<string, number | null> = {}
  const bytesAtEnd: Record<string, number | null> = {}
  const warnings: string[] = []
  for (const alpha of ALPHAS) {
    const trace = await timed(`trace alpha ${alpha}`, () => zipfTrace(alpha, SEED))
    const counts = { ours: [] as Counts[], lru: [] as Counts[], same: [] as Counts[] }
    for (const withScan of [false, true]) {
      const tag = `alpha ${alpha}${withScan ? ' scan' : ''}`
      const ours = await timed(`nearcache ${tag}`, () => replayOurs(trace, withScan))
      const requests = REQUESTS + (withScan ? SCAN_KEYS : 0)
      const hits = ours.first + ours.window + ours.rest
      if (ours.reported && (ours.reported.hits !== hits || ours.reported.misses !== requests - hits)) {
        const msg = `nearcache ${tag}: stats() reports ${ours.reported.hits} hits / ${ours.reported.misses} misses, the replay counted ${hits} / ${requests - hits}`
        console.warn(`WARNING: ${msg}`)
        warnings.push(msg)
      }
      entriesAtEnd[`nearcache ${tag}`] = ours.entriesAtEnd ?? null
      bytesAtEnd[`nearcache ${tag}`] = ours.bytesAtEnd ?? null
      const sameEntries = ours.entriesAtEnd ?? capacity.oursEntries
      counts.ours.push(ours)
      const lru = await timed(`lru-cache ${tag}`, () => replayLru(lruBytes(), trace, withScan))
      const same = await timed(`lru-cache @ ours' entries ${tag}`, () => replayLru(new LRUCache<string, string>({ max: sameEntries }), trace, withScan))
      entriesAtEnd[`lru-cache ${tag}`] = lru.entriesAtEnd ?? null
      entriesAtEnd[`lru-cache @ ours' entries ${tag}`] = same.entriesAtEnd ?? null
      counts.lru.push(lru)
      counts.same.push(same)
    }
    const row = (scenario: string, requests: number, pick: (c: Counts[]) => number) => {
      const pct = (c: Counts[]) => (100 * pick(c)) / requests
      const o = pct(counts.ours)
      const l = pct(counts.lru)
      const s = pct(counts.same)
      rows.push({ alpha, scenario, requests, oursHitPct: o, lruHitPct: l, diffPp: o - l, lruSameEntriesHitPct: s, diffSameEntriesPp: o - s })
    }
    const [noScan, scan] = [0, 1]
    const at = (c: Counts[], i: number) => c[i] as Counts
    row('no scan: whole trace', REQUESTS, (c) => at(c, noScan).first + at(c, noScan).window + at(c, noScan).rest)
    row('no scan: second half', REQUESTS - HALF, (c) => at(c, noScan).window + at(c, noScan).rest)
    row(`scan of ${SCAN_KEYS} keys at midpoint: second half`, REQUESTS - HALF, (c) => at(c, scan).window + at(c, scan).rest)
    row(`no scan: first ${WINDOW} of second half`, WINDOW, (c) => at(c, noScan).window)
    row(`scan: first ${WINDOW} after the scan`, WINDOW, (c) => at(c, scan).window)
  }
  return { suite: SUITE, capacity, entriesAtEnd, bytesAtEnd, rows, warnings, elapsedMs }
}

const pct = (n: number) => `${n.toFixed(2)}%`
const pp = (n: number) => `${n >= 0 ? '+' : ''}${n.toFixed(2)} pp`

/** Prints the table and writes bench/results/zipf_hit_ratio.json. */
export async function report(result: HitRatioResult): Promise<void> {
  const c = result.capacity
  console.log(`\n== ${result.suite} ==`)
  console.log(`L1 budget ${L1_BYTES} bytes (1% of ${KEYS} × ${ENTRY_BYTES}); entries before the first eviction (probe): nominal ${c.nominalEntries}, nearcache ${c.oursEntries}, lru-cache ${c.lruEntries}; ${REQUESTS} requests per trace, scan ${SCAN_KEYS} keys`)
  console.table(result.rows.map((r) => ({
    alpha: r.alpha,
    scenario: r.scenario,
    requests: r.requests,
    'ours hit%': pct(r.oursHitPct),
    'lru-cache hit%': pct(r.lruHitPct),
    'ours − lru': pp(r.diffPp),
    "lru @ ours' entries hit%": pct(r.lruSameEntriesHitPct),
    "ours − lru @ ours' entries": pp(r.diffSameEntriesPp),
  })))
  console.log(`entries held at the end of each replay: ${Object.entries(result.entriesAtEnd).map(([k, v]) => `${k} ${v ?? 'n/a'}`).join(', ')}`)
  console.log(`nearcache bytes held at the end (stats().l1.bytes): ${Object.entries(result.bytesAtEnd).map(([k, v]) => `${k} ${v ?? 'n/a'}`).join(', ')}`)
  for (const w of result.warnings) console.log(`WARNING: ${w}`)
  console.log(`elapsed (ms): ${Object.entries(result.elapsedMs).map(([k, v]) => `${k} ${v}`).join(', ')}`)
  console.log(`results: ${await writeJson(result.suite, SETTINGS, { capacity: result.capacity, entriesAtEnd: result.entriesAtEnd, bytesAtEnd: result.bytesAtEnd, rows: result.rows, warnings: result.warnings, elapsedMs: result.elapsedMs })}`)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await report(await run())
}
