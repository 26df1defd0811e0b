import { describe, expect, it } from 'vitest'
import { CacheClosedError, InvalidKeyError } from '../../src/index.js'
import { cacheOn, memory, standalone } from '../helpers/backends.js'
import { ManualClock } from '../helpers/clock.js'
import { ThreadCache } from '../helpers/thread_client.js'
import { until } from '../helpers/wait.js'

/**
 * The L1 hit path: the decode memo is found by the L1 record's stamp, values are
 * copied by compiled shape cloners or shared frozen (l1.shareValues), and getSync
 * answers from L1 alone. What must never happen: an answer from a record version
 * other than the current one, in this thread or after another thread's write.
 */
const modes = [
  { name: 'copies (default)', shareValues: false },
  { name: 'shareValues', shareValues: true },
]

describe.each(modes)('L1 hits, $name', ({ shareValues }) => {
  it('reads its own writes through the memo while the table evicts and moves records all the time', async () => {
    const cache = await cacheOn(memory, { l1: { maxBytes: '256kb', shareValues } })
    try {
      const keys = Array.from({ length: 3000 }, (_, i) => `k${(i * 7) % 1500}`)
      let n = 0
      for (const key of keys) {
        const value = { key, n: ++n, pad: 'x'.repeat(100 + (n % 300)) }
        await cache.set(key, value)
        // Read twice (the second read is the memo's), then a neighbour's, to keep memos busy.
        expect(await cache.get(key)).toEqual(value)
        expect(await cache.get(key)).toEqual(value)
        expect(cache.getSync(key)).toEqual(value)
        const other = `k${(n * 13) % 1500}`
        const got = (await cache.get<{ key: string }>(other)) ?? { key: other }
        expect(got.key).toBe(other)
      }
      expect(cache.stats().l1.evictions).toBeGreaterThan(0)
    } finally {
      await cache.close()
    }
  })

  it("sees every write another thread makes to the shared L1, never an older memoized one", async () => {
    const cache = await cacheOn(memory, { l1: { shareValues } })
    const remote = await ThreadCache.start(cache.handle)
    try {
      for (let n = 1; n <= 300; n++) {
        await remote.call('set', 'shared', { n, tag: n % 3 === 0 ? 'same' : `v${n}` })
        expect(await cache.get('shared')).toEqual({ n, tag: n % 3 === 0 ? 'same' : `v${n}` })
        expect(cache.getSync('shared')).toEqual({ n, tag: n % 3 === 0 ? 'same' : `v${n}` })
        if (n % 50 === 0) await remote.call('delete', 'shared')
        if (n % 50 === 0) expect(await cache.get('shared')).toBeUndefined()
      }
      // Rewritten with the very same bytes: still answered, still right.
      await remote.call('set', 'shared', { n: 0 })
      expect(await cache.get('shared')).toEqual({ n: 0 })
      await remote.call('set', 'shared', { n: 0 })
      expect(await cache.get('shared')).toEqual({ n: 0 })
    } finally {
      await remote.stop()
      await cache.close()
    }
  })

  it('checks expiry and tags on memo hits', async () => {
    const clock = new ManualClock()
    const cache = await cacheOn(memory, { clock, l1: { shareValues } })
    try {
      await cache.set('t', { a: 1 }, { ttl: 1000, tags: ['red'] })
      for (let i = 0; i < 3; i++) expect(await cache.get('t')).toEqual({ a: 1 })
      expect(cache.getSync('t')).toEqual({ a: 1 })
      await cache.invalidateTags(['red'])
      expect(await cache.get('t')).toBeUndefined()
      expect(cache.getSync('t')).toBeUndefined()
      await cache.set('e', { a: 2 }, { ttl: 1000 })
      for (let i = 0; i < 3; i++) expect(await cache.get('e')).toEqual({ a: 2 })
      clock.advance(1000)
      expect(await cache.get('e')).toBeUndefined()
      expect(cache.getSync('e')).toBeUndefined()
    } finally {
      await cache.close()
    }
  })
})

describe('l1.shareValues', () => {
  it('hands out one deep-frozen value per key; a new write hands out a new one', async () => {
    const cache = await cacheOn(memory, { l1: { shareValues: true } })
    try {
      await cache.set('k', { a: { b: [1, { c: 2 }] } })
      const v = await cache.get<{ a: { b: [number, { c: number }] } }>('k')
      expect(await cache.get('k')).toBe(v)
      expect(cache.getSync('k')).toBe(v)
      expect(Object.isFrozen(v) && Object.isFrozen(v?.a) && Object.isFrozen(v?.a.b) && Object.isFrozen(v?.a.b[1])).toBe(true)
      expect(() => {
        ;(v as { a: { b: [number, { c: number }] } }).a.b[1].c = 3
      }).toThrow(TypeError)
      expect(await cache.get('k')).toEqual({ a: { b: [1, { c: 2 }] } })
      await cache.set('k', { a: { b: [1, { c: 3 }] } })
      const w = await cache.get('k')
      expect(w).not.toBe(v)
      expect(w).toEqual({ a: { b: [1, { c: 3 }] } })
    } finally {
      await cache.close()
    }
  })

  it('copies values holding what freezing cannot protect (bytes, Date, Map, Set), as without it', async () => {
    const cache = await cacheOn(memory, { l1: { shareValues: true } })
    try {
      const values = { bytes: { b: Buffer.from('hi') }, date: { d: new Date(5) }, map: new Map([[1, 2]]), set: { s: new Set([1]) } }
      for (const [key, value] of Object.entries(values)) {
        await cache.set(key, value)
        const a = await cache.get(key)
        const b = await cache.get(key)
        const c = await cache.get(key)
        expect(b).toEqual(value)
        expect(b).not.toBe(c)
        expect(Object.isFrozen(b)).toBe(false)
        expect(a).toEqual(c)
      }
      const mine = (await cache.get<{ b: Buffer }>('bytes')) as { b: Buffer }
      mine.b[0] = 0
      expect(((await cache.get<{ b: Buffer }>('bytes')) as { b: Buffer }).b.toString()).toBe('hi')
    } finally {
      await cache.close()
    }
  })
})

describe('getSync', () => {
  it('answers from L1 only: undefined for what only Redis holds, until a get brings it into L1', async () => {
    const cache = await cacheOn(standalone)
    const other = await cacheOn(standalone, { namespace: cache.prefix, l1: false })
    try {
      await other.set('r', { from: 'redis' })
      expect(cache.getSync('r')).toBeUndefined()
      expect(await cache.get('r')).toEqual({ from: 'redis' })
      // The fill lands once the invalidation bus is up (L1 is not filled while it may miss
      // invalidations) and after the announcement of other's write: get until it did.
      await until('a get fills L1', async () => (await cache.get('r')) !== undefined && cache.getSync('r') !== undefined)
      expect(cache.getSync('r')).toEqual({ from: 'redis' })
      expect(other.getSync('r')).toBeUndefined() // no L1 at all
      // Each call its own copy by default.
      const a = cache.getSync<{ from: string }>('r') as { from: string }
      a.from = 'changed'
      expect(cache.getSync('r')).toEqual({ from: 'redis' })
    } finally {
      await other.close()
      await cache.close()
    }
  })

  it('validates the key like get, and throws once closed', async () => {
    const cache = await cacheOn(memory)
    expect(() => cache.getSync('')).toThrow(InvalidKeyError)
    expect(() => cache.getSync('\ud800')).toThrow(InvalidKeyError)
    expect(() => cache.getSync(42 as unknown as string)).toThrow(InvalidKeyError)
    await expect(cache.get('')).rejects.toBeInstanceOf(InvalidKeyError)
    await cache.close()
    expect(() => cache.getSync('k')).toThrow(CacheClosedError)
  })

  it('works in an attached thread', async () => {
    const cache = await cacheOn(memory)
    const remote = await ThreadCache.start(cache.handle)
    try {
      await cache.set('w', { a: 1 })
      expect(await remote.call('getSync', 'w')).toEqual({ a: 1 })
      expect(await remote.call('getSync', 'missing')).toBeUndefined()
    } finally {
      await remote.stop()
      await cache.close()
    }
  })
})
