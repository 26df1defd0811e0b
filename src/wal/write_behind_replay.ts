/**
 * Write-behind's recovery at open: every write the log still holds (appended and
 * not acknowledged before the process stopped) is queued again, in log order, and
 * flushed before `open` resolves; new writes come after them. Only the keys
 * `accept` allows (the cache's namespace) are queued: records of other keys go to
 * the dead-letter file (E_CORRUPT_ENTRY). Records with nothing left to flush (all
 * of another namespace, or empty) are acknowledged too. `signal` aborts the wait;
 * what is not flushed then stays in the log.
 */
import type { TierWrite } from '../tiers/tier.js'
import { giveUp } from './dead_letter.js'
import type { GiveUpContext } from './dead_letter.js'
import type { WriteAheadLog } from './wal.js'
import type { WalRecord } from './wal_record.js'
import type { WriteQueue } from './write_behind_queue.js'

export interface ReplayTarget {
  queue: WriteQueue
  maxQueue: number
  giveUp: GiveUpContext
  /** Reports a dead-letter error. */
  report: (err: Error) => void
  /** `n` writes were queued again (count them, wake the loop). */
  requeued: (n: number) => void
  /** Resolves once every write queued so far is flushed. */
  drain: () => Promise<void>
}

/** `p`, rejected with the signal's reason as soon as it aborts. */
function abortable(p: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return p
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason)
    if (signal.aborted) return onAbort()
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

/** Replays the log into the queue and waits until all of it is flushed (see the module comment). */
export async function replayLog(wal: WriteAheadLog, t: ReplayTarget, accept: ((key: string) => boolean) | undefined, signal: AbortSignal | undefined): Promise<void> {
  let lastSeq = 0
  for await (const rec of wal.replay()) {
    signal?.throwIfAborted()
    lastSeq = rec.seq
    await requeue(rec, t, accept)
    if (t.queue.depth >= t.maxQueue) await abortable(t.drain(), signal)
  }
  await abortable(t.drain(), signal)
  if (lastSeq > 0) await wal.ack(lastSeq)
}

async function requeue(rec: WalRecord, t: ReplayTarget, accept: ((key: string) => boolean) | undefined): Promise<void> {
  let writes: TierWrite[] = rec.writes
  if (accept) {
    const foreign = writes.filter((w) => !accept(w.key))
    if (foreign.length > 0) {
      writes = writes.filter((w) => accept(w.key))
      const detail = "a record of a key outside this cache's namespace, found in the write-ahead log on replay"
      t.report(await giveUp(t.giveUp, foreign, rec.seq, rec.time, 'namespace', detail, undefined))
    }
  }
  if (writes.length === 0) return
  t.queue.push(writes, rec.time, { seq: rec.seq })
  t.requeued(writes.length)
}
