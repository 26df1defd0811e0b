/**
 * Counters live in a SharedArrayBuffer so that every thread attached to a cache
 * adds to the same figures: each thread claims a row of Float64 counters and is
 * its only writer (plain increments, no atomics); `stats()` sums the rows.
 *
 * A row holds, per tier, what the tier itself counts (all namespaces together),
 * the process figures (invalidation bus, write-behind queue), and one block per
 * namespace: lookups by the tier that answered, writes, expirations, loader calls
 * and an operation-latency histogram. Namespace names are registered once in the
 * buffer, so every thread agrees on which block is whose.
 */
import { withLock } from '../threads/atomics.js'
import { emptyHistogram, Histogram, HISTOGRAM_FIELDS, readHistogram } from './stats_histogram.js'
import type { HistogramSnapshot } from './stats_histogram.js'

export { HISTOGRAM_BOUNDS_MS } from './stats_histogram.js'
export type { HistogramSnapshot } from './stats_histogram.js'

export interface TierStats {
  enabled: boolean
  hits: number
  misses: number
  sets: number
  deletes: number
  errors: number
  evictions: number
  /** L1 only: live entries (values and negative entries) and bytes held, over all threads. */
  entries: number
  bytes: number
  /** L1 only: the bytes the table may hold (l1.maxBytes); 0 for L2. */
  capacity: number
  /** Round-trip latency in ms over this thread's most recent 4096 samples. */
  latency: { p50: number; p99: number; samples: number }
  /** Round-trip latency over all threads since start (L1: one lookup in 16 is timed and counted 16 times). */
  histogram: HistogramSnapshot
}

/** One namespace's figures, over all threads. A lookup is a get, has, getMany key or getOrSet. */
export interface NamespaceStats {
  /** Lookups answered with a live value, by the tier that answered. */
  hits: { l1: number; l2: number }
  /** Lookups answered "missing", by the tier that answered (an L1 negative entry counts as L1). */
  misses: { l1: number; l2: number }
  sets: number
  /** Live entries removed by delete/deleteMany. */
  deletes: number
  /** Entries found past their expiry when read (Redis drops most expired keys itself; this counts the ones seen). */
  expirations: number
  /** Corrupt entries and failed commands of this namespace. */
  errors: number
  /** getOrSet loader calls made in this process. */
  loads: number
  /** getOrSet calls answered by another call's in-flight load instead of their own loader. */
  coalesced: number
  /** Tags invalidated (invalidateTags) and prefixes removed (invalidatePrefix, clear). */
  invalidations: { tags: number; prefixes: number }
  /** L1 entries of this namespace evicted to make room (by the longest registered namespace that prefixes the key). */
  evictions: number
  /** Lookup latency of get and getOrSet (not the loader), by the tier that answered (L1 answers: one in 16 is timed and counted 16 times). */
  latency: { l1: HistogramSnapshot; l2: HistogramSnapshot }
}

/** Figures of the process rather than of a tier or namespace. */
export interface ProcessStats {
  /** Invalidation announcements published to / received from other processes (Redis pub/sub). */
  invalidationsSent: number
  invalidationsReceived: number
  /** Invalidation messages dropped because they failed validation (E_BAD_MESSAGE). */
  invalidationsRejected: number
  /** Times the whole L1 was emptied because announcements may have been lost (disconnect, gap). */
  l1Flushes: number
  /** Writes waiting in the write-behind queue (0 without writeBehind). */
  writeBehindDepth: number
  /** Values written by this process, their encoded (msgpack) bytes and the bytes stored after compression. */
  valuesWritten: number
  valueBytes: number
  storedBytes: number
  /** Corrupt or foreign write-behind log records found when the log was opened or replayed. */
  walCorruptions: number
  /** Records moved to the write-behind dead-letter file (Redis refused them for good), and that file's size in bytes. */
  deadLetters: number
  deadLetterBytes: number
}

export interface CacheStats {
  l1: TierStats
  l2: TierStats
  /** The L2 circuit breaker: 'closed' (normal), 'open' (failing fast), 'half-open' (probing). */
  circuit: 'closed' | 'open' | 'half-open'
  /** Every namespace any thread of this process has used, by full name. */
  namespaces: Record<string, NamespaceStats>
  process: ProcessStats
}

const CIRCUIT = ['closed', 'open', 'half-open'] as const

export const enum Field {
  Hits = 0,
  Misses = 1,
  Sets = 2,
  Deletes = 3,
  Errors = 4,
  Evictions = 5,
}
const TIER_COUNTERS = 6
const TIER_FIELDS = TIER_COUNTERS + HISTOGRAM_FIELDS

export const enum ProcField {
  InvalidationsSent = 0,
  InvalidationsReceived = 1,
  L1Flushes = 2,
  WriteBehindDepth = 3,
  ValuesWritten = 4,
  ValueBytes = 5,
  StoredBytes = 6,
  InvalidationsRejected = 7,
  WalCorruptions = 8,
  DeadLetters = 9,
  DeadLetterBytes = 10,
}
const PROC_FIELDS = 11

export const enum NsField {
  L1Hits = 0,
  L2Hits = 1,
  L1Misses = 2,
  L2Misses = 3,
  Sets = 4,
  Deletes = 5,
  Expirations = 6,
  Errors = 7,
  Loads = 8,
  Coalesced = 9,
  TagInvalidations = 10,
  PrefixInvalidations = 11,
  Evictions = 12,
}
const NS_COUNTERS = 13
const NS_FIELDS = NS_COUNTERS + 2 * HISTOGRAM_FIELDS

/** Namespace blocks per row; the last one collects every namespace past the others. */
export const MAX_NAMESPACES = 32
export const OTHER_NAMESPACE = '(other)'
const NAME_BYTES = 256
/** Thread rows; threads past the last share it (their increments may then race). */
export const MAX_THREAD_ROWS = 64
const ROW = 2 * TIER_FIELDS + PROC_FIELDS + MAX_NAMESPACES * NS_FIELDS
const PROC_BASE = 2 * TIER_FIELDS
const NS_BASE = PROC_BASE + PROC_FIELDS
// Header: Int32 words rows claimed, circuit, namespace lock, namespaces registered;
// then the Float64 time the namespace lock was taken.
const HEADER = 24
const NAMES_BASE = HEADER
const ROWS_BASE = NAMES_BASE + MAX_NAMESPACES * NAME_BYTES
/** Bytes of the SharedArrayBuffer behind a StatsBlock. */
export const STATS_BYTES = ROWS_BASE + MAX_THREAD_ROWS * ROW * 8
const WINDOW = 4096

/** One thread's counters, latency window and histogram for one tier. */
export class Meter {
  private readonly samples = new Float64Array(WINDOW)
  private count = 0
  private readonly hist: Histogram

  constructor(
    private readonly row: Float64Array,
    private readonly base: number,
    readonly enabled: boolean,
    /** Weight of one timed sample in the histogram (the L1 times one lookup in 16). */
    private readonly weight: number,
  ) {
    this.hist = new Histogram(row, base + TIER_COUNTERS)
  }

  add(f: Field, n = 1): void {
    this.row[this.base + f]! += n
  }

  /** Records a round trip that started at `start` (performance.now()). */
  time(start: number): void {
    const ms = performance.now() - start
    this.samples[this.count++ % WINDOW] = ms
    this.hist.observe(ms, this.weight)
  }

  latency(): TierStats['latency'] {
    const n = Math.min(this.count, WINDOW)
    const sorted = this.samples.slice(0, n).sort()
    const at = (q: number) => (n === 0 ? 0 : (sorted[Math.min(n - 1, Math.floor(q * n))] as number))
    return { p50: round(at(0.5)), p99: round(at(0.99)), samples: this.count }
  }
}

/** This thread's counters for one namespace. */
export class NamespaceMeter {
  private readonly l1Hist: Histogram
  private readonly l2Hist: Histogram
  private ops = 0

  constructor(
    private readonly row: Float64Array,
    private readonly base: number,
  ) {
    this.l1Hist = new Histogram(row, base + NS_COUNTERS)
    this.l2Hist = new Histogram(row, base + NS_COUNTERS + HISTOGRAM_FIELDS)
  }

  add(f: NsField, n = 1): void {
    this.row[this.base + f]! += n
  }

  /** performance.now() for one L1 lookup in 16, else 0 (no timing). */
  sampleStart(): number {
    return (++this.ops & 15) === 0 ? performance.now() : 0
  }

  /** A lookup answered by `fromL1 ? L1 : L2`; `start` 0 = not timed; L1 samples weigh 16. */
  lookup(fromL1: boolean, found: boolean, start: number): void {
    this.row[this.base + (fromL1 ? (found ? NsField.L1Hits : NsField.L1Misses) : found ? NsField.L2Hits : NsField.L2Misses)]! += 1
    if (start !== 0) {
      if (fromL1) this.l1Hist.observe(performance.now() - start, 16)
      else this.l2Hist.observe(performance.now() - start, 1)
    }
  }
}

/** This thread's process figures (the owner thread is their only writer). */
export class ProcessMeter {
  constructor(private readonly row: Float64Array) {}

  add(f: ProcField, n = 1): void {
    this.row[PROC_BASE + f]! += n
  }

  set(f: ProcField, v: number): void {
    this.row[PROC_BASE + f] = v
  }
}

export class StatsBlock {
  readonly sab: SharedArrayBuffer
  private readonly rows: Float64Array
  private readonly head: Int32Array
  private readonly names: Uint8Array
  private readonly mine: Float64Array
  private readonly nsMeters = new Map<string, NamespaceMeter>()
  readonly l1: Meter
  readonly l2: Meter
  readonly process: ProcessMeter

  constructor(sab: SharedArrayBuffer | undefined, enabled: { l1: boolean; l2: boolean }) {
    this.sab = sab ?? new SharedArrayBuffer(STATS_BYTES)
    if (this.sab.byteLength !== STATS_BYTES) throw new RangeError(`stats buffer of ${this.sab.byteLength} bytes; this version needs ${STATS_BYTES}`)
    this.head = new Int32Array(this.sab, 0, 4)
    this.names = new Uint8Array(this.sab, NAMES_BASE, MAX_NAMESPACES * NAME_BYTES)
    this.rows = new Float64Array(this.sab, ROWS_BASE)
    const row = Math.min(MAX_THREAD_ROWS - 1, Atomics.add(this.head, 0, 1))
    this.mine = this.rows.subarray(row * ROW, (row + 1) * ROW)
    this.l1 = new Meter(this.mine, 0, enabled.l1, 16)
    this.l2 = new Meter(this.mine, TIER_FIELDS, enabled.l2, 1)
    this.process = new ProcessMeter(this.mine)
  }

  /** This thread's meter for namespace `name` (registered in the buffer on first use by any thread). */
  namespace(name: string): NamespaceMeter {
    let m = this.nsMeters.get(name)
    if (!m) {
      m = new NamespaceMeter(this.mine, NS_BASE + this.register(name) * NS_FIELDS)
      this.nsMeters.set(name, m)
    }
    return m
  }

  /** This thread's copy of the registered names (the table only grows, so a copy only needs extending). */
  private readonly known: string[] = []

  /** The registered names, in block order, decoding only the ones this thread has not seen yet. */
  private registered(): string[] {
    const count = Math.min(MAX_NAMESPACES - 1, Atomics.load(this.head, 3))
    while (this.known.length < count) this.known.push(this.nameAt(this.known.length))
    return this.known
  }

  /** Counts an L1 eviction against the namespace of `key` (the longest registered one that prefixes it). */
  evicted(key: string): void {
    const names = this.registered()
    let best = -1
    let bestLen = -1
    for (let i = 0; i < names.length; i++) {
      const n = names[i] as string
      if (n.length > bestLen && key.length > n.length && key.charCodeAt(n.length) === 58 && key.startsWith(n)) {
        best = i
        bestLen = n.length
      }
    }
    // Keys of namespaces past the table's size (and internal keys) go to the overflow block.
    const block = best >= 0 ? best : MAX_NAMESPACES - 1
    this.mine[NS_BASE + block * NS_FIELDS + NsField.Evictions]! += 1
  }

  private nameAt(i: number): string {
    const at = i * NAME_BYTES
    const len = (this.names[at] as number) | ((this.names[at + 1] as number) << 8)
    return Buffer.from(this.names.slice(at + 2, at + 2 + len)).toString('utf8')
  }

  private register(name: string): number {
    const bytes = Buffer.from(name, 'utf8')
    if (bytes.length > NAME_BYTES - 2) return MAX_NAMESPACES - 1
    const known = this.registered().indexOf(name)
    if (known >= 0) return known
    // A short critical section: the name table only grows, under a lock. A name is
    // written before the count that makes it visible, so a stolen lock needs no repair.
    return withLock(this.head, 2, new Float64Array(this.sab, 16, 1), 0, 1000, () => {}, () => {
      const again = this.registered().indexOf(name)
      if (again >= 0) return again
      const count = Atomics.load(this.head, 3)
      if (count >= MAX_NAMESPACES - 1) return MAX_NAMESPACES - 1
      const at = count * NAME_BYTES
      this.names[at] = bytes.length & 0xff
      this.names[at + 1] = bytes.length >> 8
      this.names.set(bytes, at + 2)
      Atomics.store(this.head, 3, count + 1)
      return count
    })
  }

  /** Records the breaker's state where every thread's stats() can read it. */
  setCircuit(state: CacheStats['circuit']): void {
    Atomics.store(this.head, 1, CIRCUIT.indexOf(state))
  }

  snapshot(l1Usage: { entries: number; bytes: number; capacity: number } | undefined): CacheStats {
    const sum = new Float64Array(ROW)
    const used = Math.min(MAX_THREAD_ROWS, Atomics.load(this.head, 0))
    const names = this.registered()
    const nsCount = names.length
    // Only the blocks in use: tiers, process, registered namespaces and the overflow block.
    const spans: [number, number][] = [
      [0, NS_BASE + nsCount * NS_FIELDS],
      [NS_BASE + (MAX_NAMESPACES - 1) * NS_FIELDS, ROW],
    ]
    for (let r = 0; r < used; r++) {
      const off = r * ROW
      for (const [from, to] of spans) for (let f = from; f < to; f++) sum[f]! += this.rows[off + f] as number
    }
    const tier = (m: Meter, base: number, usage: { entries: number; bytes: number; capacity: number } | undefined): TierStats => ({
      enabled: m.enabled,
      hits: sum[base + Field.Hits] as number,
      misses: sum[base + Field.Misses] as number,
      sets: sum[base + Field.Sets] as number,
      deletes: sum[base + Field.Deletes] as number,
      errors: sum[base + Field.Errors] as number,
      evictions: sum[base + Field.Evictions] as number,
      entries: usage?.entries ?? 0,
      bytes: usage?.bytes ?? 0,
      capacity: usage?.capacity ?? 0,
      latency: m.latency(),
      histogram: readHistogram(sum, base + TIER_COUNTERS),
    })
    const namespaces: Record<string, NamespaceStats> = {}
    const block = (i: number): NamespaceStats => {
      const b = NS_BASE + i * NS_FIELDS
      const f = (x: NsField) => sum[b + x] as number
      return {
        hits: { l1: f(NsField.L1Hits), l2: f(NsField.L2Hits) },
        misses: { l1: f(NsField.L1Misses), l2: f(NsField.L2Misses) },
        sets: f(NsField.Sets),
        deletes: f(NsField.Deletes),
        expirations: f(NsField.Expirations),
        errors: f(NsField.Errors),
        loads: f(NsField.Loads),
        coalesced: f(NsField.Coalesced),
        invalidations: { tags: f(NsField.TagInvalidations), prefixes: f(NsField.PrefixInvalidations) },
        evictions: f(NsField.Evictions),
        latency: { l1: readHistogram(sum, b + NS_COUNTERS), l2: readHistogram(sum, b + NS_COUNTERS + HISTOGRAM_FIELDS) },
      }
    }
    names.forEach((name, i) => (namespaces[name] = block(i)))
    const otherBase = NS_BASE + (MAX_NAMESPACES - 1) * NS_FIELDS
    if (nsCount >= MAX_NAMESPACES - 1 || sum.subarray(otherBase, otherBase + NS_FIELDS).some((v) => v !== 0)) namespaces[OTHER_NAMESPACE] = block(MAX_NAMESPACES - 1)
    const p = (x: ProcField) => sum[PROC_BASE + x] as number
    return {
      l1: tier(this.l1, 0, l1Usage),
      l2: tier(this.l2, TIER_FIELDS, undefined),
      circuit: CIRCUIT[Atomics.load(this.head, 1)] ?? 'closed',
      namespaces,
      process: {
        invalidationsSent: p(ProcField.InvalidationsSent),
        invalidationsReceived: p(ProcField.InvalidationsReceived),
        invalidationsRejected: p(ProcField.InvalidationsRejected),
        l1Flushes: p(ProcField.L1Flushes),
        writeBehindDepth: p(ProcField.WriteBehindDepth),
        valuesWritten: p(ProcField.ValuesWritten),
        valueBytes: p(ProcField.ValueBytes),
        storedBytes: p(ProcField.StoredBytes),
        walCorruptions: p(ProcField.WalCorruptions),
        deadLetters: p(ProcField.DeadLetters),
        deadLetterBytes: p(ProcField.DeadLetterBytes),
      },
    }
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000
}

/** A namespace's figures, all zero. */
export function emptyNamespaceStats(): NamespaceStats {
  return {
    hits: { l1: 0, l2: 0 },
    misses: { l1: 0, l2: 0 },
    sets: 0,
    deletes: 0,
    expirations: 0,
    errors: 0,
    loads: 0,
    coalesced: 0,
    invalidations: { tags: 0, prefixes: 0 },
    evictions: 0,
    latency: { l1: emptyHistogram(), l2: emptyHistogram() },
  }
}

/** A snapshot with every figure zero and both tiers disabled (what a parse of no series starts from). */
export function emptyStats(): CacheStats {
  const tier = (): TierStats => ({
    enabled: false,
    hits: 0,
    misses: 0,
    sets: 0,
    deletes: 0,
    errors: 0,
    evictions: 0,
    entries: 0,
    bytes: 0,
    capacity: 0,
    latency: { p50: 0, p99: 0, samples: 0 },
    histogram: emptyHistogram(),
  })
  const process: ProcessStats = { invalidationsSent: 0, invalidationsReceived: 0, invalidationsRejected: 0, l1Flushes: 0, writeBehindDepth: 0, valuesWritten: 0, valueBytes: 0, storedBytes: 0, walCorruptions: 0, deadLetters: 0, deadLetterBytes: 0 }
  return { l1: tier(), l2: tier(), circuit: 'closed', namespaces: {}, process }
}
