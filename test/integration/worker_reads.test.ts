import { afterEach, describe, expect, it } from 'vitest'
import { createCache } from '../../src/index.js'
import type { CacheOptions, NearCache } from '../../src/index.js'
import { cacheOn, redisBackends } from '../helpers/backends.js'
import { ThreadCache } from '../helpers/thread_client.js'
import { inL1, until } from '../helpers/wait.js'

/**
 * workerConnections: 'own' — an attached thread reads Redis on its own connection
 * and sends every change through the owner. Each test has an owner (createCache in
 * this thread), a worker thread attached to it, and where needed `other`: a second
 * cache with its own L1 table and its own bus, standing in for another process.
 */
describe.each(redisBackends)('worker threads reading with their own connection on $name', (backend) => {
  const cleanup: (() => Promise<unknown>)[] = []
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f().catch(() => {})
  })
  const setup = async (options: CacheOptions = {}): Promise<{ owner: NearCache; worker: ThreadCache; other: NearCache }> => {
    // l1.ttl of an hour: a stale L1 copy could only go away through an invalidation.
    const owner = await cacheOn(backend, { l1: { ttl: '1h', ttlJitter: 0 }, ...options })
    cleanup.push(() => owner.close())
    const other = await createCache({ redis: backend.redisOption(), namespace: owner.prefix, l1: { ttl: '1h', ttlJitter: 0 } })
    cleanup.push(() => other.close())
    const worker = await ThreadCache.start(owner.handle)
    cleanup.push(() => worker.stop())
    return { owner, worker, other }
  }

  /**
   * Runs `other`'s writes and waits until the owner's bus received what they
   * announced: a fill whose read overlaps an announcement is (rightly) refused.
   */
  const heard = async (owner: NearCache, other: NearCache, write: () => Promise<unknown>): Promise<void> => {
    const received = owner.stats().process.invalidationsReceived
    const sent = other.stats().process.invalidationsSent
    await write()
    // Announcements leave in a batch after the write resolves.
    await until('the writes are announced', () => other.stats().process.invalidationsSent > sent)
    const n = other.stats().process.invalidationsSent - sent
    await until("the owner's bus hears the writes", () => owner.stats().process.invalidationsReceived >= received + n)
  }

  it('the handle tells attached threads to connect themselves, with the owner option as plain data', async () => {
    const owner = await cacheOn(backend)
    cleanup.push(() => owner.close())
    const reads = owner.handle.reads
    expect(reads.via).toBe('own')
    expect(structuredClone(owner.handle).reads).toEqual(reads)
  })

  it('reads what another cache wrote, misses correctly, and fills the shared L1 the owner then hits', async () => {
    const { owner, worker, other } = await setup()
    await heard(owner, other, () =>
      other.setMany([
        { key: 'a', value: { n: 1 } },
        { key: 'b', value: 'two' },
      ]),
    )
    expect(await worker.call('get', 'a')).toEqual({ n: 1 })
    expect(await worker.call('getMany', ['b', 'missing'])).toEqual(['two', undefined])
    expect(await worker.call('get', 'missing-too')).toBeUndefined()
    // The worker's reads filled the owner's table: the owner answers from L1.
    expect(await inL1(owner, 'a')).toBe(true)
    expect(await inL1(owner, 'b')).toBe(true)
    expect(await owner.get('a')).toEqual({ n: 1 })
    expect(await owner.get('missing')).toBeUndefined()
  })

  it('tags: a worker reads tag epochs itself, and an invalidation by another cache hides the entry', async () => {
    const { worker, other } = await setup()
    await other.set('p', 'tagged', { tags: ['products'] })
    expect(await worker.call('get', 'p')).toBe('tagged')
    await other.invalidateTags(['products'])
    await until('the worker no longer sees the invalidated entry', async () => (await worker.call('get', 'p')) === undefined)
  })

  it('reads keep working without the owner; writes need it', async () => {
    const { owner, worker, other } = await setup({ commandTimeout: '500ms' })
    await other.set('k', 'in redis')
    await owner.close()
    // The owner's TierServer is gone: only a read on the worker's own connection can answer.
    expect(await worker.call('get', 'k')).toBe('in redis')
    expect(await worker.call('getMany', ['k', 'nope'])).toEqual(['in redis', undefined])
    await expect(worker.call('set', 'k', 'from the worker')).rejects.toMatchObject({ code: 'E_L2_UNAVAILABLE' })
    await expect(worker.call('delete', 'k')).rejects.toMatchObject({ code: 'E_L2_UNAVAILABLE' })
    expect(await other.get('k')).toBe('in redis')
  })

  it("with workerConnections: 'owner' the same read needs the owner", async () => {
    const { owner, worker, other } = await setup({ commandTimeout: '500ms', workerConnections: 'owner' })
    expect(owner.handle.reads).toMatchObject({ via: 'owner' })
    await other.set('k', 'in redis')
    await owner.close()
    await expect(worker.call('get', 'k')).rejects.toMatchObject({ code: 'E_L2_UNAVAILABLE' })
  })

  it("a worker's writes go through the owner, which announces them to other caches", async () => {
    const { owner, worker, other } = await setup()
    await other.set('k', 1)
    expect(await other.get('k')).toBe(1)
    expect(await inL1(other, 'k')).toBe(true)
    const sent = owner.stats().process.invalidationsSent
    await worker.call('set', 'k', 2)
    expect(owner.stats().process.invalidationsSent).toBeGreaterThan(sent)
    // other's L1 copy (kept for an hour otherwise) is dropped by the owner's announcement.
    await until('the other cache sees the worker write', async () => (await other.get('k')) === 2)
    await worker.call('delete', 'k')
    await until('the other cache sees the worker delete', async () => (await other.get('k')) === undefined)
  })

  it('another cache changes a key the worker filled into L1: the worker sees the new value', async () => {
    const { owner, worker, other } = await setup()
    await heard(owner, other, () => other.set('k', 'v1'))
    expect(await worker.call('get', 'k')).toBe('v1')
    expect(await inL1(owner, 'k')).toBe(true)
    await other.set('k', 'v2')
    await until('the worker sees v2', async () => (await worker.call('get', 'k')) === 'v2')
    await other.delete('k')
    await until('the worker sees the delete', async () => (await worker.call('get', 'k')) === undefined)
  })

  it('under concurrent rewrites by another cache, the worker and the owner converge on the last write', async () => {
    const { owner, worker, other } = await setup()
    const keys = ['r0', 'r1', 'r2', 'r3']
    let done = false
    const converged = async () => {
      const [w, o] = await Promise.all([worker.call<unknown[]>('getMany', keys), owner.getMany(keys)])
      return [...w, ...o].every((v) => v === 'final')
    }
    // The worker keeps reading (and filling L1) through every rewrite, the last one included.
    const reader = (async () => {
      while (!done) await worker.call('getMany', keys)
    })()
    for (let i = 0; i < 150; i++) await other.setMany(keys.map((key) => ({ key, value: i })))
    await other.setMany(keys.map((key) => ({ key, value: 'final' })))
    // With l1.ttl at an hour, a fill that landed after its invalidation would keep an old value here for good.
    try {
      await until('every thread sees the last write', converged)
    } finally {
      done = true
      await reader
    }
  })
})
