/**
 * Latency histograms kept as plain Float64 fields inside a stats row: one count
 * per bucket (not cumulative) and the sum of observed milliseconds. Summing rows
 * of several threads gives the process histogram, as Prometheus expects.
 */

/** Upper bounds of the buckets in ms; a last bucket (+Inf) follows. */
export const HISTOGRAM_BOUNDS_MS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000]
const BUCKETS = HISTOGRAM_BOUNDS_MS.length + 1
/** Fields a histogram takes in a row: the buckets, then the sum. */
export const HISTOGRAM_FIELDS = BUCKETS + 1

export interface HistogramSnapshot {
  /** Upper bounds in ms (the last bucket, +Inf, is implied). */
  bounds: readonly number[]
  /** Observations per bucket, not cumulative; one more entry than bounds. */
  counts: number[]
  count: number
  /** Sum of the observed ms. */
  sumMs: number
}

export function emptyHistogram(): HistogramSnapshot {
  return { bounds: [], counts: [0], count: 0, sumMs: 0 }
}

export class Histogram {
  constructor(
    private readonly row: Float64Array,
    private readonly base: number,
  ) {}

  observe(ms: number, weight: number): void {
    let i = 0
    while (i < HISTOGRAM_BOUNDS_MS.length && ms > (HISTOGRAM_BOUNDS_MS[i] as number)) i++
    this.row[this.base + i]! += weight
    this.row[this.base + BUCKETS]! += ms * weight
  }
}

export function readHistogram(sum: Float64Array, base: number): HistogramSnapshot {
  const counts = Array.from(sum.subarray(base, base + BUCKETS))
  return { bounds: HISTOGRAM_BOUNDS_MS, counts, count: counts.reduce((a, b) => a + b, 0), sumMs: sum[base + BUCKETS] as number }
}

/** The q-quantile (0..1) estimated from a histogram, in ms (linear within a bucket); undefined when empty. */
export function histogramQuantile(h: HistogramSnapshot, q: number): number | undefined {
  if (h.count === 0) return undefined
  const rank = q * h.count
  let seen = 0
  for (let i = 0; i < h.counts.length; i++) {
    const c = h.counts[i] as number
    if (seen + c >= rank && c > 0) {
      const lo = i === 0 ? 0 : (h.bounds[i - 1] as number)
      const hi = i < h.bounds.length ? (h.bounds[i] as number) : lo
      return lo + (hi - lo) * ((rank - seen) / c)
    }
    seen += c
  }
  return h.bounds[h.bounds.length - 1]
}
