import { Cluster, Redis } from 'ioredis'
import { afterEach, describe, expect, it } from 'vitest'
import { createCache } from '../../src/index.js'
import { redisBackends, uniqueNamespace } from '../helpers/backends.js'
import { ProcessCache } from '../helpers/process_client.js'
import { ThreadCache } from '../helpers/thread_client.js'
import { stampede, closeStampedeClient } from '../fixtures/stampede.js'

/**
 * 1000 concurrent cold getOrSet calls for one key, spread over 3 processes (one of
 * them also with a worker thread): with stampedeLock the loader runs once in all.
 */
describe.each(redisBackends)('getOrSet stampede protection across processes on $name', (backend) => {
  const cleanup: (() => Promise<unknown>)[] = []
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f()
    closeStampedeClient()
  })

  it('1000 concurrent cold requests in 3 processes and a worker thread call the loader once', { timeout: 60_000 }, async () => {
    const namespace = uniqueNamespace(`stampede-${backend.name}`)
    const redis = backend.redisOption()
    const options = { redis, namespace, stampedeLock: { lease: '5s', waitTimeout: '5s' } }
    const main = await createCache(options)
    cleanup.push(() => main.close())
    const others = await Promise.all([ProcessCache.start(options), ProcessCache.start(options)])
    for (const o of others) cleanup.push(() => o.stop())
    const worker = await ThreadCache.start(main.handle, redis)
    cleanup.push(() => worker.stop())
    const counterKey = `${namespace}-loader-calls`
    const results = await Promise.all([
      stampede(main, redis, 'report', 250, counterKey),
      worker.call<unknown[]>('stampede', 'report', 250, counterKey),
      others[0]!.call<unknown[]>('stampede', 'report', 250, counterKey),
      others[1]!.call<unknown[]>('stampede', 'report', 250, counterKey),
    ])
    const all = results.flat() as { loadedBy: number; at: number }[]
    expect(all).toHaveLength(1000)
    const raw: Redis | Cluster = backend.rawClient() as Redis | Cluster
    const calls = Number(await raw.get(counterKey))
    await raw.del(counterKey)
    raw.disconnect()
    expect(calls).toBe(1)
    expect(new Set(all.map((r) => `${r.loadedBy}:${r.at}`)).size).toBe(1)
  })

  it('without the lock, each process loads on its own (what the lock prevents)', { timeout: 60_000 }, async () => {
    const namespace = uniqueNamespace(`nolock-${backend.name}`)
    const redis = backend.redisOption()
    const main = await createCache({ redis, namespace })
    cleanup.push(() => main.close())
    const other = await ProcessCache.start({ redis, namespace })
    cleanup.push(() => other.stop())
    const counterKey = `${namespace}-loader-calls`
    await Promise.all([stampede(main, redis, 'report', 100, counterKey), other.call('stampede', 'report', 100, counterKey)])
    const raw: Redis | Cluster = backend.rawClient() as Redis | Cluster
    expect(Number(await raw.get(counterKey))).toBe(2)
    await raw.del(counterKey)
    raw.disconnect()
  })
})
