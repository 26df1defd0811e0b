/**
 * Durable write-behind: a write is acknowledged once it is in a local write-ahead
 * log (see wal.ts for the format and what each fsync policy guarantees), then
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
 */
import { CacheClosedError, DeadLetterError, InvalidOptionError, QueueFullError } from '../errors.js'
import type { WalCorruptionError } from '../errors.js'
import type { TierWrite } from '../tiers/tier.js'
import { DeadLetterFile, DEFAULT_MAX_DEAD_LETTER_BYTES, someKeys } from './dead_letter.js'
import type { DeadLetterReason } from './dead_letter.js'
import { DEFAULT_MAX_ATTEMPTS, flushWithRetry, isPermanentFailure } from './flush_retry.js'
import { checkFsync } from './fsync.js'
import type { FsyncPolicy } from './fsync.js'
import { WriteAheadLog } from './wal.js'
import type { WalRecord } from './wal_record.js'

export interface WriteBehindOptions {
  /** Directory of the write-ahead log (created if missing). One process per directory. */
  dir: string
  /** When an acknowledged write is on disk: see wal.ts. Default 'batch' (group commit, durable on acknowledgement). */
  fsync?: FsyncPolicy
  /** Writes one batch to the destination; reject to have it retried. Never called concurrently. */
  flush: (writes: TierWrite[]) => Promise<void>
  /** Most writes per `flush` call. Default 500. */
  batchSize?: number
  /** Longest a write waits for a batch to fill before it is flushed anyway (ms). Default 50. */
  flushIntervalMs?: number
  /** Most writes enqueued and not yet flushed. Default 100 000. */
  maxQueue?: number
  /** Backoff between attempts of a failed batch: baseMs × 2^attempt, capped at maxMs, jittered to 50–100%. Defaults 100 and 10 000. */
  retry?: { baseMs?: number; maxMs?: number }
  /** Size at which a log segment is closed and a new one started. Default 64 MiB. */
  segmentBytes?: number
  /**
   * Failed flush attempts (each is retried), failed checkpoint writes, dead letters
   * (`DeadLetterError`) and damage in the log found on replay (`WalCorruptionError`,
   * code E_WAL_CORRUPT). Without it, damage goes to `process.emitWarning` and the
   * rest only to `stats().lastError`.
   */
  onError?: (err: Error) => void
  /** Told the queue depth whenever it changes (for the process's stats). */
  onDepth?: (depth: number) => void
  /** Rounds of attempts before a write the destination refuses for good is dead-lettered. Default 5. */
  maxAttempts?: number
  /** A failure that retrying cannot fix. Default: a CacheError with code E_L2_ERROR (a Redis reply error). */
  isPermanent?: (err: unknown) => boolean
  /** Bound of the dead-letter file; past it further dead letters are dropped (counted, reported). Default 64 MiB. */
  maxDeadLetterBytes?: number
  /** Which keys replay may write (the cache's namespace); the others go to the dead-letter file. Default: all. */
  accept?: (key: string) => boolean
  /** Told of dead letters: the writes given up on now (at open: none), and the dead-letter file's size. */
  onDeadLetters?: (writes: TierWrite[], fileBytes: number) => void
  /** Told of each damage report of the log's replay. */
  onCorruption?: (err: WalCorruptionError) => void
  /** Aborts `open` while it is still flushing the replayed writes (they stay in the log). */
  signal?: AbortSignal
}

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
  /** Damage reports from the log's replay (see wal.ts). */
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

interface Entry {
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

interface DrainWaiter {
  id: number
  resolve(): void
  reject(err: unknown): void
}

function positiveInt(v: unknown, name: string, fallback: number): number {
  if (v === undefined) return fallback
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new InvalidOptionError(`${name} must be a positive integer (got ${String(v)}).`)
  return v
}

function nonNegative(v: unknown, name: string, fallback: number): number {
  if (v === undefined) return fallback
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new InvalidOptionError(`${name} must be a finite number of milliseconds >= 0 (got ${String(v)}).`)
  return v
}

const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)))

export class WriteBehind {
  readonly #wal: WriteAheadLog
  readonly #flush: (writes: TierWrite[]) => Promise<void>
  readonly #batchSize: number
  readonly #intervalMs: number
  readonly #maxQueue: number
  readonly #baseMs: number
  readonly #maxMs: number
  readonly #onError: ((err: Error) => void) | undefined
  readonly #onDepth: ((depth: number) => void) | undefined
  readonly #stats = { flushed: 0, coalesced: 0, batches: 0, retries: 0, replayed: 0, walCorruptions: 0, deadLetters: 0, deadLettersDropped: 0, lastError: undefined as Error | undefined }
  readonly #dead: DeadLetterFile
  readonly #maxAttempts: number
  readonly #isPermanent: (err: unknown) => boolean
  readonly #onDeadLetters: ((writes: TierWrite[], fileBytes: number) => void) | undefined

  /** The queue: entries[head..] in enqueue (= log) order. */
  #entries: Entry[] = []
  #head = 0
  #nextId = 1
  #depth = 0
  /**
   * Writes in the log and not yet flushed. Entries become ready in queue order (the
   * log resolves appends in the order they were made), so these are the head of the queue.
   */
  #ready = 0
  #drains: DrainWaiter[] = []
  #closing = false
  /** The loop stops; what is not flushed stays in the log. */
  #stopped = false
  #closed: Promise<void> | undefined
  /** Resolves the loop's idle or interval wait early (new work, drain, close). */
  #wake: (() => void) | undefined
  /** Ends a retry backoff early (close gave up). */
  #cancelBackoff: (() => void) | undefined
  #timer: NodeJS.Timeout | undefined
  #idleForever = false

  private constructor(wal: WriteAheadLog, dead: DeadLetterFile, o: WriteBehindOptions, checked: { batchSize: number; intervalMs: number; maxQueue: number; baseMs: number; maxMs: number; maxAttempts: number }) {
    this.#wal = wal
    this.#dead = dead
    this.#maxAttempts = checked.maxAttempts
    this.#isPermanent = o.isPermanent ?? isPermanentFailure
    this.#onDeadLetters = o.onDeadLetters
    this.#flush = o.flush
    this.#onError = o.onError
    this.#onDepth = o.onDepth
    this.#batchSize = checked.batchSize
    this.#intervalMs = checked.intervalMs
    this.#maxQueue = checked.maxQueue
    this.#baseMs = checked.baseMs
    this.#maxMs = checked.maxMs
    void this.#run().catch((err: unknown) => this.#error(asError(err)))
  }

  /**
   * Opens the log in `opts.dir`, flushes every write it holds that was not flushed
   * before (in order, with retries), then resolves: new writes come after them.
   */
  static async open(opts: WriteBehindOptions): Promise<WriteBehind> {
    if (typeof opts !== 'object' || opts === null) throw new InvalidOptionError('WriteBehind.open takes { dir, flush, ... }.')
    if (typeof opts.flush !== 'function') throw new InvalidOptionError(`flush must be a function (writes) => Promise<void> (got ${typeof opts.flush}).`)
    const fsync = checkFsync(opts.fsync ?? 'batch', 'fsync')
    const baseMs = nonNegative(opts.retry?.baseMs, 'retry.baseMs', 100)
    if (baseMs === 0) throw new InvalidOptionError('retry.baseMs must be above 0 ms (a failing flush would be retried in a tight loop).')
    const checked = {
      batchSize: positiveInt(opts.batchSize, 'batchSize', 500),
      intervalMs: nonNegative(opts.flushIntervalMs, 'flushIntervalMs', 50),
      maxQueue: positiveInt(opts.maxQueue, 'maxQueue', 100_000),
      baseMs,
      maxMs: nonNegative(opts.retry?.maxMs, 'retry.maxMs', Math.max(10_000, baseMs)),
      maxAttempts: positiveInt(opts.maxAttempts, 'maxAttempts', DEFAULT_MAX_ATTEMPTS),
    }
    const maxDeadLetterBytes = positiveInt(opts.maxDeadLetterBytes, 'maxDeadLetterBytes', DEFAULT_MAX_DEAD_LETTER_BYTES)
    if (opts.accept !== undefined && typeof opts.accept !== 'function') throw new InvalidOptionError(`accept must be a function (key) => boolean (got ${typeof opts.accept}).`)
    if (checked.maxMs < baseMs) throw new InvalidOptionError(`retry.maxMs (${checked.maxMs}) must be at least retry.baseMs (${baseMs}).`)
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
      dead = await DeadLetterFile.open(wal.dir, maxDeadLetterBytes, fsync !== 'none')
    } catch (err) {
      await wal.close()
      throw err
    }
    wb = new WriteBehind(wal, dead, opts, checked)
    if (dead.size > 0) opts.onDeadLetters?.([], dead.size)
    const signal = opts.signal
    try {
      let lastSeq = 0
      for await (const rec of wal.replay()) {
        signal?.throwIfAborted()
        lastSeq = rec.seq
        await wb.#pushReplayed(rec, opts.accept)
        if (wb.#depth >= wb.#maxQueue) await wb.#abortable(wb.drain(), signal)
      }
      await wb.#abortable(wb.drain(), signal)
      // Records with nothing left to flush (all of another namespace, or empty) are done too.
      if (lastSeq > 0) await wal.ack(lastSeq)
    } catch (err) {
      await wb.close({ timeoutMs: 0 }).catch(() => {})
      throw err
    }
    return wb
  }

  #abortable(p: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
    if (!signal) return p
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => reject(signal.reason)
      if (signal.aborted) return onAbort()
      signal.addEventListener('abort', onAbort, { once: true })
      p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
    })
  }

  async #pushReplayed(rec: WalRecord, accept: ((key: string) => boolean) | undefined): Promise<void> {
    let writes = rec.writes
    if (accept) {
      const foreign = writes.filter((w) => !accept(w.key))
      if (foreign.length > 0) {
        writes = writes.filter((w) => accept(w.key))
        const detail = 'a record of a key outside this cache\'s namespace, found in the write-ahead log on replay'
        await this.#deadLetter(foreign, rec.seq, rec.time, 'namespace', detail, undefined)
      }
    }
    if (writes.length === 0) return
    this.#entries.push({ id: this.#nextId++, seq: rec.seq, time: rec.time, writes, done: 0, ready: true, readyAt: performance.now() })
    this.#addDepth(writes.length)
    this.#ready += writes.length
    this.#stats.replayed += writes.length
    this.#poke()
  }

  /**
   * Moves writes to the dead-letter file (what fits under its bound) and reports them.
   * Never throws: a dead-letter file that cannot be written drops them, and says so.
   */
  async #deadLetter(writes: TierWrite[], seq: number, time: number, reason: DeadLetterReason, detail: string, cause: unknown): Promise<void> {
    let kept = 0
    let writeError: unknown
    try {
      kept = await this.#dead.add(writes, writes.map(() => ({ seq, time, reason, detail })))
    } catch (err) {
      writeError = err
    }
    const n = writes.length
    this.#stats.deadLetters += n
    this.#stats.deadLettersDropped += n - kept
    try {
      this.#onDeadLetters?.(writes, this.#dead.size)
    } catch {
      // A throwing hook must not stop the loop.
    }
    const file = this.#dead.file
    const what =
      reason === 'namespace'
        ? `The write-ahead log held ${n} write${n === 1 ? '' : 's'} of keys outside this cache's namespace (${someKeys(writes.map((w) => w.key))}); they were not replayed`
        : `Redis refused ${n} write${n === 1 ? '' : 's'} for good after ${this.#maxAttempts} attempts (${detail}; keys ${someKeys(writes.map((w) => w.key))}); write-behind gave up on ${n === 1 ? 'it' : 'them'}`
    const where =
      kept === n
        ? `, moved to the dead-letter file ${file}. Inspect with 'nearcache dead-letter show --dir ${this.#wal.dir}'.`
        : writeError
          ? `, and the dead-letter file ${file} could not be written (${(writeError as Error).message}): ${n - kept} dropped.`
          : `; the dead-letter file ${file} is full (${this.#dead.size} bytes, maxDeadLetterBytes): ${n - kept} dropped (${this.#stats.deadLettersDropped} so far), ${kept} kept.`
    this.#error(new DeadLetterError(reason === 'namespace' ? 'E_CORRUPT_ENTRY' : 'E_L2_ERROR', what + where, writes.map((w) => w.key), file, kept, cause ?? writeError))
  }

  /** Changes the queue depth and tells `onDepth`. */
  #addDepth(n: number): void {
    this.#depth += n
    this.#onDepth?.(this.#depth)
  }

  /** Writes enqueued (or replayed) and not yet flushed, including those still being appended to the log. */
  get depth(): number {
    return this.#depth
  }

  stats(): WriteBehindStats {
    return { depth: this.#depth, ...this.#stats, tornTailBytes: this.#wal.recovery.tornTailBytes, deadLetterBytes: this.#dead.size }
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
    if (this.#depth + writes.length > this.#maxQueue) {
      const last = this.#stats.lastError ? ` Last flush error: ${this.#stats.lastError.message}` : ''
      throw new QueueFullError(
        `The write-behind queue is full: ${this.#depth} writes are waiting to be flushed and ${writes.length} more would exceed maxQueue (${this.#maxQueue}). ` +
          `Nothing was written. Raise maxQueue or slow down writes (the flush target is not keeping up).${last}`,
      )
    }
    const entry: Entry = { id: this.#nextId++, seq: 0, time: Date.now(), writes: writes.map((w) => ({ key: w?.key, bytes: w?.bytes, px: w?.px })), done: 0, ready: false, readyAt: 0 }
    // In the queue before the append, so queue order is log order (the log numbers records in call order).
    this.#entries.push(entry)
    this.#addDepth(writes.length)
    try {
      entry.seq = await this.#wal.append(entry.writes)
    } catch (err) {
      const i = this.#entries.indexOf(entry, this.#head)
      if (i >= 0) this.#entries.splice(i, 1)
      this.#addDepth(-writes.length)
      this.#settleDrains()
      throw err
    }
    entry.ready = true
    entry.readyAt = performance.now()
    this.#ready += entry.writes.length
    this.#poke()
  }

  /** Resolves when every write enqueued so far (and every write being enqueued) is flushed. */
  drain(): Promise<void> {
    const tail = this.#entries.length > this.#head ? this.#entries[this.#entries.length - 1] : undefined
    if (!tail) return Promise.resolve()
    if (this.#stopped) return Promise.reject(new CacheClosedError())
    return new Promise<void>((resolve, reject) => {
      this.#drains.push({ id: tail.id, resolve, reject })
      // Someone waits: the loop must keep the process alive, and need not wait for batches to fill.
      this.#timer?.ref()
      this.#wakeUp()
    })
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
    this.#timer?.ref()
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
    this.#wakeUp()
    this.#cancelBackoff?.()
    for (const d of this.#drains.splice(0)) d.reject(new CacheClosedError())
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
    if (this.#idleForever || this.#ready >= this.#batchSize) this.#wakeUp()
  }

  #wakeUp(): void {
    const w = this.#wake
    this.#wake = undefined
    w?.()
  }

  #urgent(): boolean {
    return this.#drains.length > 0 || this.#closing
  }

  /** Waits until woken, or `ms` (Infinity = until woken). */
  #idle(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(this.#timer)
        this.#timer = undefined
        this.#wake = undefined
        this.#idleForever = false
        resolve()
      }
      this.#wake = done
      this.#idleForever = ms === Infinity
      if (ms !== Infinity) {
        this.#timer = setTimeout(done, ms)
        // Queued writes are safe in the log: they need not keep the process alive unless someone waits for them.
        if (!this.#urgent()) this.#timer.unref()
      }
    })
  }

  #backoff(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(this.#timer)
        this.#timer = undefined
        this.#cancelBackoff = undefined
        resolve()
      }
      this.#cancelBackoff = done
      this.#timer = setTimeout(done, ms)
      if (!this.#urgent()) this.#timer.unref()
    })
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      const head = this.#head < this.#entries.length ? (this.#entries[this.#head] as Entry) : undefined
      if (!head?.ready) {
        await this.#idle(Infinity)
        continue
      }
      if (this.#ready < this.#batchSize && !this.#urgent()) {
        const wait = head.readyAt + this.#intervalMs - performance.now()
        if (wait > 0) {
          await this.#idle(wait)
          continue
        }
      }
      await this.#flushBatch()
    }
  }

  /** Flushes up to batchSize ready writes from the head of the queue (retrying until it works or close gives up). */
  async #flushBatch(): Promise<void> {
    // Take up to batchSize ready writes from the head, possibly part of an entry.
    const parts: { e: Entry; to: number }[] = []
    const taken: { w: TierWrite; time: number }[] = []
    for (let i = this.#head; i < this.#entries.length && taken.length < this.#batchSize; i++) {
      const e = this.#entries[i] as Entry
      if (!e.ready) break
      const to = Math.min(e.writes.length, e.done + this.#batchSize - taken.length)
      for (let j = e.done; j < to; j++) taken.push({ w: e.writes[j] as TierWrite, time: e.time })
      parts.push({ e, to })
    }
    // Coalesce: the last write of each key wins, kept in its place.
    const lastOf = new Map<string, number>()
    taken.forEach((t, i) => lastOf.set(t.w.key, i))
    const kept = taken.filter((t, i) => lastOf.get(t.w.key) === i)

    const outcome = await flushWithRetry(kept, {
      flush: this.#flush,
      prepare: (items) => {
        const now = Date.now()
        return items.map(({ w, time }) => (w.px === undefined ? { key: w.key, bytes: w.bytes, px: undefined } : { key: w.key, bytes: w.bytes, px: Math.max(1, Math.ceil(w.px - Math.max(0, now - time))) }))
      },
      isPermanent: this.#isPermanent,
      maxAttempts: this.#maxAttempts,
      backoff: (attempt) => {
        const cap = Math.min(this.#maxMs, this.#baseMs * 2 ** Math.min(attempt, 52))
        return this.#backoff(cap / 2 + (Math.random() * cap) / 2)
      },
      stopped: () => this.#stopped,
      onFailure: (err) => {
        this.#stats.retries++
        this.#error(asError(err))
      },
    })
    // Flushed after close gave up: leave the acknowledgement to the replay (at least once).
    if (outcome === 'stopped' || this.#stopped) return
    // Refused for good: to the dead-letter file, one report per log record.
    const bySeq = new Map<Entry, { writes: TierWrite[]; err: unknown }>()
    for (const { item, err } of outcome.gaveUp) {
      const e = parts.find((p) => p.e.writes.includes(item.w))?.e as Entry
      const g = bySeq.get(e) ?? { writes: [], err }
      g.writes.push(item.w)
      bySeq.set(e, g)
    }
    for (const [e, g] of bySeq) await this.#deadLetter(g.writes, e.seq, e.time, 'rejected', asError(g.err).message, g.err)

    this.#stats.batches++
    this.#stats.flushed += taken.length
    this.#stats.coalesced += taken.length - kept.length
    this.#addDepth(-taken.length)
    this.#ready -= taken.length
    let ackSeq = 0
    for (const { e, to } of parts) e.done = to
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
    if (ackSeq > 0) this.#wal.ack(ackSeq).catch((err: unknown) => this.#error(asError(err)))
    this.#settleDrains()
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
