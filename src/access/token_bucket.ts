/**
 * The principals' rate buckets, one 64-bit word each in a SharedArrayBuffer that
 * every thread of the process maps (it travels in `cache.handle`), so all threads
 * spend one budget.
 *
 * A token bucket of `burst` tokens refilled at `rate` per second is kept in its
 * equivalent one-number form (GCRA's "theoretical arrival time"): the word holds
 * the time, in microseconds of the cache's clock, at which the bucket will be full
 * again. Tokens available at time `now` = burst - (tat - now) / interval. One word
 * means one compare-exchange per call, no lock: a thread reads the word, computes
 * the new one, and retries when another thread changed it in between.
 */

const MICROS = 1000

export interface BucketRule {
  /** Microseconds per token (1e6 / rate). */
  intervalUs: number
  /** Microseconds of credit the bucket holds (burst * interval). */
  toleranceUs: number
  burst: number
}

export function bucketRule(rate: number, burst: number): BucketRule {
  const intervalUs = 1_000_000 / rate
  return { intervalUs, toleranceUs: burst * intervalUs, burst }
}

/**
 * GCRA's decision for one bucket: the new arrival time to store, or how long to
 * wait (ms, rounded up) before the same call would pass. Shared by the local
 * buckets and the tests; the Redis script (gcra.ts) is the same arithmetic in Lua.
 */
export function decide(tatUs: number, nowUs: number, cost: number, r: BucketRule): { next: number; waitMs: number } {
  if (cost > r.burst) return { next: tatUs, waitMs: Infinity }
  // A word far in the future cannot come from this arithmetic (a clock that jumped back): start afresh.
  const base = tatUs > nowUs + r.toleranceUs ? nowUs : Math.max(tatUs, nowUs)
  const next = base + cost * r.intervalUs
  const over = next - nowUs - r.toleranceUs
  // Half a microsecond of slack absorbs the rounding of the stored word.
  if (over > 0.5) return { next: tatUs, waitMs: Math.ceil(over / MICROS) }
  return { next, waitMs: 0 }
}

export class RateBuckets {
  readonly sab: SharedArrayBuffer
  private readonly words: BigInt64Array

  /** `sab`: the buffer of another thread's cache (from its handle); else a new one for `count` buckets. */
  constructor(count: number, sab?: SharedArrayBuffer) {
    this.sab = sab ?? new SharedArrayBuffer(Math.max(1, count) * 8)
    this.words = new BigInt64Array(this.sab)
    if (this.words.length < count) throw new RangeError(`The rate-limit buffer holds ${this.words.length} buckets; ${count} are declared.`)
  }

  /**
   * Spends `cost` tokens of bucket `slot` at time `nowMs` (the cache's clock): 0
   * when they were available (and are now spent), else the milliseconds to wait
   * (nothing spent). Infinity when `cost` exceeds the bucket.
   */
  take(slot: number, cost: number, nowMs: number, r: BucketRule): number {
    const nowUs = nowMs * MICROS
    for (;;) {
      const old = Atomics.load(this.words, slot)
      const { next, waitMs } = decide(Number(old), nowUs, cost, r)
      if (waitMs > 0) return waitMs
      if (Atomics.compareExchange(this.words, slot, old, BigInt(Math.round(next))) === old) return 0
    }
  }
}
