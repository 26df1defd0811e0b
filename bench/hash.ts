// Which 32-bit hash should the L1 use for its keys? Short ASCII keys (8–64 chars,
// e.g. `user:123456:profile`), hashed by: xxhash-wasm `h32(str)` (encodes straight
// into wasm memory) and `h32Raw` on UTF-8 bytes from TextEncoder.encodeInto into a
// reused scratch Uint8Array (then copied into wasm memory); pure-JS FNV-1a 32 over
// charCodeAt (UTF-8 encoded inline, so equal to FNV-1a over the bytes for any
// string); FNV-1a 32 and murmur3 x86_32 over the encodeInto bytes; and (beyond the
// brief) a pure-JS XXH32 over the same bytes, plus encodeInto alone (the encode cost
// the bytes-based candidates pay). Candidates live in bench/hash_candidates.ts.
//
// Before timing, every candidate is checked against published test vectors, the two
// FNV-1a forms against each other on random Unicode strings (surrogate pairs and lone
// surrogates included), and the spread is measured: chi-square of 100,000 distinct
// keys over 1024 buckets (low 10 bits, as a power-of-two table indexes, and high 10
// bits), for random keys and for sequential ones; 1023 degrees of freedom, so a good
// hash lands near 1023 ± 45 (|z| < 3). Full 32-bit collisions are counted too
// (≈ 1.2 pairs expected at random for 100,000 keys).
//
// Each tinybench iteration hashes 1000 keys (ops/s = keys/s). Timed twice, on the same
// keys held two ways: flat (sequential) strings, and ConsStrings as a template literal
// builds them. V8's charCodeAt pays for the indirection on every char of a cons (or
// sliced) string; encodeInto reads the flattened string once. The cons keys are
// flattened in place by the first pass (warmup), so the per-request cost of
// flattening a fresh key (paid by every candidate alike) is not in these figures.
// The charCodeAt loop is also sensitive to what V8 saw before: after the checks above
// (Unicode, sliced and cons strings) it runs at ~3–4M keys/s; in a process that never
// ran them it measured ~7M keys/s, still below FNV-1a over encodeInto bytes (~10M).
// No Redis needed. Alone: node --import tsx bench/hash.ts
import { pathToFileURL } from 'node:url'
import { Bench } from 'tinybench'
import xxhash from 'xxhash-wasm'
import { mulberry32 } from './fixtures.js'
import { fnv1a32Bytes, fnv1a32String, murmur3_32, scratchBytes, utf8Into, xxh32 } from './hash_candidates.js'
import { compare, figure, printComparisons, printTasks } from './report.js'
import type { Comparison, SuiteResult, TaskFigure } from './report.js'
import { writeJson } from './results_json.js'

export const SUITE = 'hash'
const KEYS = 100_000
const PER_ITERATION = 1000
const BUCKETS = 1024
const SEED = 0x4a54
export const SETTINGS = {
  keys: KEYS,
  keyChars: '8–64 ASCII',
  keysPerIteration: PER_ITERATION,
  buckets: BUCKETS,
  seed: SEED,
  time: 1000,
  warmupTime: 250,
  warmupIterations: 16,
  timestampProvider: 'hrtimeNow',
}

const PREFIXES = ['user', 'session', 'product', 'order', 'cart', 'tenant', 'feed', 'inventory', 'sku', 'page']
const SEGMENTS = ['profile', 'settings', 'v2', 'summary', 'permissions', 'avatar', 'items', 'en-US', 'price', 'meta']
const ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789'

/** 100,000 distinct keys shaped like `user:123456:profile`, 8–64 chars, uniform in length. */
function randomKeys(seed: number): string[] {
  const rand = mulberry32(seed)
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)] as T
  const keys = new Set<string>()
  while (keys.size < KEYS) {
    const len = 8 + Math.floor(rand() * 57)
    let s = `${pick(PREFIXES)}:${Math.floor(rand() * 1_000_000)}`
    while (s.length < len) {
      if (rand() < 0.5) s += `:${pick(SEGMENTS)}`
      else {
        s += ':'
        for (let i = 0, n = 1 + Math.floor(rand() * 8); i < n; i++) s += ALNUM[Math.floor(rand() * ALNUM.length)]
      }
    }
    keys.add(s.slice(0, len))
  }
  return [...keys]
}

/** `user:100000:profile` … `user:199999:profile`: structured keys that differ in a few digits. */
const sequentialKeys = () => Array.from({ length: KEYS }, (_, i) => `user:${100_000 + i}:profile`)

type HashFn = (key: string) => number

const XXH_STR = 'xxhash-wasm h32(str)'
const XXH_RAW = 'xxhash-wasm h32Raw(encodeInto)'
const FNV_STR = 'FNV-1a charCodeAt (inline UTF-8)'
const FNV_BYTES = 'FNV-1a (encodeInto)'
const MURMUR = 'murmur3 (encodeInto)'
const XXH_JS = 'XXH32 pure JS (encodeInto)'
const ENCODE_ONLY = 'encodeInto alone (no hash)'

/** The candidates as plain functions, for the checks and the spread (the timed loops are spelled out in run()). */
async function candidates(): Promise<{ name: string; fn: HashFn }[]> {
  const api = await xxhash()
  return [
    { name: XXH_STR, fn: (k) => api.h32(k) },
    { name: XXH_RAW, fn: (k) => api.h32Raw(scratchBytes().subarray(0, utf8Into(k))) },
    { name: FNV_STR, fn: fnv1a32String },
    { name: FNV_BYTES, fn: (k) => fnv1a32Bytes(scratchBytes(), utf8Into(k)) },
    { name: MURMUR, fn: (k) => murmur3_32(scratchBytes(), utf8Into(k)) },
    { name: XXH_JS, fn: (k) => xxh32(scratchBytes(), utf8Into(k)) },
  ]
}

const bytes = (s: string) => new TextEncoder().encode(s)

/** Published vectors and cross-checks; throws on the first mismatch. */
function verify(all: { name: string; fn: HashFn }[]): void {
  const expect = (what: string, got: number, want: number) => {
    if (got !== want) throw new Error(`${what}: got 0x${got.toString(16)}, want 0x${want.toString(16)}`)
  }
  // FNV-1a 32 (Fowler/Noll/Vo test suite), murmur3 x86_32 seed 0 (SMHasher / Wikipedia), XXH32 seed 0.
  const fnv: [string, number][] = [['', 0x811c9dc5], ['a', 0xe40c292c], ['foobar', 0xbf9cf968]]
  for (const [s, h] of fnv) {
    expect(`fnv1a32String(${JSON.stringify(s)})`, fnv1a32String(s), h)
    expect(`fnv1a32Bytes(${JSON.stringify(s)})`, fnv1a32Bytes(bytes(s)), h)
  }
  const mm: [string, number][] = [['', 0], ['hello', 0x248bfa47], ['The quick brown fox jumps over the lazy dog', 0x2e4ff723]]
  for (const [s, h] of mm) expect(`murmur3_32(${JSON.stringify(s)})`, murmur3_32(bytes(s)), h)
  const xx: [string, number][] = [['', 0x02cc5d05], ['a', 0x550d7456], ['abc', 0x32d153ff]]
  for (const [s, h] of xx) expect(`xxh32(${JSON.stringify(s)})`, xxh32(bytes(s)), h)

  // Every form of one algorithm agrees on random strings: ASCII keys, and Unicode
  // with 2-, 3- and 4-byte code points and lone surrogates (which UTF-8 encodes as U+FFFD).
  const rand = mulberry32(SEED + 1)
  const pieces = ['a', 'Z', '9', ':', 'é', 'ß', 'Ω', '中', '€', '😀', '\u{10ffff}', '\ud800', '\udfff', '\u0000']
  const strings = [...randomKeys(SEED + 2).slice(0, 2000)]
  for (let i = 0; i < 10_000; i++) {
    let s = ''
    for (let j = 0, n = Math.floor(rand() * 40); j < n; j++) s += pieces[Math.floor(rand() * pieces.length)]
    strings.push(s)
  }
  const byName = new Map(all.map((c) => [c.name, c.fn]))
  for (const s of strings) {
    const b = bytes(s)
    const fnvBytes = fnv1a32Bytes(b)
    expect(`fnv1a32String vs bytes on ${JSON.stringify(s)}`, fnv1a32String(s), fnvBytes)
    expect(`FNV-1a (encodeInto) on ${JSON.stringify(s)}`, (byName.get(FNV_BYTES) as HashFn)(s), fnvBytes)
    expect(`murmur3 (encodeInto) on ${JSON.stringify(s)}`, (byName.get(MURMUR) as HashFn)(s), murmur3_32(b))
    const x = (byName.get(XXH_STR) as HashFn)(s)
    expect(`xxhash-wasm h32Raw vs h32 on ${JSON.stringify(s)}`, (byName.get(XXH_RAW) as HashFn)(s), x)
    expect(`XXH32 pure JS vs xxhash-wasm on ${JSON.stringify(s)}`, (byName.get(XXH_JS) as HashFn)(s), x)
  }
}

export interface SpreadRow {
  hash: string
  keys: 'random' | 'sequential'
  bits: 'low 10' | 'high 10'
  chiSquare: number
  /** (chi² − df) / sqrt(2 df): |z| < 3 is what a uniform hash gives. */
  z: number
  /** Distinct keys sharing a full 32-bit hash with an earlier key. */
  collisions: number
}

function spread(name: string, fn: HashFn, which: SpreadRow['keys'], keys: string[]): SpreadRow[] {
  const low = new Float64Array(BUCKETS)
  const high = new Float64Array(BUCKETS)
  const seen = new Set<number>()
  let collisions = 0
  for (const k of keys) {
    const h = fn(k)
    ;(low[h & (BUCKETS - 1)] as number)++
    ;(high[h >>> 22] as number)++
    if (seen.has(h)) collisions++
    else seen.add(h)
  }
  const expected = keys.length / BUCKETS
  const df = BUCKETS - 1
  const chi = (counts: Float64Array) => counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0)
  return ([['low 10', low], ['high 10', high]] as const).map(([bits, counts]) => {
    const c = chi(counts)
    return { hash: name, keys: which, bits, chiSquare: c, z: (c - df) / Math.sqrt(2 * df), collisions }
  })
}

export interface HashResult extends SuiteResult {
  spread: SpreadRow[]
}

/** Something the optimizer cannot prove unused. */
let sink = 0

/** The same keys as sequential (flat) strings: what JSON.parse or a socket read hands you. */
const flatKeys = (keys: string[]) => keys.map((k) => Buffer.from(k, 'latin1').toString('latin1'))
/** The same keys as ConsStrings, the way a template literal `${a}:${b}:${c}` builds them. */
const consKeys = (keys: string[]) => keys.map((k) => k.split(':').reduce((a, b) => `${a}:${b}`))

function timedTasks(bench: Bench, keys: string[], api: Awaited<ReturnType<typeof xxhash>>): void {
  // One function literal per task: closures made from one shared literal share V8's
  // call-site feedback, which would make a `fn(key)` call megamorphic for all of them.
  const at = new Map<string, number>()
  const next = (name: string) => {
    const i = at.get(name) ?? 0
    at.set(name, (i + PER_ITERATION) % KEYS)
    return i
  }
  bench
    .add(XXH_STR, () => {
      let acc = 0
      for (let j = 0, i = next(XXH_STR); j < PER_ITERATION; j++) acc ^= api.h32(keys[i + j] as string)
      sink ^= acc
    })
    .add(XXH_RAW, () => {
      let acc = 0
      for (let j = 0, i = next(XXH_RAW); j < PER_ITERATION; j++) {
        const n = utf8Into(keys[i + j] as string)
        acc ^= api.h32Raw(scratchBytes().subarray(0, n))
      }
      sink ^= acc
    })
    .add(FNV_STR, () => {
      let acc = 0
      for (let j = 0, i = next(FNV_STR); j < PER_ITERATION; j++) acc ^= fnv1a32String(keys[i + j] as string)
      sink ^= acc
    })
    .add(FNV_BYTES, () => {
      let acc = 0
      for (let j = 0, i = next(FNV_BYTES); j < PER_ITERATION; j++) {
        const n = utf8Into(keys[i + j] as string)
        acc ^= fnv1a32Bytes(scratchBytes(), n)
      }
      sink ^= acc
    })
    .add(MURMUR, () => {
      let acc = 0
      for (let j = 0, i = next(MURMUR); j < PER_ITERATION; j++) {
        const n = utf8Into(keys[i + j] as string)
        acc ^= murmur3_32(scratchBytes(), n)
      }
      sink ^= acc
    })
    .add(XXH_JS, () => {
      let acc = 0
      for (let j = 0, i = next(XXH_JS); j < PER_ITERATION; j++) {
        const n = utf8Into(keys[i + j] as string)
        acc ^= xxh32(scratchBytes(), n)
      }
      sink ^= acc
    })
    .add(ENCODE_ONLY, () => {
      let acc = 0
      for (let j = 0, i = next(ENCODE_ONLY); j < PER_ITERATION; j++) acc += utf8Into(keys[i + j] as string)
      sink ^= acc
    })
}

export async function run(): Promise<HashResult> {
  const all = await candidates()
  verify(all)
  const random = randomKeys(SEED)
  const sequential = sequentialKeys()
  const spreadRows = all.flatMap((c) => [...spread(c.name, c.fn, 'random', random), ...spread(c.name, c.fn, 'sequential', sequential)])

  const api = await xxhash()
  const avg = (random.reduce((n, k) => n + k.length, 0) / random.length).toFixed(1)
  const result: HashResult = { suite: SUITE, tasks: [], rows: [], spread: spreadRows }
  const scenarios: [string, string[]][] = [
    [`flat strings (avg ${avg} chars)`, flatKeys(random)],
    [`template-literal cons strings (avg ${avg} chars)`, consKeys(random)],
  ]
  for (const [scenario, keys] of scenarios) {
    const bench = new Bench({
      name: scenario,
      time: SETTINGS.time,
      warmupTime: SETTINGS.warmupTime,
      warmupIterations: SETTINGS.warmupIterations,
      timestampProvider: 'hrtimeNow',
      warmup: true,
      throws: true,
    })
    timedTasks(bench, keys, api)
    await bench.run()
    const figs = new Map<string, TaskFigure>(bench.tasks.map((t) => [t.name, figure(scenario, t, PER_ITERATION)]))
    const f = (name: string) => figs.get(name) as TaskFigure
    result.tasks.push(...figs.values())
    for (const c of all) if (c.name !== XXH_STR) result.rows.push(compare(scenario, f(c.name), f(XXH_STR)))
    for (const c of all) if (c.name !== XXH_STR && c.name !== XXH_RAW) result.rows.push(compare(scenario, f(c.name), f(XXH_RAW)))
  }
  if (sink === 0.5) console.log(sink)
  return result
}

/** Prints the spread table and the timing tables; writes bench/results/hash.json. */
export async function report(result: HashResult): Promise<void> {
  console.log(`\n== ${result.suite} ==`)
  console.log(`spread of ${KEYS} distinct keys over ${BUCKETS} buckets (chi², df ${BUCKETS - 1}; |z| < 3 is uniform):`)
  console.table(result.spread.map((r) => ({ hash: r.hash, keys: r.keys, bits: r.bits, 'chi²': r.chiSquare.toFixed(1), z: r.z.toFixed(2), '32-bit collisions': r.collisions })))
  printTasks(result.tasks)
  console.log('ratios: candidate / xxhash-wasm (ours = candidate, peer = xxhash-wasm)')
  printComparisons(result.rows)
  console.log(`results: ${await writeJson(result.suite, SETTINGS, { tasks: result.tasks, rows: result.rows, spread: result.spread })}`)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await report(await run())
}
