/**
 * Small SharedArrayBuffer/Atomics utilities (there is no atomics-sync package):
 * a lock with an owner and a timeout, and the seqlock read helpers. Every wait has
 * a timeout; nothing here can deadlock if a thread dies while holding a lock.
 */
import { isMainThread, threadId } from 'node:worker_threads'

/** This thread's lock owner id: never 0 (0 = free). */
export const OWNER_ID = threadId + 1

/** Whether this thread may block in Atomics.wait (the main thread never does). */
const CAN_WAIT = !isMainThread

/**
 * A lock word at `i32[index]` (0 = free, else the owner's id) and the time it was
 * taken at `f64[timeIndex]` (ms, performance.timeOrigin-based wall clock).
 *
 * acquire: CAS 0 → owner. On contention a worker waits on the word (woken by
 * release's notify, at most 1 ms per wait); the main thread spins. A lock held
 * longer than `staleMs` belongs to a thread that died or hung mid-write: it is
 * stolen with a CAS from that owner (so two thieves cannot both win) and the
 * caller is told, so it can repair what the dead writer left half done.
 */
export const enum Acquired {
  Clean = 0,
  Stolen = 1,
}

export function wallNow(): number {
  return performance.timeOrigin + performance.now()
}

export function acquire(i32: Int32Array, index: number, f64: Float64Array, timeIndex: number, staleMs: number): Acquired {
  for (let spins = 0; ; spins++) {
    const cur = Atomics.compareExchange(i32, index, 0, OWNER_ID)
    if (cur === 0) {
      f64[timeIndex] = wallNow()
      return Acquired.Clean
    }
    if (cur === OWNER_ID) throw new Error('nearcache: L1 lock is not re-entrant')
    if ((spins & 1023) === 1023) {
      const since = f64[timeIndex] as number
      if (since > 0 && wallNow() - since > staleMs && Atomics.compareExchange(i32, index, cur, OWNER_ID) === cur) {
        f64[timeIndex] = wallNow()
        return Acquired.Stolen
      }
    }
    if (CAN_WAIT && spins > 64) Atomics.wait(i32, index, cur, 1)
  }
}

export function release(i32: Int32Array, index: number): void {
  Atomics.store(i32, index, 0)
  Atomics.notify(i32, index, 1)
}

/** Runs `fn` under the lock; `onStolen` repairs state a dead owner left behind first. */
export function withLock<T>(i32: Int32Array, index: number, f64: Float64Array, timeIndex: number, staleMs: number, onStolen: () => void, fn: () => T): T {
  if (acquire(i32, index, f64, timeIndex, staleMs) === Acquired.Stolen) onStolen()
  try {
    return fn()
  } finally {
    release(i32, index)
  }
}

/**
 * Seqlock writer side for one slot: the sequence word is odd while the slot is
 * being changed. Readers load it (even = stable), read, fence, and re-check.
 */
export function beginWrite(i32: Int32Array, seqIndex: number): void {
  Atomics.add(i32, seqIndex, 1)
}

export function endWrite(i32: Int32Array, seqIndex: number): void {
  Atomics.add(i32, seqIndex, 1)
}
