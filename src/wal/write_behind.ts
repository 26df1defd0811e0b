/**
 * Durable write-behind: a write is acknowledged once it is in a local write-ahead
 * log (see wal.ts; what each fsync policy guarantees: wal_group_commit.ts), then
 * flushed to its destination (Redis, through `flush`) in the background, in
 * batches, in order, retried with backoff until it succeeds.
 *
 * Guarantees
 *   - Nothing acknowledged is dropped silently: a batch that fails is retried
 *     (exponential backoff with jitter) until `flush` succeeds; writes not yet
 *     flushed when the process dies are replayed from the log on the next `open`,
 *     before it resolves. The exception is a write the destination refuses for good
 *     (`isPermanent`, by default a Redis reply error: see flush_retry.ts): after
 *     `maxAttempts` it moves to the dead-letter file (dead_letter.ts) and an
 *     E_L2_ERROR `DeadLetterError` is reported, so it never blocks the writes behind
 *     it, `close()` and the next `open`.
 *   - Replay takes only the keys `accept` allows (the cache's namespace); records of
 *     other keys found in the log go to the dead-letter file (E_CORRUPT_ENTRY).
 *   - At least once: a batch is acknowledged in the log only after `flush`
 *     resolved, so a crash (or a `close` timeout) between the two flushes it again.
 *     Flushing `SET`s twice in order is harmless.
 *   - Order: batches are flushed one at a time in the order the writes were
 *     acknowledged. Within a batch only the last write of each key is kept
 *     (coalescing), so the writes of one key reach `flush` in order.
 *   - TTLs count from the enqueue: a write that waited in the queue (or in the log,
 *     across a restart) is flushed with its `px` shortened by the time it waited,
 *     down to 1 ms (so an expired write still replaces the older value, which then
 *     expires at once).
 *   - Bounded: `maxQueue` caps the writes enqueued and not yet flushed; past it
 *     `enqueue` rejects with `QueueFullError` (E_QUEUE_FULL) and writes nothing.
 *   - `flush` receives fresh arrays it may keep; the `bytes` it receives are the
 *     caller's Buffers (or views into the log, after a restart): do not modify a
 *     Buffer after enqueueing it.
 * Parts: options (write_behind_options.ts), the queue and coalescing
 * (write_behind_queue.ts), retries (flush_retry.ts), dead letters (dead_letter.ts),
 * the loop's waits (write_behind_wait.ts).
 */
import { CacheClosedError, InvalidOptionError, QueueFullError } from '../errors.js'
import type { WalCorruptionError } from '../errors.js'
import type { TierWrite } from '../tiers/tier.js'
import { DeadLetterFile, giveUp } from './dead_letter.js'
import type { GiveUpContext } from './dead_letter.js'
import { isPermanentFailure } from './flush_retry.js'
import { WriteAheadLog } from './wal.js'
import { flushBatch } from './write_behind_flush.js'
import { checkWriteBehindOptions } from './write_behind_options.js'
import type { WriteBehindOptions, WriteBehindSettings } from './write_behind_options.js'
import { WriteQueue } from './write_behind_queue.js'
import { replayLog } from './write_behind_replay.js'
import { LoopWait } from './write_behind_wait.js'

export type { WriteBehindOptions } from './write_behind_options.js'

export interface WriteBehindStats {
  /** Writes enqueued (or replayed) and not yet flushed. */
  depth: number
  /** Writes retired by successful flushes, coalesced ones included. */
  flushed: number
  /** Writes dropped from a batch because a later write of the same key was in it. */
  coalesced: number
  /** Successful `flush` calls. */
  batches: number
  /** Failed `flush` attempts (each was retried). */
  retries: number
  /** Writes replayed from the log at open. */
  replayed: number
  /** Damage reports from the log's replay (see wal_replay.ts). */
  walCorruptions: number
  /** Bytes of a torn last record cut off the log at open. */
  tornTailBytes: number
  /** Writes given up on (refused for good, or of another namespace on replay), kept in the dead-letter file or dropped. */
  deadLetters: number
  /** Of those, dropped because the dead-letter file was full (or could not be written). */
  deadLettersDropped: number
  /** Size of the dead-letter file in bytes. */
  deadLetterBytes: number
  lastError: Error | undefined
}

const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)))

export class WriteBehind {
  readonly #wal: WriteAheadLog
  readonly #flush: (writes: TierWrite[]) => Promise<void>
  readonly #settings: WriteBehindSettings
  readonly #onError: ((err: Error) => void) | undefined
  readonly #stats = { flushed: 0, coalesced: 0, batches: 0, retries: 0, replayed: 0, walCorruptions: 0, deadLetters: 0, deadLettersDropped: 0, lastError: undefined as Error | undefined }
  readonly #dead: DeadLetterFile
  readonly #giveUp: GiveUpContext
  readonly #isPermanent: (err: unknown) => boolean
  readonly #queue: WriteQueue
  readonly #wait = new LoopWait(() => this.#urgent())
  #closing = false
  /** The loop stops; what is not flushed stays in the log. */
  #stopped = false
  #closed: Promise<void> | undefined

  private constructor(wal: WriteAheadLog, dead: DeadLetterFile, o: WriteBehindOptions, settings: WriteBehindSettings) {
    this.#wal = wal
    this.#dead = dead
    this.#settings = settings
    this.#isPermanent = o.isPermanent ?? isPermanentFailure
    this.#giveUp = { dead, logDir: wal.dir, maxAttempts: settings.maxAttempts, stats: this.#stats, onDeadLetters: o.onDeadLetters }
    this.#flush = o.flush
    this.#onError = o.onError
    this.#queue = new WriteQueue(o.onDepth)
    void this.#run().catch((err: unknown) => this.#error(asError(err)))
  }

  /**
   * Opens the log in `opts.dir`, flushes every write it holds that was not flushed
   * before (in order, with retries), then resolves: new writes come after them.
   */
  static async open(opts: WriteBehindOptions): Promise<WriteBehind> {
    const settings = checkWriteBehindOptions(opts)
    const fsync = settings.fsync
    opts.signal?.throwIfAborted()

    let wb: WriteBehind | undefined
    const onCorruption = (err: WalCorruptionError): void => {
      if (!wb) return process.emitWarning(err) // (replay runs after construction; never reached)
      wb.#stats.walCorruptions++
      opts.onCorruption?.(err)
      if (opts.onError) wb.#error(err)
      else process.emitWarning(err)
    }
    const wal = await WriteAheadLog.open(opts.dir, { fsync, segmentBytes: opts.segmentBytes, onCorruption })
    let dead: DeadLetterFile
    try {
      dead = await DeadLetterFile.open(wal.dir, settings.maxDeadLetterBytes, fsync !== 'none')
    } catch (err) {
      await wal.close()
      throw err
    }
    const self = (wb = new WriteBehind(wal, dead, opts, settings))
    if (dead.size > 0) opts.onDeadLetters?.([], dead.size)
    const requeued = (n: number): void => {
      self.#stats.replayed += n
      self.#poke()
    }
    try {
      const target = { queue: self.#queue, maxQueue: settings.maxQueue, giveUp: self.#giveUp, report: (err: Error) => self.#error(err), requeued, drain: () => self.drain() }
      await replayLog(wal, target, opts.accept, opts.signal)
    } catch (err) {
      await self.close({ timeoutMs: 0 }).catch(() => {})
      throw err
    }
    return self
  }

  /** Writes enqueued (or replayed) and not yet flushed, including those still being appended to the log. */
  get depth(): number {
    return this.#queue.depth
  }

  stats(): WriteBehindStats {
    return { depth: this.#queue.depth, ...this.#stats, tornTailBytes: this.#wal.recovery.tornTailBytes, deadLetterBytes: this.#dead.size }
  }

  /** The log underneath (for inspection: `recovery`, `corruptions`, `segmentFiles`). */
  get wal(): WriteAheadLog {
    return this.#wal
  }

  /**
   * Appends the writes to the log as one record and queues them for flushing.
   * Resolves once they are acknowledged (durable per the fsync policy). Rejects
   * with QueueFullError, before writing anything, when the queue cannot take them.
   */
  async enqueue(writes: TierWrite[]): Promise<void> {
    if (this.#closing) throw new CacheClosedError()
    if (!Array.isArray(writes)) throw new InvalidOptionError('enqueue takes an array of { key, bytes, px } writes.')
    if (writes.length === 0) return
    const depth = this.#queue.depth
    const maxQueue = this.#settings.maxQueue
    if (depth + writes.length > maxQueue) {
      const last = this.#stats.lastError ? ` Last flush error: ${this.#stats.lastError.message}` : ''
      throw new QueueFullError(
        `The write-behind queue is full: ${depth} writes are waiting to be flushed and ${writes.length} more would exceed maxQueue (${maxQueue}). ` +
          `Nothing was written. Raise maxQueue or slow down writes (the flush target is not keeping up).${last}`,
      )
    }
    // In the queue before the append, so queue order is log order (the log numbers records in call order).
    const entry = this.#queue.push(writes.map((w) => ({ key: w?.key, bytes: w?.bytes, px: w?.px })), Date.now(), undefined)
    let seq: number
    try {
      seq = await this.#wal.append(entry.writes)
    } catch (err) {
      this.#queue.remove(entry)
      throw err
    }
    this.#queue.markReady(entry, seq)
    this.#poke()
  }

  /** Resolves when every write enqueued so far (and every write being enqueued) is flushed. */
  drain(): Promise<void> {
    if (!this.#queue.head) return Promise.resolve()
    if (this.#stopped) return Promise.reject(new CacheClosedError())
    const flushed = this.#queue.whenFlushed() as Promise<void>
    // Someone waits: the loop must keep the process alive, and need not wait for batches to fill.
    this.#wait.ref()
    this.#wait.wake()
    return flushed
  }

  /**
   * Stops taking writes, flushes what is queued, closes the log. With `timeoutMs`,
   * gives up flushing after that long: the rest stays in the log and is replayed by
   * the next `open` (a batch in flight then may be flushed twice).
   */
  close(options?: { timeoutMs?: number }): Promise<void> {
    this.#closed ??= this.#close(options?.timeoutMs)
    return this.#closed
  }

  async #close(timeoutMs: number | undefined): Promise<void> {
    this.#closing = true
    this.#wait.ref()
    const drained = this.drain()
    if (timeoutMs === undefined || timeoutMs === Infinity) {
      await drained
    } else {
      let timer: NodeJS.Timeout | undefined
      const done = await Promise.race([drained.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), Math.max(0, timeoutMs))))])
      clearTimeout(timer)
      if (!done) drained.catch(() => {})
    }
    this.#stopped = true
    this.#wait.wake()
    this.#wait.cancelBackoff()
    this.#queue.rejectWaiters(() => new CacheClosedError())
    try {
      await this.#wal.close()
    } finally {
      await this.#dead.close()
    }
  }

  // ------------------------------------------------------------ the loop

  #error(err: Error): void {
    this.#stats.lastError = err
    try {
      this.#onError?.(err)
    } catch {
      // A throwing listener must not stop the loop.
    }
  }

  /** New ready writes: wake the loop if it is idle or a full batch is there. */
  #poke(): void {
    if (this.#wait.idleForever || this.#queue.ready >= this.#settings.batchSize) this.#wait.wake()
  }

  #urgent(): boolean {
    return this.#queue.awaited || this.#closing
  }

  async #run(): Promise<void> {
    const { batchSize, intervalMs } = this.#settings
    while (!this.#stopped) {
      const head = this.#queue.head
      if (!head?.ready) {
        await this.#wait.idle(Infinity)
        continue
      }
      if (this.#queue.ready < batchSize && !this.#urgent()) {
        const wait = head.readyAt + intervalMs - performance.now()
        if (wait > 0) {
          await this.#wait.idle(wait)
          continue
        }
      }
      await this.#flushBatch()
    }
  }

  /** Flushes up to batchSize ready writes from the head of the queue (retrying until it works or close gives up). */
  async #flushBatch(): Promise<void> {
    const { batchSize, baseMs, maxMs, maxAttempts } = this.#settings
    const batch = this.#queue.take(batchSize)
    const gaveUp = await flushBatch(batch, {
      flush: this.#flush,
      isPermanent: this.#isPermanent,
      maxAttempts,
      baseMs,
      maxMs,
      backoff: (ms) => this.#wait.backoff(ms),
      stopped: () => this.#stopped,
      onFailure: (err) => {
        this.#stats.retries++
        this.#error(asError(err))
      },
    })
    if (gaveUp === 'stopped') return
    // Refused for good: to the dead-letter file, one report per log record.
    for (const [e, g] of gaveUp) this.#error(await giveUp(this.#giveUp, g.writes, e.seq, e.time, 'rejected', asError(g.err).message, g.err))

    this.#stats.batches++
    this.#stats.flushed += batch.taken.length
    this.#stats.coalesced += batch.taken.length - batch.kept.length
    const ackSeq = this.#queue.retire(batch)
    if (ackSeq > 0) this.#wal.ack(ackSeq).catch((err: unknown) => this.#error(asError(err)))
  }
}
