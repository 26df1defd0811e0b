/**
 * Flushing one batch of write-behind to its destination.
 *   - TTLs count from the enqueue: a write that waited in the queue (or in the log,
 *     across a restart) is sent with its `px` shortened by the time it waited, down
 *     to 1 ms (so an expired write still replaces the older value, which then
 *     expires at once). Each attempt shortens it again.
 *   - A failed attempt is retried (flush_retry.ts) after a backoff of
 *     baseMs × 2^attempt, capped at maxMs, jittered to 50–100%.
 *   - What the destination refuses for good is answered grouped by the log record it
 *     came from (one dead-letter report per record).
 */
import type { TierWrite } from '../tiers/tier.js'
import { flushWithRetry } from './flush_retry.js'
import type { Batch, Entry, Taken } from './write_behind_queue.js'

export interface FlushHooks {
  flush: (writes: TierWrite[]) => Promise<void>
  isPermanent: (err: unknown) => boolean
  maxAttempts: number
  baseMs: number
  maxMs: number
  /** Waits `ms` (ended early when close gives up). */
  backoff: (ms: number) => Promise<void>
  /** close() gave up: stop now. */
  stopped: () => boolean
  /** Every failed attempt. */
  onFailure: (err: unknown) => void
}

/** The writes to send now for `items`, TTLs shortened by the time each waited. */
function withTtlsNow(items: readonly Taken[]): TierWrite[] {
  const now = Date.now()
  return items.map(({ w, time }) => (w.px === undefined ? { key: w.key, bytes: w.bytes, px: undefined } : { key: w.key, bytes: w.bytes, px: Math.max(1, Math.ceil(w.px - Math.max(0, now - time))) }))
}

/** Flushes the batch's kept writes: 'stopped' (close gave up), else the writes given up on, by log record. */
export async function flushBatch(batch: Batch, h: FlushHooks): Promise<'stopped' | Map<Entry, { writes: TierWrite[]; err: unknown }>> {
  const outcome = await flushWithRetry(batch.kept, {
    flush: h.flush,
    prepare: withTtlsNow,
    isPermanent: h.isPermanent,
    maxAttempts: h.maxAttempts,
    backoff: (attempt) => {
      const cap = Math.min(h.maxMs, h.baseMs * 2 ** Math.min(attempt, 52))
      return h.backoff(cap / 2 + (Math.random() * cap) / 2)
    },
    stopped: h.stopped,
    onFailure: h.onFailure,
  })
  // Flushed after close gave up: leave the acknowledgement to the replay (at least once).
  if (outcome === 'stopped' || h.stopped()) return 'stopped'
  const byRecord = new Map<Entry, { writes: TierWrite[]; err: unknown }>()
  for (const { item, err } of outcome.gaveUp) {
    const e = batch.parts.find((p) => p.e.writes.includes(item.w))?.e as Entry
    const g = byRecord.get(e) ?? { writes: [], err }
    g.writes.push(item.w)
    byRecord.set(e, g)
  }
  return byRecord
}
