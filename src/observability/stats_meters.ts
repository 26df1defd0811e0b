import { Histogram, HISTOGRAM_FIELDS } from './stats_histogram.js'
import type { TierStats } from './stats_types.js'

// What one thread counts, and the meters it counts with. Each thread owns one row
// of Float64 counters in the stats buffer (see stats_layout.ts) and is its only
// writer: plain increments, no atomics. The field enums stay in this file with the
// meters so that the hot-path increments compile to constant offsets.

/** A tier's counters (all namespaces together); its latency histogram follows them. */
export const enum Field {
  Hits = 0,
  Misses = 1,
  Sets = 2,
  Deletes = 3,
  Errors = 4,
  Evictions = 5,
}
export const TIER_COUNTERS = 6
/** Fields of one tier's block: its counters, then its histogram. */
export const TIER_FIELDS = TIER_COUNTERS + HISTOGRAM_FIELDS

/** The process figures. */
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
  AuditDropped = 11,
}
export const PROC_FIELDS = 12

/** A namespace's counters; its L1 and L2 lookup histograms follow them. */
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
export const NS_COUNTERS = 13
/** Fields of one namespace's block: its counters, then the L1 and the L2 histogram. */
export const NS_FIELDS = NS_COUNTERS + 2 * HISTOGRAM_FIELDS
/** Where a namespace block's L1 and L2 lookup histograms start, from the block's start. */
export const NS_L1_HISTOGRAM = NS_COUNTERS
export const NS_L2_HISTOGRAM = NS_COUNTERS + HISTOGRAM_FIELDS

/** Latency samples a Meter keeps for its p50/p99 (this thread only). */
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
    this.l1Hist = new Histogram(row, base + NS_L1_HISTOGRAM)
    this.l2Hist = new Histogram(row, base + NS_L2_HISTOGRAM)
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
  constructor(
    private readonly row: Float64Array,
    private readonly base: number,
  ) {}

  add(f: ProcField, n = 1): void {
    this.row[this.base + f]! += n
  }

  set(f: ProcField, v: number): void {
    this.row[this.base + f] = v
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000
}
