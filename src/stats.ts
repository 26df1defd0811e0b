/**
 * Counters live in a small SharedArrayBuffer so that every thread attached to a
 * cache adds to the same figures: each thread claims a row of Float64 counters and
 * is its only writer (plain increments, no atomics); `stats()` sums the rows.
 * Latency windows are per thread.
 */
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
  /** Round-trip latency in ms over this thread's most recent 4096 samples. */
  latency: { p50: number; p99: number; samples: number }
}

export interface CacheStats {
  l1: TierStats
  l2: TierStats
  /** The L2 circuit breaker: 'closed' (normal), 'open' (failing fast), 'half-open' (probing). */
  circuit: 'closed' | 'open' | 'half-open'
}

const CIRCUIT = ['closed', 'open', 'half-open'] as const

const FIELDS = ['hits', 'misses', 'sets', 'deletes', 'errors', 'evictions'] as const
const PER_TIER = FIELDS.length
const ROW = PER_TIER * 2
const ROWS = 256
const WINDOW = 4096
/** Bytes of the SharedArrayBuffer behind a StatsBlock. */
export const STATS_BYTES = 8 + ROWS * ROW * 8

export const enum Field {
  Hits = 0,
  Misses = 1,
  Sets = 2,
  Deletes = 3,
  Errors = 4,
  Evictions = 5,
}

/** One thread's counters and latency window for one tier. */
export class Meter {
  private readonly samples = new Float64Array(WINDOW)
  private count = 0

  constructor(
    private readonly row: Float64Array,
    private readonly base: number,
    readonly enabled: boolean,
  ) {}

  add(f: Field, n = 1): void {
    this.row[this.base + f]! += n
  }

  /** Records a round trip that started at `start` (performance.now()). */
  time(start: number): void {
    this.samples[this.count++ % WINDOW] = performance.now() - start
  }

  latency(): TierStats['latency'] {
    const n = Math.min(this.count, WINDOW)
    const sorted = this.samples.slice(0, n).sort()
    const at = (q: number) => (n === 0 ? 0 : (sorted[Math.min(n - 1, Math.floor(q * n))] as number))
    return { p50: round(at(0.5)), p99: round(at(0.99)), samples: this.count }
  }
}

export class StatsBlock {
  readonly sab: SharedArrayBuffer
  private readonly rows: Float64Array
  readonly l1: Meter
  readonly l2: Meter

  constructor(sab: SharedArrayBuffer | undefined, enabled: { l1: boolean; l2: boolean }) {
    this.sab = sab ?? new SharedArrayBuffer(STATS_BYTES)
    this.rows = new Float64Array(this.sab, 8)
    // Threads past the 256th share the last row (their increments may then race).
    const row = Math.min(ROWS - 1, Atomics.add(new Int32Array(this.sab, 0, 2), 0, 1))
    const mine = this.rows.subarray(row * ROW, (row + 1) * ROW)
    this.l1 = new Meter(mine, 0, enabled.l1)
    this.l2 = new Meter(mine, PER_TIER, enabled.l2)
  }

  /** Records the breaker's state where every thread's stats() can read it. */
  setCircuit(state: CacheStats['circuit']): void {
    Atomics.store(new Int32Array(this.sab, 0, 2), 1, CIRCUIT.indexOf(state))
  }

  snapshot(l1Usage: { entries: number; bytes: number } | undefined): CacheStats {
    const sum = new Float64Array(ROW)
    for (let r = 0; r < ROWS; r++) for (let f = 0; f < ROW; f++) sum[f]! += this.rows[r * ROW + f] as number
    const tier = (m: Meter, base: number, usage: { entries: number; bytes: number } | undefined): TierStats => ({
      enabled: m.enabled,
      hits: sum[base + Field.Hits] as number,
      misses: sum[base + Field.Misses] as number,
      sets: sum[base + Field.Sets] as number,
      deletes: sum[base + Field.Deletes] as number,
      errors: sum[base + Field.Errors] as number,
      evictions: sum[base + Field.Evictions] as number,
      entries: usage?.entries ?? 0,
      bytes: usage?.bytes ?? 0,
      latency: m.latency(),
    })
    const circuit = CIRCUIT[Atomics.load(new Int32Array(this.sab, 0, 2), 1)] ?? 'closed'
    return { l1: tier(this.l1, 0, l1Usage), l2: tier(this.l2, PER_TIER, undefined), circuit }
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000
}
