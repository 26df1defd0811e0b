import { Field } from '../observability/stats.js'
import type { Meter } from '../observability/stats.js'
import type { L2Policy } from './failure_policy.js'

interface Waiter {
  resolve(v: Buffer | null): void
  reject(e: unknown): void
  /** Another caller of the same key in this flush. */
  next: Waiter | undefined
}

/** One command's worth of a flush: the key indexes it reads and how (one value or nil per key, in order). */
export interface ReadBatch {
  idx: number[]
  read(keys: string[]): Promise<(Buffer | null)[]>
}

/** Splits a flush's distinct keys into batches. */
export type BatchPlanner = (keys: readonly string[]) => ReadBatch[]

/**
 * Coalesces the single-key reads issued in one tick. The flush runs on
 * process.nextTick, after the current synchronous code and the microtasks already
 * queued, so `Promise.all(keys.map(get))` becomes a few commands (the planner says
 * which: per-slot MGETs, one MGET on a standalone server, one script per Cluster
 * master). A key asked for twice in one flush is read once and answers every caller.
 *
 * Each batch runs once under the L2 failure policy: one breaker admission, one gate
 * slot, one deadline, one latency sample, and a failed batch is one failure (every
 * caller of it rejects with the same CacheError). Callers' promises resolve straight
 * from the batch's reply. Hits and misses are counted per caller.
 */
export class GetBatcher {
  private keys: string[] = []
  private waiters: Waiter[] = []
  private index = new Map<string, number>()
  private scheduled = false

  constructor(
    private readonly policy: L2Policy,
    private readonly meter: Meter,
    private readonly plan: BatchPlanner,
  ) {}

  get(key: string): Promise<Buffer | null> {
    return new Promise((resolve, reject) => {
      const i = this.index.get(key)
      if (i !== undefined) {
        this.waiters[i] = { resolve, reject, next: this.waiters[i] }
        return
      }
      this.index.set(key, this.keys.length)
      this.keys.push(key)
      this.waiters.push({ resolve, reject, next: undefined })
      if (!this.scheduled) {
        this.scheduled = true
        process.nextTick(() => this.flush())
      }
    })
  }

  private flush(): void {
    const keys = this.keys
    const waiters = this.waiters
    this.keys = []
    this.waiters = []
    this.index = new Map()
    this.scheduled = false
    let batches: ReadBatch[]
    try {
      batches = this.plan(keys)
    } catch (err) {
      for (const w of waiters) for (let x: Waiter | undefined = w; x; x = x.next) x.reject(err)
      return
    }
    // Each batch answers its own callers as soon as its reply is in (no waiting on the slowest node).
    for (const b of batches) {
      const part = b.idx.map((i) => keys[i] as string)
      this.policy.run('get', () => b.read(part)).then(
        (values) => {
          let hits = 0
          let misses = 0
          for (let j = 0; j < b.idx.length; j++) {
            const v = values[j] ?? null
            const first = waiters[b.idx[j] as number] as Waiter
            if (v === null) misses++
            else hits++
            first.resolve(v)
            // Other callers of the key get their own bytes: no layer above may see another's buffer change.
            for (let x = first.next; x; x = x.next) {
              if (v === null) misses++
              else hits++
              x.resolve(v === null ? null : Buffer.from(v))
            }
          }
          if (hits > 0) this.meter.add(Field.Hits, hits)
          if (misses > 0) this.meter.add(Field.Misses, misses)
        },
        (err: unknown) => {
          for (const i of b.idx) for (let x: Waiter | undefined = waiters[i]; x; x = x.next) x.reject(err)
        },
      )
    }
  }
}
