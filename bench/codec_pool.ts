// Does handing codec work to worker threads pay, and from what value size? The work
// of one set+get pair, as the cache does it: encode (msgpackr, LZ4 when the msgpack
// bytes are >= compressThreshold 1 KiB, kept when smaller) → envelope bytes (xxh32
// checksum) → parse the envelope (checksum again) → inflate → decode. Each tinybench
// iteration runs N such pairs concurrently from the one main thread (Promise.all) and
// awaits them; ops/s = pairs/s. Main-thread CPU per pair comes from the main thread's
// own on-CPU time (/proc/self/task/<pid>/schedstat, ns) read around every iteration;
// the same file gives the time it was runnable but waiting for a CPU ("main runq
// wait", a share of wall time), and process.cpuUsage() the CPU of every thread
// ("process CPU", 2.0 = both cores busy). On the 2-vCPU development VM a main thread
// and a worker that wake each other often ended up sharing one vCPU (runq wait
// ~30%, process CPU ~1.0) even with nothing else running, which caps throughput
// gains well below what the main-thread CPU saved; those columns show when.
//
// Values, sized by their msgpack bytes: "records", an array of ~91-byte records
// (bench/fixtures item(i): an object with 8 fields); "string", one string of words.
// Sizes 512 B, 1 KiB, 10 KiB, 100 KiB, 1 MiB; 4 distinct values per scenario, rotated.
//
// Candidates (1 worker thread; the machine has 2 cores):
//   inline        today's code: serialize + encodeEnvelope; decodeEnvelope + inflate + deserialize
//   (b) bytes     main: msgpackr pack/unpack; a piscina worker: LZ4 + envelope + checksum on the
//                 transferred msgpack bytes, and envelope check + inflate on the way back (every size)
//   (b') pool forced  CodecPool with threshold 0, no work sharing: only LZ4 goes over (both ways),
//                 the envelope and its checksum stay on main (what CodecPool's API can do)
//   (c1) value    the worker serializes (the value is structured-cloned over) and builds the
//                 envelope; decoding too happens there and the value is cloned back
//   (c2) value, decode inline   as (c1) for the write; the read is decoded on main
//   pool          CodecPool as shipped: default thresholds, work sharing; also with
//                 adaptive thresholds, and without work sharing
//   lz4 async     (reference, not a piscina design) LZ4 through lz4-napi's async API, which
//                 runs on libuv's threadpool; msgpackr and the envelope on main
// Every candidate's round trip is checked against the input (isDeepStrictEqual) first.
//
// Then the crossover sweep: inline vs CodecPool forced (threshold 0, no work sharing) at
// 2 KiB–1 MiB, for the write alone (encode), the read alone (decode of a ready payload)
// and the pair; the crossover printed is the smallest size from which the forced pool
// costs the main thread less CPU per operation than inline for both kinds of value at
// every larger size (per kind it is lower for text: see src/codec/codec_pool.ts MEASURED).
// Every iteration ends with a setImmediate turn of the event loop, as a server's loop
// turns: lz4-napi frees its output Buffers only then (the finalizer probe at the end
// measures what happens without it).
//
// Before each scenario the bench waits (up to NEARCACHE_CODEC_IDLE_WAIT_MS, default 30 s)
// until the machine's CPUs are >= 90% idle: other processes on 2 cores skew a 2-thread
// benchmark more than anything measured here.
//
// This file is also the candidates' piscina worker (default export below), loaded in
// worker threads through tsx. No Redis needed. Alone: node --import tsx bench/codec_pool.ts
// Shorter/longer: NEARCACHE_CODEC_MS (ms per task and round, default 300), NEARCACHE_CODEC_ROUNDS
// (rounds of everything, so each task's time is spread over the run; medians across rounds;
// default 3), NEARCACHE_CODEC_PARTS ('compare', 'sweep'; both by default).
import { readFileSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { isDeepStrictEqual } from 'node:util'
import v8 from 'node:v8'
import vm from 'node:vm'
import { isMainThread } from 'node:worker_threads'
import { compress, compressSync, uncompress } from 'lz4-napi'
import { move, Piscina, transferableSymbol, valueSymbol } from 'piscina'
import { Bench } from 'tinybench'
import { CodecPool, MEASURED } from '../src/codec/codec_pool.js'
import { CODEC_MSGPACKR, decodeEnvelope, encodeEnvelope } from '../src/codec/envelope.js'
import type { EntryMeta } from '../src/codec/envelope.js'
import { deserialize, inflate, serialize } from '../src/codec/value_codec.js'
import { initHash } from '../wasm/hash.js'
import { item, mulberry32 } from './fixtures.js'
import { figure, printComparisons } from './report.js'
import type { Comparison, TaskFigure } from './report.js'
import { writeJson } from './results_json.js'

export const SUITE = 'codec_pool'
const TIME = Number(process.env.NEARCACHE_CODEC_MS ?? 300)
const ROUNDS = Number(process.env.NEARCACHE_CODEC_ROUNDS ?? 3)
/** Before each scenario, wait (at most this long) for other processes to leave the cores alone. */
const IDLE_WAIT_MS = Number(process.env.NEARCACHE_CODEC_IDLE_WAIT_MS ?? 30_000)
const IDLE_TARGET = 0.9
/** Which parts to run: 'compare', 'sweep' (both by default). */
const PARTS = (process.env.NEARCACHE_CODEC_PARTS ?? 'compare,sweep').split(',')
const MAX_VALUE = 64 * 1024 * 1024
const COMPRESS_THRESHOLD = 1024
const SIZES = [512, 1024, 10 * 1024, 100 * 1024, 1024 * 1024]
const SWEEP = [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024].map((k) => k * 1024)
const DISTINCT = 4
export const SETTINGS = {
  work: 'per pair: serialize → encodeEnvelope → decodeEnvelope → inflate → deserialize (or the candidate\'s split of it)',
  concurrency: 'N pairs per iteration, N = clamp(2 MiB / size, 4, 64), Promise.all from the main thread',
  compressThreshold: COMPRESS_THRESHOLD,
  workerThreads: 1,
  values: 'records: array of bench/fixtures item(i) (~91 msgpack bytes each); string: words from a 24-word list (mulberry32 seed 7)',
  sizes: 'msgpack bytes',
  distinctValuesPerScenario: DISTINCT,
  mainThreadCpu: '/proc/self/task/<pid>/schedstat on-CPU ns around each iteration, divided by pairs',
  time: TIME,
  iterations: 8,
  warmupTime: 100,
  warmupIterations: 2,
  rounds: ROUNDS,
  idleWait: `before each scenario, up to ${IDLE_WAIT_MS} ms until the machine's CPUs were >= ${IDLE_TARGET * 100}% idle over 250 ms (/proc/stat)`,
  timestampProvider: 'hrtimeNow',
}

// ------------------------------------------------------------------ worker side

type CandidateTask =
  | { op: 'b-enc'; bytes: Uint8Array }
  | { op: 'b-dec'; bytes: Uint8Array }
  | { op: 'c-enc'; value: unknown }
  | { op: 'c-dec'; bytes: Uint8Array }

/** Envelope fields other than `compressed`, as a write with no TTL and no tags has them. */
const META: Omit<EntryMeta, 'compressed'> = { createdAt: 1_700_000_000_000, expiresAt: 0, softExpiresAt: 0, staleUntil: 0, tags: undefined, codec: CODEC_MSGPACKR }

function owned(b: Uint8Array): Uint8Array {
  const copy = new Uint8Array(b.length)
  copy.set(b)
  return copy
}

const moveBytes = (b: Uint8Array) => move({ [transferableSymbol]: [b.buffer], [valueSymbol]: b } as never)

let hashReady: Promise<void> | undefined

/**
 * The candidates' worker: (b) byte work with the envelope, (c) whole values. (No
 * top-level await in a piscina worker module: piscina tries require() first, and
 * tsx cannot compile a module with top-level await to CommonJS.)
 */
export default async function candidateTask(task: CandidateTask): Promise<unknown> {
  await (hashReady ??= initHash())
  switch (task.op) {
    case 'b-enc': {
      const raw = Buffer.from(task.bytes.buffer, task.bytes.byteOffset, task.bytes.byteLength)
      let stored: Uint8Array = raw
      let compressed = false
      if (raw.length >= COMPRESS_THRESHOLD) {
        // Async, as workers/codec_worker.ts does (see the finalizer probe).
        const packed = await compress(raw)
        if (packed.length < raw.length) [stored, compressed] = [packed, true]
      }
      return moveBytes(encodeEnvelope(stored, { ...META, compressed }))
    }
    case 'b-dec': {
      const env = decodeEnvelope(task.bytes)
      return moveBytes(owned(inflate(env.payload, env.compressed, MAX_VALUE)))
    }
    case 'c-enc': {
      const e = serialize(task.value, MAX_VALUE, COMPRESS_THRESHOLD)
      return moveBytes(encodeEnvelope(e.stored, { ...META, compressed: e.compressed }))
    }
    case 'c-dec': {
      const env = decodeEnvelope(task.bytes)
      return deserialize(inflate(env.payload, env.compressed, MAX_VALUE))
    }
  }
}

// ------------------------------------------------------------------ values

const WORDS = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua cache value product order user'.split(' ')

type Kind = 'records' | 'string'

/** `DISTINCT` values of about `bytes` msgpack bytes. */
function values(kind: Kind, bytes: number): unknown[] {
  if (kind === 'records') {
    const per = serialize(Array.from({ length: 100 }, (_, i) => item(i)), MAX_VALUE, Infinity).raw.length / 100
    const n = Math.max(1, Math.round(bytes / per))
    return Array.from({ length: DISTINCT }, (_, d) => Array.from({ length: n }, (_, i) => item(d * 1_000_000 + i)))
  }
  return Array.from({ length: DISTINCT }, (_, d) => {
    const rand = mulberry32(7 + d)
    const parts: string[] = []
    let len = 0
    while (len < bytes) {
      const w = WORDS[Math.floor(rand() * WORDS.length)] as string
      parts.push(w)
      len += w.length + 1
    }
    return parts.join(' ').slice(0, bytes - 5)
  })
}

// ------------------------------------------------------------------ main side

/** The main thread's on-CPU time and its time waiting for a CPU while runnable, in µs (Linux schedstat), or NaN. */
function mainSched(): { run: number; wait: number } {
  try {
    const [run, wait] = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ').map(Number)
    return { run: (run as number) / 1000, wait: (wait as number) / 1000 }
  } catch {
    return { run: Number.NaN, wait: Number.NaN }
  }
}

/** Share of all CPUs idle over `ms` (Linux /proc/stat), or 1 where unknown. */
async function idleShare(ms: number): Promise<number> {
  const read = () => {
    const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number)
    return { idle: (f[3] ?? 0) + (f[4] ?? 0), total: f.reduce((a, b) => a + b, 0) }
  }
  try {
    const a = read()
    await new Promise((r) => setTimeout(r, ms))
    const b = read()
    return b.total > a.total ? (b.idle - a.idle) / (b.total - a.total) : 1
  } catch {
    return 1
  }
}

/** Other processes' load skews a 2-thread benchmark on 2 cores: wait (bounded) until the cores are idle. */
async function waitForIdleCores(): Promise<void> {
  const until = performance.now() + IDLE_WAIT_MS
  while (performance.now() < until && (await idleShare(250)) < IDLE_TARGET) {
    // keep waiting
  }
}

type Pair = (value: unknown) => Promise<unknown>

const INLINE = 'inline'
const B_BYTES = '(b) worker: LZ4 + envelope/xxh32'
const B_POOL = "(b') CodecPool forced: LZ4 only"
const C1 = '(c1) worker: whole value both ways'
const C2 = '(c2) worker encodes, decode inline'
const POOL = 'CodecPool (shipped defaults)'
const POOL_ADAPTIVE = 'CodecPool, adaptive on'
const POOL_NO_SHARING = 'CodecPool, no work sharing'
const LIBUV = 'lz4-napi async (libuv, reference)'
const CANDIDATES = [INLINE, B_BYTES, B_POOL, C1, C2, POOL, POOL_ADAPTIVE, POOL_NO_SHARING, LIBUV]

interface Pools {
  candidates: Piscina
  forced: CodecPool
  shipped: CodecPool
  adaptive: CodecPool
  noSharing: CodecPool
}

/** A set+get pair through a CodecPool; the envelope (and its checksum) on the calling thread, as the cache does. */
function poolPair(pool: CodecPool): Pair {
  return async (v) => {
    const e = await pool.encode(v, MAX_VALUE, COMPRESS_THRESHOLD)
    const env = decodeEnvelope(encodeEnvelope(e.stored, { ...META, compressed: e.compressed }))
    return pool.decode(env.payload, env.compressed, MAX_VALUE)
  }
}

/** One set+get pair's codec work, per candidate. The read starts from envelope bytes the caller does not own (as a Redis reply). */
function pairs(p: Pools): Record<string, Pair> {
  const envelope = (stored: Uint8Array, compressed: boolean) => encodeEnvelope(stored, { ...META, compressed })
  const run = <T>(task: CandidateTask, bytes?: Uint8Array) =>
    p.candidates.run(task, bytes ? { transferList: [bytes.buffer as ArrayBuffer] } : {}) as Promise<T>
  return {
    [INLINE]: async (v) => {
      const e = serialize(v, MAX_VALUE, COMPRESS_THRESHOLD)
      const env = decodeEnvelope(envelope(e.stored, e.compressed))
      return deserialize(inflate(env.payload, env.compressed, MAX_VALUE))
    },
    [B_BYTES]: async (v) => {
      const raw = owned(serialize(v, MAX_VALUE, Infinity).raw)
      const stored = await run<Uint8Array>({ op: 'b-enc', bytes: raw }, raw)
      const read = owned(stored)
      const back = await run<Uint8Array>({ op: 'b-dec', bytes: read }, read)
      return deserialize(Buffer.from(back.buffer, back.byteOffset, back.byteLength))
    },
    [B_POOL]: poolPair(p.forced),
    [C1]: async (v) => {
      const stored = await run<Uint8Array>({ op: 'c-enc', value: v })
      const read = owned(stored)
      return run({ op: 'c-dec', bytes: read }, read)
    },
    [C2]: async (v) => {
      const stored = await run<Uint8Array>({ op: 'c-enc', value: v })
      const env = decodeEnvelope(stored)
      return deserialize(inflate(env.payload, env.compressed, MAX_VALUE))
    },
    [POOL]: poolPair(p.shipped),
    [POOL_ADAPTIVE]: poolPair(p.adaptive),
    [POOL_NO_SHARING]: poolPair(p.noSharing),
    [LIBUV]: async (v) => {
      const e = serialize(v, MAX_VALUE, Infinity)
      let stored: Uint8Array = e.raw
      let compressed = false
      if (e.raw.length >= COMPRESS_THRESHOLD) {
        const packed = await compress(e.raw)
        if (packed.length < e.raw.length) [stored, compressed] = [packed, true]
      }
      const env = decodeEnvelope(envelope(stored, compressed))
      return deserialize(env.compressed ? await uncompress(env.payload) : env.payload)
    },
  }
}

const concurrency = (size: number) => Math.max(4, Math.min(64, Math.floor((2 * 1024 * 1024) / size)))
const label = (kind: Kind, size: number) => `${kind} ${size >= 1024 ? `${size / 1024} KiB` : `${size} B`}`

export interface CpuFigure {
  scenario: string
  task: string
  /** Main-thread on-CPU µs per operation (pair, encode or decode). */
  mainCpuMicrosPerOp: number
  /**
   * Share of the timed wall time the main thread was runnable but waiting for a CPU
   * (schedstat). High values mean the two threads were sharing one core: the
   * scheduler put them on the same CPU, or other processes held the other one.
   */
  mainRunqueueWait: number
  /** CPU time of the whole process (every thread) / wall time: 2 = both cores busy. */
  processCpuShare: number
}

/** Times `tasks` (name → one operation on a value) with N concurrent operations per iteration. */
async function timeTasks(scenario: string, inputs: unknown[], n: number, tasks: [string, (v: unknown) => Promise<unknown>][]): Promise<{ figs: TaskFigure[]; cpu: CpuFigure[] }> {
  await waitForIdleCores()
  const bench = new Bench({
    name: scenario,
    time: TIME,
    iterations: SETTINGS.iterations,
    warmupTime: SETTINGS.warmupTime,
    warmupIterations: SETTINGS.warmupIterations,
    timestampProvider: 'hrtimeNow',
    warmup: true,
    throws: true,
  })
  type Acc = { micros: number; wait: number; wall: number; processMicros: number; ops: number }
  const cpu = new Map<string, Acc>()
  for (const [name, op] of tasks) {
    const acc: Acc = { micros: 0, wait: 0, wall: 0, processMicros: 0, ops: 0 }
    cpu.set(name, acc)
    let at = 0
    const batch = Array.from({ length: n }, (_, i) => inputs[i % inputs.length])
    bench.add(name, async () => {
      const s0 = mainSched()
      const p0 = process.cpuUsage()
      const t0 = performance.now()
      at = (at + 1) % inputs.length
      await Promise.all(batch.map((_, i) => op(batch[(i + at) % batch.length])))
      // Let the event loop turn, as a server's does: lz4-napi frees its Buffers in
      // finalizers that run only then (see lz4FinalizerProbe).
      await new Promise(setImmediate)
      acc.wall += (performance.now() - t0) * 1000
      const p = process.cpuUsage(p0)
      acc.processMicros += p.user + p.system
      const s1 = mainSched()
      acc.micros += s1.run - s0.run
      acc.wait += s1.wait - s0.wait
      acc.ops += n
    }, {
      // Warm-up iterations do not count towards the CPU figures.
      beforeAll() {
        Object.assign(acc, { micros: 0, wait: 0, wall: 0, processMicros: 0, ops: 0 })
      },
    })
  }
  await bench.run()
  return {
    figs: bench.tasks.map((t) => figure(scenario, t, n)),
    cpu: tasks.map(([name]) => {
      const a = cpu.get(name) as Acc
      return { scenario, task: name, mainCpuMicrosPerOp: a.micros / a.ops, mainRunqueueWait: a.wait / a.wall, processCpuShare: a.processMicros / a.wall }
    }),
  }
}

const cpuOf = ({ mainCpuMicrosPerOp, mainRunqueueWait, processCpuShare }: CpuFigure) => ({ mainCpuMicrosPerOp, mainRunqueueWait, processCpuShare })

export interface Row extends Comparison {
  oursMainCpuMicros: number
  peerMainCpuMicros: number
  /** Medians of the candidate's main-thread runqueue wait share and process CPU share (see CpuFigure). */
  oursRunqueueWait: number
  oursProcessCpu: number
  /** Main-thread CPU per op, peer / ours: above 1 means ours leaves the main thread more time. */
  cpuRatio: number
}

export interface CodecPoolResult {
  suite: string
  tasks: (TaskFigure & Omit<CpuFigure, 'scenario' | 'task'> & { round: number })[]
  /** Medians across rounds: every candidate / inline. */
  rows: Row[]
  sweep: Row[]
  crossover: { encode: number | null; decode: number | null; pair: number | null }
  goals: { goal: string; scenario: string; ratio: number; target: number; met: boolean; mainCpuRatio: number }[]
  shippedStats: unknown
  /** RSS growth per call (bytes) while compressing: see lz4FinalizerProbe. */
  lz4Finalizers: { calls: number; inputBytes: number; syncNoYield: number; syncYielding: number; asyncCompress: number }
  /** /proc/loadavg (1-minute) before and after: other load on the cores skews the throughput ratios. */
  loadAverage: { before: number; after: number }
}

const loadAverage = () => {
  try {
    return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0])
  } catch {
    return Number.NaN
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

function row(scenario: string, ours: string, peer: string, figs: (TaskFigure & Omit<CpuFigure, 'scenario' | 'task'>)[]): Row {
  const pick = (name: string) => figs.filter((f) => f.scenario === scenario && f.task === name)
  const o = pick(ours)
  const q = pick(peer)
  const oOps = median(o.map((f) => f.opsPerSec))
  const pOps = median(q.map((f) => f.opsPerSec))
  const oCpu = median(o.map((f) => f.mainCpuMicrosPerOp))
  const pCpu = median(q.map((f) => f.mainCpuMicrosPerOp))
  return {
    scenario,
    ours,
    peer,
    oursOpsPerSec: oOps,
    peerOpsPerSec: pOps,
    ratio: oOps / pOps,
    oursMainCpuMicros: oCpu,
    peerMainCpuMicros: pCpu,
    cpuRatio: pCpu / oCpu,
    oursRunqueueWait: median(o.map((f) => f.mainRunqueueWait)),
    oursProcessCpu: median(o.map((f) => f.processCpuShare)),
  }
}

async function checkRoundTrips(all: Record<string, Pair>, kind: Kind, size: number): Promise<void> {
  const [v] = values(kind, size)
  for (const [name, pair] of Object.entries(all)) {
    const back = await pair(v)
    if (!isDeepStrictEqual(back, v)) throw new Error(`${name} did not round-trip ${label(kind, size)}`)
  }
}

let lastResult: CodecPoolResult | undefined

/**
 * The issue's goal rows for bench/goals.ts: from this run of the suite when it ran
 * already (npm run bench runs it before goals), else measured now.
 */
export async function goalRows(): Promise<{ scenario: string; ours: number; peer: number; ratio: number; goal: number }[]> {
  const r = lastResult ?? (await run())
  return r.goals.map((g) => {
    const row = r.rows.find((x) => x.scenario === g.scenario && x.ours === 'CodecPool (shipped defaults)')
    return { scenario: `${g.scenario}: pool / inline`, ours: row?.oursOpsPerSec ?? Number.NaN, peer: row?.peerOpsPerSec ?? Number.NaN, ratio: g.ratio, goal: g.target }
  })
}

/** A full GC: global.gc if exposed, else the same through V8 flags (as bench/threads_shared_l1.ts does). */
function gcFunction(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc
  if (typeof existing === 'function') return existing
  v8.setFlagsFromString('--expose-gc')
  return vm.runInNewContext('gc') as () => void
}

/**
 * Why the worker uses lz4-napi's async compress: the Buffers lz4-napi returns are freed
 * by finalizers that run only when the event loop turns. RSS growth per call over
 * LEAK_CALLS compressions of one 100 KiB value: compressSync in a loop that never
 * yields to the event loop (what piscina's worker loop is with atomics: 'sync' and a
 * synchronous task), compressSync yielding (setImmediate) every 8 calls, and the async
 * compress.
 */
const LEAK_CALLS = 20_000
async function lz4FinalizerProbe(): Promise<CodecPoolResult['lz4Finalizers']> {
  const input = Buffer.from(values('string', 100 * 1024)[0] as string)
  const gc = gcFunction()
  const growth = async (loop: () => Promise<void>) => {
    gc()
    await new Promise(setImmediate)
    const before = process.memoryUsage().rss
    await loop()
    const after = process.memoryUsage().rss
    gc()
    await new Promise(setImmediate)
    return (after - before) / LEAK_CALLS
  }
  const syncNoYield = await growth(async () => {
    for (let i = 0; i < LEAK_CALLS; i++) compressSync(input)
  })
  const syncYielding = await growth(async () => {
    for (let i = 0; i < LEAK_CALLS; i++) {
      compressSync(input)
      if (i % 8 === 7) await new Promise(setImmediate)
    }
  })
  const asyncCompress = await growth(async () => {
    for (let i = 0; i < LEAK_CALLS; i += 8) await Promise.all(Array.from({ length: 8 }, () => compress(input)))
  })
  return { calls: LEAK_CALLS, inputBytes: input.length, syncNoYield, syncYielding, asyncCompress }
}

export async function run(): Promise<CodecPoolResult> {
  lastResult = await measure()
  return lastResult
}

async function measure(): Promise<CodecPoolResult> {
  const loadBefore = loadAverage()
  await initHash()
  const here = fileURLToPath(import.meta.url)
  const pools: Pools = {
    candidates: new Piscina({ filename: here, execArgv: ['--import', 'tsx'], minThreads: 1, maxThreads: 1, concurrentTasksPerWorker: 4, idleTimeout: Infinity, recordTiming: false }),
    forced: await CodecPool.create({ threads: 1, threshold: 0, adaptive: false, workSharing: false }),
    shipped: await CodecPool.create({ threads: 1 }),
    adaptive: await CodecPool.create({ threads: 1, adaptive: true }),
    noSharing: await CodecPool.create({ threads: 1, workSharing: false }),
  }
  try {
    const all = pairs(pools)
    for (const kind of ['records', 'string'] as Kind[]) for (const size of [1024, 100 * 1024]) await checkRoundTrips(all, kind, size)

    const tasks: CodecPoolResult['tasks'] = []
    for (let round = 1; round <= (PARTS.includes('compare') ? ROUNDS : 0); round++) {
      for (const kind of ['records', 'string'] as Kind[]) {
        for (const size of SIZES) {
          const scenario = `set+get ${label(kind, size)}`
          const { figs, cpu } = await timeTasks(scenario, values(kind, size), concurrency(size), CANDIDATES.map((c) => [c, all[c] as Pair]))
          figs.forEach((f, i) => tasks.push({ ...f, ...cpuOf(cpu[i] as CpuFigure), round }))
          console.log(`  round ${round}: ${scenario} done`)
        }
      }
    }
    const rows = [...new Set(tasks.map((t) => t.scenario))].flatMap((s) => CANDIDATES.filter((c) => c !== INLINE).map((c) => row(s, c, INLINE, tasks)))

    // Crossover sweep: inline vs forced pool, per direction and for the pair.
    const sweepTasks: (TaskFigure & Omit<CpuFigure, 'scenario' | 'task'>)[] = []
    for (let round = 1; round <= (PARTS.includes('sweep') ? ROUNDS : 0); round++) {
      for (const kind of ['records', 'string'] as Kind[]) {
        for (const size of SWEEP) {
          const inputs = values(kind, size)
          const payloads = inputs.map((v) => serialize(v, MAX_VALUE, COMPRESS_THRESHOLD))
          const n = concurrency(size)
          type Payload = (typeof payloads)[number]
          const ops: [string, [string, (v: unknown) => Promise<unknown>][]][] = [
            ['encode', [
              ['inline', async (v) => serialize(v, MAX_VALUE, COMPRESS_THRESHOLD)],
              ['pool', (v) => pools.forced.encode(v, MAX_VALUE, COMPRESS_THRESHOLD)],
            ]],
            ['decode', [
              ['inline', async (v) => deserialize(inflate((v as Payload).stored, (v as Payload).compressed, MAX_VALUE))],
              ['pool', (v) => pools.forced.decode((v as Payload).stored, (v as Payload).compressed, MAX_VALUE)],
            ]],
            ['pair', [['inline', all[INLINE] as Pair], ['pool', all[B_POOL] as Pair]]],
          ]
          for (const [op, opTasks] of ops) {
            const scenario = `${op} ${label(kind, size)}`
            const { figs, cpu } = await timeTasks(scenario, op === 'decode' ? payloads : inputs, n, opTasks)
            figs.forEach((f, i) => sweepTasks.push({ ...f, ...cpuOf(cpu[i] as CpuFigure) }))
          }
        }
        console.log(`  round ${round}: sweep ${kind} done`)
      }
    }
    const sweep = [...new Set(sweepTasks.map((t) => t.scenario))].map((s) => row(s, 'pool', 'inline', sweepTasks))
    const crossoverOf = (op: string) => {
      // The smallest size from which, for every larger size and both kinds, the pool costs the main thread less.
      let found: number | null = null
      for (const size of [...SWEEP].reverse()) {
        const wins = (['records', 'string'] as Kind[]).every((k) => (sweep.find((r) => r.scenario === `${op} ${label(k, size)}`)?.cpuRatio ?? 0) > 1)
        if (!wins) break
        found = size
      }
      return found
    }
    const crossover = { encode: crossoverOf('encode'), decode: crossoverOf('decode'), pair: crossoverOf('pair') }

    const goal = (g: string, scenario: string, target: number) => {
      const r = rows.find((x) => x.scenario === scenario && x.ours === POOL)
      const ratio = r?.ratio ?? Number.NaN
      return { goal: g, scenario, ratio, target, met: ratio >= target, mainCpuRatio: r?.cpuRatio ?? Number.NaN }
    }
    const goals = (['records', 'string'] as Kind[]).flatMap((k) => [
      goal('100 KiB set+get codec work: pool / inline (goal >= 1.3)', `set+get ${label(k, 100 * 1024)}`, 1.3),
      goal('< 1 KiB: pool / inline (goal >= 0.95)', `set+get ${label(k, 512)}`, 0.95),
    ])
    const shippedStats = pools.shipped.stats()
    const lz4Finalizers = await lz4FinalizerProbe()
    return { suite: SUITE, tasks, rows, sweep, crossover, goals, shippedStats, lz4Finalizers, loadAverage: { before: loadBefore, after: loadAverage() } }
  } finally {
    await pools.candidates.destroy()
    await pools.forced.close()
    await pools.shipped.close()
    await pools.adaptive.close()
    await pools.noSharing.close()
  }
}

const int = (n: number) => Math.round(n).toLocaleString('en-US')

function printRows(rows: Row[]): void {
  console.table(rows.map((r) => ({
    scenario: r.scenario,
    candidate: r.ours,
    'pairs/s': int(r.oursOpsPerSec),
    'inline pairs/s': int(r.peerOpsPerSec),
    'ratio (thr.)': r.ratio.toFixed(2),
    'main µs/op': r.oursMainCpuMicros.toFixed(1),
    'inline main µs/op': r.peerMainCpuMicros.toFixed(1),
    'main CPU inline/ours': r.cpuRatio.toFixed(2),
    'main runq wait': `${Math.round(r.oursRunqueueWait * 100)}%`,
    'process CPU': r.oursProcessCpu.toFixed(2),
  })))
}

/** Prints the tables and writes bench/results/codec_pool.json. */
export async function report(result: CodecPoolResult): Promise<void> {
  console.log(`\n== ${result.suite} ==`)
  console.log('set+get codec work, every candidate vs inline (medians across rounds; ratio = candidate / inline pairs/s):')
  printRows(result.rows)
  console.log('crossover sweep: CodecPool forced to offload vs inline (per encode, decode or pair):')
  printRows(result.sweep)
  const kb = (n: number | null) => (n === null ? 'none in the sweep' : `${n / 1024} KiB`)
  console.log(`crossover (main-thread CPU): encode ${kb(result.crossover.encode)}, decode ${kb(result.crossover.decode)}, pair ${kb(result.crossover.pair)}; shipped defaults: compress ${MEASURED.compress.threshold / 1024} KiB, inflate ${MEASURED.inflate.threshold / 1024} KiB`)
  console.table(result.goals.map((g) => ({ goal: g.goal, scenario: g.scenario, 'pool / inline': g.ratio.toFixed(2), met: g.met ? 'yes' : 'NO', 'main CPU inline/pool': g.mainCpuRatio.toFixed(2) })))
  console.log('shipped pool stats after the run:', JSON.stringify(result.shippedStats))
  const l = result.lz4Finalizers
  console.log(
    `lz4-napi output finalizers (${l.calls} compressions of ${l.inputBytes} bytes; RSS growth per call while running): ` +
      `compressSync never yielding ${Math.round(l.syncNoYield)} B, compressSync yielding every 8 calls ${Math.round(l.syncYielding)} B, async compress ${Math.round(l.asyncCompress)} B`,
  )
  console.log(`load average (1 min) before / after: ${result.loadAverage.before} / ${result.loadAverage.after} (2 cores; other load lowers the throughput ratios)`)
  const { suite: _, ...body } = result
  console.log(`results: ${await writeJson(result.suite, SETTINGS, body)}`)
}

// No top-level await here: this module is also a piscina worker, which piscina loads with
// require() first (through tsx), and a module with top-level await cannot be required.
if (isMainThread && process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  run().then(report).catch((err: unknown) => {
    console.error(err)
    process.exitCode = 1
  })
}
