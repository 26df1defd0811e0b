import type { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import { SharedTable } from '../../src/l1/shared_table.js'
import type { NearCache } from '../../src/index.js'
import { cacheOn, memory, standalone } from '../helpers/backends.js'
import type { Backend } from '../helpers/backends.js'
import { startWorker } from '../helpers/thread_client.js'
import { stress } from '../fixtures/stress_ops.js'
import type { StressResult } from '../fixtures/stress_ops.js'

/**
 * Four worker threads and the main thread hammer one shared L1 (small enough to
 * evict all the time) with set/get/delete/getMany on overlapping keys. Every
 * value carries its key and a checksum: zero torn or foreign values, zero errors,
 * and the table's invariants hold at the end.
 */
async function run(backend: Backend, opsPerThread: number, keys: number, maxBytes: string, shareValues = false) {
  const cache: NearCache = await cacheOn(backend, { l1: { maxBytes, shareValues } })
  try {
    const handle = cache.handle
    const workers: Worker[] = []
    for (let i = 0; i < 4; i++) workers.push(await startWorker('stress_worker.ts', { handle, ops: opsPerThread, keys, seed: 1000 + i }))
    const fromWorkers = workers.map(
      (w) =>
        new Promise<StressResult>((resolve, reject) => {
          w.on('message', (m: { result?: StressResult }) => m.result && resolve(m.result))
          w.once('error', reject)
        }),
    )
    for (const w of workers) w.postMessage('go')
    const results = [await stress(cache, opsPerThread, keys, 7), ...(await Promise.all(fromWorkers))]
    await Promise.all(workers.map((w) => w.terminate()))
    const total = results.reduce(
      (a, r) => ({ ops: a.ops + r.ops, reads: a.reads + r.reads, found: a.found + r.found, torn: a.torn + r.torn, foreign: a.foreign + r.foreign, corrupt: a.corrupt + r.corruptEvents }),
      { ops: 0, reads: 0, found: 0, torn: 0, foreign: 0, corrupt: 0 },
    )
    const errors = results.flatMap((r) => r.errors)
    const table = SharedTable.attach(handle.table as SharedArrayBuffer)
    return { total, errors, invariants: table.checkInvariants(), stats: cache.stats(), usage: table.usage() }
  } finally {
    await cache.close()
  }
}

describe('multi-thread stress on one shared L1', () => {
  it('1,000,000 operations from 5 threads, L1 only: no torn or foreign value, invariants hold', { timeout: 240_000 }, async () => {
    const r = await run(memory, 200_000, 3000, '512kb')
    expect(r.errors).toEqual([])
    expect(r.total.ops).toBe(1_000_000)
    expect(r.total.torn).toBe(0)
    expect(r.total.foreign).toBe(0)
    expect(r.total.corrupt).toBe(0)
    expect(r.total.found).toBeGreaterThan(r.total.reads * 0.05)
    expect(r.invariants).toEqual([])
    expect(r.stats.l1.evictions).toBeGreaterThan(10_000)
    expect(r.usage.bytes).toBeLessThanOrEqual(r.usage.capacity)
  })

  it('500,000 operations from 5 threads, L1 only, shared frozen values (l1.shareValues): no torn, foreign or corrupt value', { timeout: 240_000 }, async () => {
    const r = await run(memory, 100_000, 3000, '512kb', true)
    expect(r.errors).toEqual([])
    expect(r.total.ops).toBe(500_000)
    expect(r.total.torn + r.total.foreign + r.total.corrupt).toBe(0)
    expect(r.total.found).toBeGreaterThan(r.total.reads * 0.05)
    expect(r.invariants).toEqual([])
    expect(r.stats.l1.evictions).toBeGreaterThan(5_000)
  })

  it('50,000 operations from 5 threads with Redis behind the L1', { timeout: 240_000 }, async () => {
    const r = await run(standalone, 10_000, 2000, '256kb')
    expect(r.errors).toEqual([])
    expect(r.total.torn + r.total.foreign + r.total.corrupt).toBe(0)
    expect(r.total.found).toBeGreaterThan(0)
    expect(r.invariants).toEqual([])
    expect(r.stats.l2.hits).toBeGreaterThan(0)
  })
})
