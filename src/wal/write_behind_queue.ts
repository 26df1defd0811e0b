/**
 * Write-behind's queue: the batches enqueued (or replayed) and not yet flushed, in
 * enqueue order, which is log order. A batch becomes ready (may be flushed) once
 * its record is in the log; batches become ready in queue order, because the log
 * resolves appends in the order they were made. Flushing takes up to `batchSize`
 * ready writes from the head, possibly part of a batch, and keeps only the last
 * write of each key (coalescing). `whenFlushed` waits for everything queued so far.
 */
import type { TierWrite } from '../tiers/tier.js'

export interface Entry {
  /** Enqueue order; drain() waits on it. */
  id: number
  seq: number
  /** Enqueue time, ms since the epoch (for TTLs). */
  time: number
  writes: TierWrite[]
  /** Writes of this entry already flushed. */
  done: number
  /** In the log (acknowledged): may be flushed. */
  ready: boolean
  /** performance.now() when it became ready. */
  readyAt: number
}

/** A write taken for a flush, with when it was enqueued. */
export interface Taken {
  w: TierWrite
  time: number
}

/** Writes taken from the head of the queue for one flush. */
export interface Batch {
  /** The entries the writes came from, and up to where each is flushed with this batch. */
  parts: { e: Entry; to: number }[]
  taken: Taken[]
  /** `taken` less the writes a later write of the same key in the batch replaces. */
  kept: Taken[]
}

interface DrainWaiter {
  id: number
  resolve(): void
  reject(err: unknown): void
}

export class WriteQueue {
  /** The queue: entries[head..] in enqueue (= log) order. */
  #entries: Entry[] = []
  #head = 0
  #nextId = 1
  #depth = 0
  /** Writes in the log and not yet flushed (the head of the queue). */
  #ready = 0
  #drains: DrainWaiter[] = []

  /** `onDepth` is told the depth whenever it changes. */
  constructor(private readonly onDepth: ((depth: number) => void) | undefined) {}

  /** Writes enqueued (or replayed) and not yet flushed, including those still being appended to the log. */
  get depth(): number {
    return this.#depth
  }

  /** Writes ready to be flushed. */
  get ready(): number {
    return this.#ready
  }

  /** Someone waits in `whenFlushed`. */
  get awaited(): boolean {
    return this.#drains.length > 0
  }

  /** The oldest entry not flushed yet. */
  get head(): Entry | undefined {
    return this.#head < this.#entries.length ? (this.#entries[this.#head] as Entry) : undefined
  }

  /** Queues writes: ready at once (replayed from the log, `seq` known), or once `markReady` is told their seq. */
  push(writes: TierWrite[], time: number, ready: { seq: number } | undefined): Entry {
    const entry: Entry = { id: this.#nextId++, seq: ready?.seq ?? 0, time, writes, done: 0, ready: ready !== undefined, readyAt: ready ? performance.now() : 0 }
    this.#entries.push(entry)
    this.#addDepth(writes.length)
    if (ready) this.#ready += writes.length
    return entry
  }

  /** The entry is in the log as record `seq`: it may be flushed. */
  markReady(entry: Entry, seq: number): void {
    entry.seq = seq
    entry.ready = true
    entry.readyAt = performance.now()
    this.#ready += entry.writes.length
  }

  /** Takes back an entry whose append failed. */
  remove(entry: Entry): void {
    const i = this.#entries.indexOf(entry, this.#head)
    if (i >= 0) this.#entries.splice(i, 1)
    this.#addDepth(-entry.writes.length)
    this.#settleDrains()
  }

  /** Up to `batchSize` ready writes from the head of the queue, possibly part of an entry, coalesced. */
  take(batchSize: number): Batch {
    const parts: { e: Entry; to: number }[] = []
    const taken: Taken[] = []
    for (let i = this.#head; i < this.#entries.length && taken.length < batchSize; i++) {
      const e = this.#entries[i] as Entry
      if (!e.ready) break
      const to = Math.min(e.writes.length, e.done + batchSize - taken.length)
      for (let j = e.done; j < to; j++) taken.push({ w: e.writes[j] as TierWrite, time: e.time })
      parts.push({ e, to })
    }
    // Coalesce: the last write of each key wins, kept in its place.
    const lastOf = new Map<string, number>()
    taken.forEach((t, i) => lastOf.set(t.w.key, i))
    const kept = taken.filter((t, i) => lastOf.get(t.w.key) === i)
    return { parts, taken, kept }
  }

  /** The batch is flushed: drops it from the queue. Answers the seq the log may acknowledge up to (0 = none new). */
  retire(batch: Batch): number {
    this.#addDepth(-batch.taken.length)
    this.#ready -= batch.taken.length
    let ackSeq = 0
    for (const { e, to } of batch.parts) e.done = to
    while (this.#head < this.#entries.length) {
      const e = this.#entries[this.#head] as Entry
      if (!e.ready || e.done < e.writes.length) break
      ackSeq = e.seq
      this.#entries[this.#head++] = undefined as unknown as Entry
    }
    if (this.#head > 1024 && this.#head * 2 > this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head)
      this.#head = 0
    }
    this.#settleDrains()
    return ackSeq
  }

  /** Resolves once every entry queued so far is flushed; undefined when the queue is empty. */
  whenFlushed(): Promise<void> | undefined {
    const tail = this.#entries.length > this.#head ? this.#entries[this.#entries.length - 1] : undefined
    if (!tail) return undefined
    return new Promise<void>((resolve, reject) => {
      this.#drains.push({ id: tail.id, resolve, reject })
    })
  }

  /** Fails every `whenFlushed` waiting (the queue is stopping), each with an error of its own. */
  rejectWaiters(error: () => unknown): void {
    for (const d of this.#drains.splice(0)) d.reject(error())
  }

  #addDepth(n: number): void {
    this.#depth += n
    this.onDepth?.(this.#depth)
  }

  #settleDrains(): void {
    if (this.#drains.length === 0) return
    const headId = this.#head < this.#entries.length ? (this.#entries[this.#head] as Entry).id : Infinity
    const still: DrainWaiter[] = []
    for (const d of this.#drains) {
      if (d.id < headId) d.resolve()
      else still.push(d)
    }
    this.#drains = still
  }
}
