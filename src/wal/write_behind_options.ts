/**
 * The options of write-behind (`WriteBehind.open`) and their one validation. Inside
 * a cache these come from `createCache`'s `writeBehind`, already checked by
 * src/options/options.ts; this checks them again for direct users of the engine.
 */
import { InvalidOptionError } from '../errors.js'
import type { WalCorruptionError } from '../errors.js'
import type { TierWrite } from '../tiers/tier.js'
import { DEFAULT_MAX_DEAD_LETTER_BYTES } from './dead_letter.js'
import { DEFAULT_MAX_ATTEMPTS } from './flush_retry.js'
import { checkFsync } from './fsync.js'
import type { FsyncPolicy } from './fsync.js'

export interface WriteBehindOptions {
  /** Directory of the write-ahead log (created if missing). One process per directory. */
  dir: string
  /** When an acknowledged write is on disk: see wal_group_commit.ts. Default 'batch' (group commit, durable on acknowledgement). */
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

/** The numbers of `WriteBehindOptions`, checked, defaults filled in. */
export interface WriteBehindSettings {
  fsync: FsyncPolicy
  batchSize: number
  intervalMs: number
  maxQueue: number
  baseMs: number
  maxMs: number
  maxAttempts: number
  maxDeadLetterBytes: number
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

/** Checks `opts` (throws InvalidOptionError naming the first bad one) and fills in the defaults. */
export function checkWriteBehindOptions(opts: WriteBehindOptions): WriteBehindSettings {
  if (typeof opts !== 'object' || opts === null) throw new InvalidOptionError('WriteBehind.open takes { dir, flush, ... }.')
  if (typeof opts.flush !== 'function') throw new InvalidOptionError(`flush must be a function (writes) => Promise<void> (got ${typeof opts.flush}).`)
  const fsync = checkFsync(opts.fsync ?? 'batch', 'fsync')
  const baseMs = nonNegative(opts.retry?.baseMs, 'retry.baseMs', 100)
  if (baseMs === 0) throw new InvalidOptionError('retry.baseMs must be above 0 ms (a failing flush would be retried in a tight loop).')
  const checked = {
    fsync,
    batchSize: positiveInt(opts.batchSize, 'batchSize', 500),
    intervalMs: nonNegative(opts.flushIntervalMs, 'flushIntervalMs', 50),
    maxQueue: positiveInt(opts.maxQueue, 'maxQueue', 100_000),
    baseMs,
    maxMs: nonNegative(opts.retry?.maxMs, 'retry.maxMs', Math.max(10_000, baseMs)),
    maxAttempts: positiveInt(opts.maxAttempts, 'maxAttempts', DEFAULT_MAX_ATTEMPTS),
    maxDeadLetterBytes: positiveInt(opts.maxDeadLetterBytes, 'maxDeadLetterBytes', DEFAULT_MAX_DEAD_LETTER_BYTES),
  }
  if (opts.accept !== undefined && typeof opts.accept !== 'function') throw new InvalidOptionError(`accept must be a function (key) => boolean (got ${typeof opts.accept}).`)
  if (checked.maxMs < baseMs) throw new InvalidOptionError(`retry.maxMs (${checked.maxMs}) must be at least retry.baseMs (${baseMs}).`)
  return checked
}
