import type { Cluster, Redis } from 'ioredis'
import { slotBatches } from './slots.js'

interface Waiter {
  resolve(v: Buffer | null): void
  reject(e: unknown): void
}

/**
 * Coalesces the single-key reads issued in one tick into per-slot MGETs. The
 * flush runs on process.nextTick, after the current synchronous code and the
 * microtasks already queued, so `Promise.all(keys.map(get))` becomes one MGET
 * per slot (one in all on a standalone server).
 */
export class GetBatcher {
  private keys: string[] = []
  private waiters: Waiter[] = []
  private scheduled = false

  constructor(
    private readonly client: Redis | Cluster,
    private readonly cluster: boolean,
    /** Largest MGET sent at once; bigger batches are split so one reply stays small. */
    private readonly maxBatch: number,
  ) {}

  get(key: string): Promise<Buffer | null> {
    return new Promise((resolve, reject) => {
      this.keys.push(key)
      this.waiters.push({ resolve, reject })
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
    this.scheduled = false
    // MGET even for one key: unlike GET it answers nil for a key of another type.
    // Each batch answers its own waiters as soon as its reply is in (no waiting on the slowest node).
    for (const part of slotBatches(keys, this.cluster, this.maxBatch)) {
      this.client.mgetBuffer(part.map((i) => keys[i] as string)).then(
        (values) => {
          for (let j = 0; j < part.length; j++) (waiters[part[j] as number] as Waiter).resolve(values[j] ?? null)
        },
        (err) => {
          for (const i of part) (waiters[i] as Waiter).reject(err)
        },
      )
    }
  }
}
