import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { Piscina } from 'piscina'
import { afterEach, describe, expect, inject, it } from 'vitest'
import { attachCache, CacheError } from '../../src/index.js'
import type { NearCache } from '../../src/index.js'
import { allBackends, cacheOn } from '../helpers/backends.js'
import { ThreadCache } from '../helpers/thread_client.js'

/**
 * Visibility across threads: one cache made in the main thread, one attached in a
 * worker thread; once a change resolves in one, the other's next read sees it.
 */
describe.each(allBackends)('threads sharing one L1 on $name', (backend) => {
  const cleanup: (() => Promise<unknown>)[] = []
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f()
  })
  const pair = async (): Promise<{ main: NearCache; worker: ThreadCache }> => {
    const main = await cacheOn(backend)
    cleanup.push(() => main.close())
    const worker = await ThreadCache.start(main.handle)
    cleanup.push(() => worker.stop())
    return { main, worker }
  }

  it('set and delete in one thread are seen by the next get in the other', async () => {
    const { main, worker } = await pair()
    await main.set('k', { from: 'main', at: new Date(1) })
    expect(await worker.call('get', 'k')).toEqual({ from: 'main', at: new Date(1) })
    await worker.call('set', 'k', { from: 'worker' })
    expect(await main.get('k')).toEqual({ from: 'worker' })
    await worker.call('delete', 'k')
    expect(await main.get('k')).toBeUndefined()
    await main.set('k', 'again')
    expect(await worker.call('get', 'k')).toBe('again')
    await main.delete('k')
    expect(await worker.call('has', 'k')).toBe(false)
  })

  it('remembers a missing key briefly, and any thread writing it ends that at once', async () => {
    const { main, worker } = await pair()
    const before = main.stats().l2.misses
    for (let i = 0; i < 5; i++) expect(await main.get('nope')).toBeUndefined()
    expect(await worker.call('get', 'nope')).toBeUndefined()
    if (backend.name !== 'memory') expect(main.stats().l2.misses).toBe(before + 1)
    await worker.call('set', 'nope', 'now it exists')
    expect(await main.get('nope')).toBe('now it exists')
    await main.delete('nope')
    expect(await worker.call('get', 'nope')).toBeUndefined()
    await main.get('nope')
    await worker.call('setMany', [{ key: 'nope', value: 'again' }])
    expect(await main.get('nope')).toBe('again')
  })

  it('a worker L1 hit is the main thread L1 entry: no L2 round trip', async () => {
    const { main, worker } = await pair()
    await main.set('shared', 'bytes in the SharedArrayBuffer')
    const before = main.stats()
    expect(await worker.call('get', 'shared')).toBe('bytes in the SharedArrayBuffer')
    const after = main.stats()
    expect(after.l1.hits).toBe(before.l1.hits + 1)
    expect(after.l2.hits + after.l2.misses).toBe(before.l2.hits + before.l2.misses)
  })

  it('invalidateTags, invalidatePrefix and clear apply in every thread', async () => {
    const { main, worker } = await pair()
    await main.setMany([
      { key: 'p1', value: 1, tags: ['products'] },
      { key: 'p2', value: 2, tags: ['products'] },
      { key: 'user:1', value: 'u1' },
      { key: 'user:2', value: 'u2' },
      { key: 'order:1', value: 'o1' },
    ])
    expect(await worker.call('getMany', ['p1', 'p2', 'user:1'])).toEqual([1, 2, 'u1'])
    await worker.call('invalidateTags', ['products'])
    expect(await main.getMany(['p1', 'p2'])).toEqual([undefined, undefined])
    expect(await main.invalidatePrefix('user:')).toBe(2)
    expect(await worker.call('getMany', ['user:1', 'user:2', 'order:1'])).toEqual([undefined, undefined, 'o1'])
    await worker.call('clear')
    expect(await main.get('order:1')).toBeUndefined()
  })

  it('namespaces and typed errors work in the attached thread', async () => {
    const { main, worker } = await pair()
    await main.namespace('a').set('k', 'in a')
    expect(await worker.callIn('a', 'get', 'k')).toBe('in a')
    expect(await worker.call('get', 'k')).toBeUndefined()
    await expect(worker.call('get', '')).rejects.toMatchObject({ code: 'E_INVALID_KEY' })
    await expect(worker.call('set', 'k', undefined)).rejects.toMatchObject({ code: 'E_INVALID_VALUE' })
  })

  it('counts L1 figures over all threads', async () => {
    const { main, worker } = await pair()
    await main.set('x', 1)
    await worker.call('get', 'x')
    await main.get('x')
    const fromWorker = await worker.call<ReturnType<NearCache['stats']>>('stats')
    const fromMain = main.stats()
    expect(fromWorker.l1.hits).toBe(fromMain.l1.hits)
    expect(fromMain.l1.hits).toBeGreaterThanOrEqual(2)
    expect(fromMain.l1.entries).toBeGreaterThanOrEqual(1)
  })

  it('counts each namespace over all threads, in one block per namespace', async () => {
    const { main, worker } = await pair()
    const child = main.namespace('child')
    await main.set('x', 1)
    await child.set('y', 2)
    await worker.call('get', 'x') // an L1 hit counted by the worker's row
    await worker.callIn('child', 'get', 'y')
    await worker.callIn('child', 'get', 'missing')
    await main.get('x')
    const fromWorker = await worker.call<ReturnType<NearCache['stats']>>('stats')
    const fromMain = main.stats()
    expect(fromWorker.namespaces).toEqual(fromMain.namespaces)
    const root = fromMain.namespaces[main.prefix]
    const kid = fromMain.namespaces[child.prefix]
    expect(root?.hits.l1).toBe(2)
    expect(root?.sets).toBe(1)
    expect(kid?.hits.l1).toBe(1)
    expect((kid?.misses.l1 ?? 0) + (kid?.misses.l2 ?? 0)).toBe(1)
    expect(kid?.sets).toBe(1)
  })
})

describe('attaching', () => {
  it('rejects something that is not a handle', async () => {
    const err = await attachCache({ nope: true } as never).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(CacheError)
    expect((err as CacheError).code).toBe('E_INVALID_OPTION')
  })

  it('a piscina pool attaches with the workerCache() one-liner and shares L1 and L2', async () => {
    const cache = await cacheOn(allBackends[0]!)
    const pool = new Piscina({
      filename: fileURLToPath(new URL('../fixtures/piscina_task.ts', import.meta.url)),
      workerData: { nearcache: cache.handle },
      execArgv: ['--import', 'tsx'],
      minThreads: 2,
      maxThreads: 2,
    })
    try {
      const results = (await Promise.all(Array.from({ length: 40 }, (_, i) => pool.run({ id: i % 10 })))) as { id: number; square: number }[]
      expect(results.map((r) => r.square)).toEqual(Array.from({ length: 40 }, (_, i) => (i % 10) ** 2))
      // Entries the pool computed are in this thread's view of L1 and in Redis.
      expect(await cache.get('square:7')).toEqual({ id: 7, square: 49 })
      const raw = new Redis(inject('redisUrl'))
      expect(await raw.exists(`${cache.prefix}:square:7`)).toBe(1)
      raw.disconnect()
      // Each id was computed by at most one task per thread (coalescing is per thread here).
      const computed = Number(await cache.get('computations'))
      expect(computed).toBeGreaterThanOrEqual(10)
      expect(computed).toBeLessThanOrEqual(20)
    } finally {
      await pool.destroy()
      await cache.close()
    }
  })
})
