import { Redis } from 'ioredis'
import { describe, expect, inject, it } from 'vitest'
import { createCache } from '../../src/index.js'
import { uniqueNamespace } from '../helpers/backends.js'

describe('createCache({ codecWorkers })', () => {
  it('round-trips small and large values through the codec worker pool', { timeout: 60_000 }, async () => {
    const namespace = uniqueNamespace('codec')
    const cache = await createCache({ redis: inject('redisUrl'), namespace, codecWorkers: { threshold: '16kb' }, l1: false })
    try {
      const records = Array.from({ length: 2000 }, (_, i) => ({ id: i, name: `record ${i}`, tags: ['a', 'b'], at: new Date(i) }))
      const small = { hello: 'world', n: 1n }
      await Promise.all([cache.set('big', records), cache.set('small', small)])
      const raw = new Redis(inject('redisUrl'))
      const stored = (await raw.getBuffer(`${namespace}:big`)) as Buffer
      raw.disconnect()
      expect((stored[3] as number) & 1).toBe(1) // compressed
      const [big, again] = await Promise.all([cache.get('big'), cache.get('big')])
      expect(big).toEqual(records)
      expect(big).not.toBe(again)
      expect(await cache.get('small')).toEqual(small)
      await expect(cache.set('bad', { f: () => 1 })).rejects.toMatchObject({ code: 'E_INVALID_VALUE' })
      await cache.clear()
    } finally {
      await cache.close()
    }
  })
})
