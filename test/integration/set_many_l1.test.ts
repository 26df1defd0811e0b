import { afterEach, describe, expect, it } from 'vitest'
import { createCache } from '../../src/index.js'
import type { NearCache } from '../../src/index.js'
import { redisBackends, uniqueNamespace } from '../helpers/backends.js'

/**
 * A batch write lands every key in L1, also keys whose epoch words it shares: each
 * write of a batch bumps its key's word, and a later key of the same batch must not
 * take that for a racing writer (before, ~N²/8192 keys of an N-key setMany were left
 * out of L1 and read back from Redis).
 */
describe.each(redisBackends.map((b) => [b.name, b] as const))('setMany fills L1 with every key on %s', (_name, backend) => {
  const open: NearCache[] = []
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.close()))
  })

  it('2,500 keys written in one setMany are all L1 hits afterwards', async () => {
    const cache = await createCache({ redis: backend.redisOption(), namespace: uniqueNamespace('setmany'), l1: { ttl: '1h' } })
    open.push(cache)
    const entries = Array.from({ length: 2500 }, (_, i) => ({ key: `k${i}`, value: { i } }))
    await cache.setMany(entries)
    const values = await cache.getMany(entries.map((e) => e.key))
    expect(values).toEqual(entries.map((e) => e.value))
    const ns = cache.stats().namespaces[cache.prefix]
    expect(ns?.hits.l2).toBe(0)
    expect(ns?.hits.l1).toBe(2500)
  })

  it('a batch with the same key twice keeps the last value in L1 and Redis', async () => {
    const cache = await createCache({ redis: backend.redisOption(), namespace: uniqueNamespace('setmany'), l1: { ttl: '1h' } })
    open.push(cache)
    await cache.setMany([
      { key: 'same', value: 1 },
      { key: 'same', value: 2 },
    ])
    expect(await cache.get('same')).toBe(2)
    const fresh = await createCache({ redis: backend.redisOption(), namespace: cache.prefix, l1: false })
    open.push(fresh)
    expect(await fresh.get('same')).toBe(2)
  })
})
