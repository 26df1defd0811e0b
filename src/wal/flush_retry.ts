/**
 * How write-behind retries one batch.
 *
 *   - A failure that is not permanent (Redis down, a timeout, a Cluster failover:
 *     anything but a reply error) is retried with backoff for as long as it lasts:
 *     the writes stay queued (and in the log), as before.
 *   - A permanent failure (Redis answered the command with an error: an invalid
 *     expire, WRONGTYPE, OOM, NOPERM) means some write of the batch is poison. The
 *     batch is then flushed one write at a time, so the good writes land at once,
 *     and only the refused ones are tried again, with backoff, up to `maxAttempts`
 *     rounds in all. What Redis still refuses after that is given up on (the caller
 *     moves it to the dead-letter file): it never blocks the writes behind it.
 *     A round interrupted by a non-permanent failure does not count.
 * Writes of one batch have distinct keys (the batch is coalesced), so flushing them
 * one by one keeps the order of every key's writes.
 */
import { CacheError } from '../errors.js'
import type { TierWrite } from '../tiers/tier.js'

export const DEFAULT_MAX_ATTEMPTS = 5

/** A reply error from Redis (E_L2_ERROR): retrying the same command will not help. */
export function isPermanentFailure(err: unknown): boolean {
  return err instanceof CacheError && err.code === 'E_L2_ERROR'
}

export interface RetryHooks<T> {
  flush: (writes: TierWrite[]) => Promise<void>
  /** The writes to send for these items now (TTLs shortened by the time they waited). */
  prepare: (items: readonly T[]) => TierWrite[]
  isPermanent: (err: unknown) => boolean
  maxAttempts: number
  /** Waits before attempt `attempt + 1` (exponential backoff). */
  backoff: (attempt: number) => Promise<void>
  /** close() gave up: stop now. */
  stopped: () => boolean
  /** Every failed attempt. */
  onFailure: (err: unknown) => void
}

export type RetryOutcome<T> = { gaveUp: { item: T; err: unknown }[] } | 'stopped'

/** Flushes `items` (see the module comment); answers the items given up on, or 'stopped'. */
export async function flushWithRetry<T>(items: readonly T[], h: RetryHooks<T>): Promise<RetryOutcome<T>> {
  let attempt = 0
  let rounds = 0
  let pending = items
  try {
    await h.flush(h.prepare(pending))
    return { gaveUp: [] }
  } catch (err) {
    if (h.stopped()) return 'stopped'
    h.onFailure(err)
    if (!h.isPermanent(err)) {
      // Nothing known to be poison: the whole batch again, after a wait, until it lands.
      for (;;) {
        await h.backoff(attempt++)
        if (h.stopped()) return 'stopped'
        try {
          await h.flush(h.prepare(pending))
          return { gaveUp: [] }
        } catch (again) {
          if (h.stopped()) return 'stopped'
          h.onFailure(again)
          if (h.isPermanent(again)) break
        }
      }
    }
  }
  // Some write is poison: one at a time from here. The failed batch was the first attempt.
  const lastError = new Map<T, unknown>()
  rounds = 1
  for (;;) {
    const still: T[] = []
    let transient: unknown
    let refused: unknown
    for (let i = 0; i < pending.length; i++) {
      const item = pending[i] as T
      try {
        await h.flush(h.prepare([item]))
      } catch (err) {
        if (h.stopped()) return 'stopped'
        still.push(item)
        if (!h.isPermanent(err)) {
          transient = err
          still.push(...pending.slice(i + 1))
          break
        }
        lastError.set(item, err)
        refused ??= err
      }
    }
    pending = still
    if (pending.length === 0) return { gaveUp: [] }
    if (transient === undefined) {
      rounds++
      h.onFailure(refused)
      if (rounds >= h.maxAttempts) return { gaveUp: pending.map((item) => ({ item, err: lastError.get(item) })) }
    } else {
      h.onFailure(transient)
    }
    await h.backoff(attempt++)
    if (h.stopped()) return 'stopped'
  }
}
