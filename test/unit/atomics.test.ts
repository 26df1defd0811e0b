import { describe, expect, it } from 'vitest'
import { Acquired, acquire, OWNER_ID, release, withLock } from '../../src/threads/atomics.js'
import { startWorker } from '../helpers/thread_client.js'

describe('sync/atomics lock', () => {
  it('takes and releases, recording owner and time', () => {
    const sab = new SharedArrayBuffer(32)
    const i32 = new Int32Array(sab)
    const f64 = new Float64Array(sab)
    expect(acquire(i32, 0, f64, 1, 1000)).toBe(Acquired.Clean)
    expect(i32[0]).toBe(OWNER_ID)
    expect(f64[1]).toBeGreaterThan(0)
    expect(() => acquire(i32, 0, f64, 1, 1000)).toThrow(/not re-entrant/)
    release(i32, 0)
    expect(i32[0]).toBe(0)
  })

  it('steals a lock whose owner has held it past the timeout, and says so', () => {
    const sab = new SharedArrayBuffer(32)
    const i32 = new Int32Array(sab)
    const f64 = new Float64Array(sab)
    i32[0] = 4242 // a thread that died holding the lock
    f64[1] = performance.timeOrigin + performance.now() - 10_000
    let repaired = 0
    const v = withLock(i32, 0, f64, 1, 1000, () => repaired++, () => 'ran')
    expect(v).toBe('ran')
    expect(repaired).toBe(1)
    expect(i32[0]).toBe(0)
  })

  it('gives mutual exclusion across threads: 4 workers x 10,000 locked increments lose none', { timeout: 120_000 }, async () => {
    const sab = new SharedArrayBuffer(64)
    const rounds = 10_000
    const workers = await Promise.all(Array.from({ length: 4 }, () => startWorker('lock_worker.ts', { sab, rounds })))
    const done = workers.map((w) => new Promise<void>((resolve) => w.on('message', (m: { done?: boolean }) => m.done && resolve())))
    for (const w of workers) w.postMessage('go')
    await Promise.all(done)
    await Promise.all(workers.map((w) => w.terminate()))
    expect(new Int32Array(sab)[4]).toBe(4 * rounds)
    expect(new Int32Array(sab)[0]).toBe(0)
  })
})
