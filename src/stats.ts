/** Figures for one tier. Latencies are over the most recent 4096 operations, in milliseconds. */
export interface TierStats {
  enabled: boolean
  hits: number
  misses: number
  sets: number
  deletes: number
  errors: number
  latency: { p50: number; p99: number; samples: number }
}

export interface CacheStats {
  l1: TierStats
  l2: TierStats
}

const WINDOW = 4096

export class TierCounters {
  hits = 0
  misses = 0
  sets = 0
  deletes = 0
  errors = 0
  private readonly samples = new Float64Array(WINDOW)
  private count = 0

  constructor(readonly enabled: boolean) {}

  /** Records one tier round trip that started at `start` (performance.now()). */
  time(start: number): void {
    this.samples[this.count++ % WINDOW] = performance.now() - start
  }

  snapshot(): TierStats {
    const n = Math.min(this.count, WINDOW)
    const sorted = this.samples.slice(0, n).sort()
    const at = (q: number) => (n === 0 ? 0 : (sorted[Math.min(n - 1, Math.floor(q * n))] as number))
    return {
      enabled: this.enabled,
      hits: this.hits,
      misses: this.misses,
      sets: this.sets,
      deletes: this.deletes,
      errors: this.errors,
      latency: { p50: round(at(0.5)), p99: round(at(0.99)), samples: this.count },
    }
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000
}
