import { afterEach, describe, expect, it, vi } from 'vitest'
import { decodeEnvelope } from '../../src/codec/envelope.js'
import { deserialize, inflate, serialize } from '../../src/codec/value_codec.js'
import type { NearCache } from '../../src/index.js'
import { dataKey } from '../../src/keys.js'
import { allBackends, cacheOn, uniqueNamespace } from '../helpers/backends.js'
import { ManualClock } from '../helpers/clock.js'
import { gate } from '../helpers/gate.js'

const MAX_VALUE = 16 * 1024 * 1024

/**
 * The contract every backend keeps: the same calls, the same answers, on a
 * standalone Redis, a 3-master Redis Cluster and the in-process tier.
 */
describe.each(allBackends)('contract on $name', (backend) => {
  const open: NearCache[] = []
  const make = async (opts = {}) => {
    const c = await cacheOn(backend, opts)
    open.push(c)
    return c
  }
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.close()))
  })

  it('round-trips values with their types', async () => {
    const c = await make()
    const cyclic: Record<string, unknown> = { name: 'loop' }
    cyclic.self = cyclic
    const shared = { s: 1 }
    const values: Record<string, unknown> = {
      null: null,
      zero: 0,
      empty: '',
      false: false,
      float: 1.5,
      big: 2n ** 100n,
      negBig: -(2n ** 70n),
      small: 7n,
      date: new Date(1_700_000_000_123),
      map: new Map<unknown, unknown>([[1, { x: 2 }], ['k', new Set([1, 2])]]),
      set: new Set(['a', 'b']),
      u8: new Uint8Array([1, 2, 3]),
      buf: Buffer.from('bytes'),
      nested: { a: [1, { b: [new Date(5), null, 'x'] }], c: { d: { e: true } } },
      arr: [1, 'two', [3], { four: 4 }],
      unicode: 'zażółć 🚀',
      dag: { left: shared, right: shared },
    }
    for (const [k, v] of Object.entries(values)) expect(await c.set(k, v)).toBe(true)
    for (const [k, v] of Object.entries(values)) {
      const got = await c.get(k)
      expect(got, k).toStrictEqual(v)
    }
    expect(await c.get<Buffer>('buf')).toBeInstanceOf(Buffer)
    expect(await c.get('u8')).toBeInstanceOf(Uint8Array)
    const dag = (await c.get('dag')) as { left: object; right: object }
    expect(dag.left).toBe(dag.right)
    await c.set('cyclic', cyclic)
    const back = (await c.get('cyclic')) as Record<string, unknown>
    expect(back.name).toBe('loop')
    expect(back.self).toBe(back)
  })

  it('answers undefined for a missing key and keeps falsy values apart from it', async () => {
    const c = await make()
    expect(await c.get('nope')).toBeUndefined()
    expect(await c.has('nope')).toBe(false)
    for (const v of [null, 0, '', false]) {
      await c.set('k', v)
      expect(await c.get('k')).toBe(v)
      expect(await c.has('k')).toBe(true)
    }
  })

  it('hands out independent copies', async () => {
    const c = await make()
    const original = { list: [1, 2], inner: { n: 1 } }
    await c.set('obj', original)
    original.list.push(99)
    const a = (await c.get('obj')) as typeof original
    a.inner.n = 42
    a.list.length = 0
    const b = (await c.get('obj')) as typeof original
    expect(b).toStrictEqual({ list: [1, 2], inner: { n: 1 } })
    expect(a).not.toBe(b)
    const [m1, m2] = (await c.getMany(['obj', 'obj'])) as (typeof original)[]
    expect(m1).not.toBe(m2)
  })

  it('expires entries by TTL on the injected clock', async () => {
    const clock = new ManualClock()
    const c = await make({ clock, ttl: '1h' })
    await c.set('default', 1)
    await c.set('short', 2, { ttl: '10m' })
    await c.set('ms', 3, { ttl: 90 * 60_000 })
    await c.set('forever', 4, { ttl: Infinity })
    clock.advance(10 * 60_000 - 1)
    expect(await c.getMany(['default', 'short', 'ms'])).toEqual([1, 2, 3])
    clock.advance(1)
    expect(await c.get('short')).toBeUndefined()
    expect(await c.has('short')).toBe(false)
    clock.advance(50 * 60_000)
    expect(await c.get('default')).toBeUndefined()
    expect(await c.get('ms')).toBe(3)
    clock.advance(30 * 60_000)
    expect(await c.get('ms')).toBeUndefined()
    expect(await c.get('forever')).toBe(4)
  })

  it('spreads expiry with ttlJitter, never past the TTL given', async () => {
    const clock = new ManualClock()
    const c = await make({ clock, ttlJitter: 50 })
    const keys = Array.from({ length: 60 }, (_, i) => `j${i}`)
    await c.setMany(keys.map((key) => ({ key, value: 1, ttl: '1h' })))
    clock.advance(30 * 60_000 - 1)
    expect((await c.getMany(keys)).every((v) => v === 1)).toBe(true)
    clock.advance(15 * 60_000)
    const alive = (await c.getMany(keys)).filter((v) => v === 1).length
    expect(alive).toBeGreaterThan(0)
    expect(alive).toBeLessThan(keys.length)
    clock.advance(15 * 60_000 + 1)
    expect((await c.getMany(keys)).every((v) => v === undefined)).toBe(true)
  })

  it('honours nx and xx, treating expired and invalidated entries as missing', async () => {
    const clock = new ManualClock()
    const c = await make({ clock })
    expect(await c.set('k', 1, { xx: true })).toBe(false)
    expect(await c.get('k')).toBeUndefined()
    expect(await c.set('k', 1, { nx: true })).toBe(true)
    expect(await c.set('k', 2, { nx: true })).toBe(false)
    expect(await c.get('k')).toBe(1)
    expect(await c.set('k', 3, { xx: true })).toBe(true)
    expect(await c.get('k')).toBe(3)
    await c.set('e', 1, { ttl: '1m' })
    clock.advance(60_000)
    expect(await c.set('e', 2, { xx: true })).toBe(false)
    expect(await c.set('e', 2, { nx: true })).toBe(true)
    expect(await c.get('e')).toBe(2)
    await c.set('t', 1, { tags: ['g'] })
    await c.invalidateTags(['g'])
    expect(await c.set('t', 2, { xx: true })).toBe(false)
    expect(await c.set('t', 2, { nx: true, tags: ['g'] })).toBe(true)
    expect(await c.get('t')).toBe(2)
  })

  it('lets exactly one of many concurrent nx writers win', async () => {
    const c = await make()
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => c.set('lock', i, { nx: true })))
    expect(results.filter(Boolean)).toHaveLength(1)
    expect(await c.get('lock')).toBe(results.indexOf(true))
  })

  it('deletes and counts only entries that were there', async () => {
    const clock = new ManualClock()
    const c = await make({ clock })
    await c.setMany([
      { key: 'a', value: 1 },
      { key: 'b', value: 2 },
      { key: 'c', value: 3, ttl: '1s' },
    ])
    expect(await c.delete('a')).toBe(true)
    expect(await c.delete('a')).toBe(false)
    expect(await c.get('a')).toBeUndefined()
    clock.advance(1000)
    expect(await c.deleteMany(['b', 'b', 'c', 'zz'])).toBe(1)
    expect(await c.getMany(['a', 'b', 'c'])).toEqual([undefined, undefined, undefined])
    expect(await c.deleteMany([])).toBe(0)
  })

  it('reads and writes many keys across slots, in key order', async () => {
    const c = await make()
    const keys = Array.from({ length: 300 }, (_, i) => `user:${i}`)
    await c.setMany(keys.map((key, i) => ({ key, value: { i } })))
    const got = await c.getMany([...keys, 'missing', keys[0] as string])
    expect(got.slice(0, 300)).toEqual(keys.map((_, i) => ({ i })))
    expect(got[300]).toBeUndefined()
    expect(got[301]).toEqual({ i: 0 })
    const singles = await Promise.all(keys.map((k) => c.get(k)))
    expect(singles).toEqual(keys.map((_, i) => ({ i })))
    expect(await c.getMany([])).toEqual([])
    expect(await c.deleteMany(keys)).toBe(300)
  })

  it('setMany applies per-entry TTL and tags', async () => {
    const clock = new ManualClock()
    const c = await make({ clock })
    await c.setMany([
      { key: 'x', value: 'x', ttl: '1m', tags: ['t1'] },
      { key: 'y', value: 'y', tags: ['t2'] },
      { key: 'z', value: 'z' },
    ])
    clock.advance(60_000)
    await c.invalidateTags(['t2'])
    expect(await c.getMany(['x', 'y', 'z'])).toEqual([undefined, undefined, 'z'])
  })

  it('getOrSet: one loader call for concurrent callers, each with its own copy', async () => {
    const c = await make()
    let calls = 0
    const loading = gate()
    const loader = async () => {
      calls++
      await loading.held
      return { rows: [1, 2, 3] }
    }
    const all = Promise.all(Array.from({ length: 100 }, () => c.getOrSet('report', loader, { ttl: '1m' })))
    // The load is held until the other 99 callers have joined it.
    await vi.waitFor(() => expect(c.stats().namespaces[c.prefix]?.coalesced).toBe(99), { timeout: 10_000 })
    loading.release()
    const results = await all
    expect(calls).toBe(1)
    for (const r of results) expect(r).toEqual({ rows: [1, 2, 3] })
    expect(new Set(results).size).toBe(100)
    results[0]!.rows.push(4)
    expect(await c.get('report')).toEqual({ rows: [1, 2, 3] })
    expect(await c.getOrSet('report', loader)).toEqual({ rows: [1, 2, 3] })
    expect(calls).toBe(1)
  })

  it('getOrSet: loader errors reach every waiter and nothing is cached; undefined is not cached', async () => {
    const c = await make()
    let calls = 0
    const loading = gate()
    const failing = async () => {
      calls++
      await loading.held
      throw new Error('db down')
    }
    const all = Promise.allSettled(Array.from({ length: 10 }, () => c.getOrSet('k', failing)))
    await vi.waitFor(() => expect(c.stats().namespaces[c.prefix]?.coalesced).toBe(9), { timeout: 10_000 })
    loading.release()
    const settled = await all
    expect(calls).toBe(1)
    expect(settled.every((s) => s.status === 'rejected' && (s.reason as Error).message === 'db down')).toBe(true)
    expect(await c.has('k')).toBe(false)
    expect(await c.getOrSet('u', () => undefined)).toBeUndefined()
    expect(await c.has('u')).toBe(false)
    expect(await c.getOrSet('k', () => 5)).toBe(5)
    expect(await c.get('k')).toBe(5)
  })

  it('getOrSet: tags and TTL apply to the loaded value', async () => {
    const clock = new ManualClock()
    const c = await make({ clock })
    await c.getOrSet('a', () => 'A', { tags: ['grp'] })
    await c.getOrSet('b', () => 'B', { ttl: '1s' })
    await c.invalidateTags(['grp'])
    clock.advance(1000)
    expect(await c.getMany(['a', 'b'])).toEqual([undefined, undefined])
  })

  it('compareAndSet swaps atomically', async () => {
    const c = await make()
    expect(await c.compareAndSet('n', undefined, 0)).toBe(true)
    expect(await c.compareAndSet('n', undefined, 1)).toBe(false)
    expect(await c.compareAndSet('n', 5, 1)).toBe(false)
    expect(await c.compareAndSet('n', 0, 1)).toBe(true)
    expect(await c.get('n')).toBe(1)
    await c.set('o', { b: 2, a: 1, m: new Map([['k', [1]]]) })
    expect(await c.compareAndSet('o', { a: 1, b: 2, m: new Map([['k', [1]]]) }, 'next')).toBe(true)
    expect(await c.get('o')).toBe('next')
    // 25 concurrent increments through a CAS loop lose none.
    const increment = async () => {
      for (;;) {
        const cur = (await c.get<number>('n')) as number
        if (await c.compareAndSet('n', cur, cur + 1)) return
      }
    }
    await Promise.all(Array.from({ length: 25 }, increment))
    expect(await c.get('n')).toBe(26)
  })

  it('invalidateTags hides every entry with any of the tags, and only those', async () => {
    const c = await make()
    await c.set('p1', 1, { tags: ['product', 'p1'] })
    await c.set('p2', 2, { tags: ['product', 'p2'] })
    await c.set('u1', 3, { tags: ['user'] })
    await c.set('plain', 4)
    await c.invalidateTags(['p1'])
    expect(await c.getMany(['p1', 'p2', 'u1', 'plain'])).toEqual([undefined, 2, 3, 4])
    await c.invalidateTags(['product', 'nothing-has-this'])
    expect(await c.getMany(['p1', 'p2', 'u1', 'plain'])).toEqual([undefined, undefined, 3, 4])
    expect(await c.has('p2')).toBe(false)
    await c.set('p2', 22, { tags: ['product'] })
    expect(await c.get('p2')).toBe(22)
    await c.invalidateTags([])
    const other = c.namespace('other')
    await other.set('p', 1, { tags: ['user'] })
    await c.invalidateTags(['user'])
    expect(await c.get('u1')).toBeUndefined()
    expect(await other.get('p')).toBe(1)
  })

  it('invalidatePrefix removes what starts with the prefix, across all masters', async () => {
    const c = await make()
    const users = Array.from({ length: 200 }, (_, i) => ({ key: `user:${i}`, value: i }))
    await c.setMany([...users, { key: 'order:1', value: 'o' }, { key: 'user', value: 'bare' }])
    expect(await c.invalidatePrefix('user:')).toBe(200)
    expect(await c.getMany(['user:0', 'user:199', 'order:1', 'user'])).toEqual([undefined, undefined, 'o', 'bare'])
    expect(await c.invalidatePrefix('user:')).toBe(0)
    await c.set('a*b', 1)
    await c.set('axb', 2)
    expect(await c.invalidatePrefix('a*')).toBe(1)
    expect(await c.get('axb')).toBe(2)
  })

  it('clear empties this namespace and its children, and nothing else', async () => {
    const c = await make()
    const sibling = await make()
    const child = c.namespace('child')
    await c.set('k', 1, { tags: ['t'] })
    await child.set('k', 2)
    await sibling.set('k', 3)
    await c.clear()
    expect(await c.get('k')).toBeUndefined()
    expect(await child.get('k')).toBeUndefined()
    expect(await sibling.get('k')).toBe(3)
    await c.set('k', 4, { tags: ['t'] })
    expect(await c.get('k')).toBe(4)
  })

  it('namespaces isolate keys and share the connections', async () => {
    const c = await make()
    const a = c.namespace('a')
    const b = c.namespace('b')
    expect(a.prefix).toBe(`${c.prefix}:a`)
    await a.set('k', 'A')
    await b.set('k', 'B')
    await c.set('k', 'root')
    expect([await a.get('k'), await b.get('k'), await c.get('k')]).toEqual(['A', 'B', 'root'])
    expect(await c.get('a:k')).toBe('A')
    await a.close()
    await expect(a.get('k')).rejects.toMatchObject({ code: 'E_CLOSED' })
    expect(await b.get('k')).toBe('B')
  })

  it('counts hits, misses, sets and deletes per tier in stats()', async () => {
    const c = await make()
    await c.set('a', 1)
    await c.set('b', 2)
    await c.get('a')
    await c.getMany(['a', 'b', 'c'])
    await c.get('zz')
    await c.get('zz')
    await c.delete('a')
    const { l1, l2 } = c.stats()
    if (backend.name === 'memory') {
      // The shared L1 is the only tier.
      expect(l1).toMatchObject({ enabled: true, hits: 3, misses: 3, sets: 2, deletes: 1, errors: 0, entries: 1 })
      expect(l2).toMatchObject({ enabled: false, hits: 0, misses: 0, sets: 0 })
    } else {
      // Writes fill L1, so reads of a and b never reach Redis; c and zz are missing in
      // Redis and remembered as such, so the second read of zz costs no round trip.
      expect(l1).toMatchObject({ enabled: true, hits: 4, misses: 2 })
      expect(l2).toMatchObject({ enabled: true, hits: 0, misses: 2, sets: 2, deletes: 1, errors: 0 })
      expect(l1.entries).toBe(3) // b, and the negative entries for c and zz
      expect(l2.latency.samples).toBeGreaterThanOrEqual(5)
      expect(l2.latency.p99).toBeGreaterThanOrEqual(l2.latency.p50)
    }
    expect(l1.bytes).toBeGreaterThan(0)
  })

  it('compresses large values and still round-trips them', async () => {
    const namespace = uniqueNamespace(`lz4-${backend.name}`)
    const c = await make({ compressThreshold: '1kb', namespace })
    const big = { text: 'abcdefgh'.repeat(50_000), n: Array.from({ length: 1000 }, (_, i) => i) }
    const small = { text: 'under the threshold' }
    const msgpackBytes = serialize(big, MAX_VALUE, Infinity).raw.length
    await c.set('big', big)
    await c.set('small', small)
    expect(await c.get('big')).toEqual(big)
    expect(await c.get('small')).toEqual(small)
    const raw = backend.rawClient()
    if (raw === undefined) {
      // The in-process tier keeps the envelope bytes: both entries together take far less than big's msgpack.
      expect(c.stats().l1.bytes).toBeLessThan(msgpackBytes / 10)
      return
    }
    try {
      // What Redis holds: big's envelope says LZ4 and its payload is a fraction of the msgpack; small is stored as it is.
      const stored = decodeEnvelope((await raw.getBuffer(dataKey(namespace, 'big')))!)
      expect(stored.compressed).toBe(true)
      expect(stored.payload.length).toBeLessThan(msgpackBytes / 10)
      expect(deserialize(inflate(stored.payload, true, MAX_VALUE))).toEqual(big)
      const plain = decodeEnvelope((await raw.getBuffer(dataKey(namespace, 'small')))!)
      expect(plain.compressed).toBe(false)
      expect(deserialize(plain.payload)).toEqual(small)
    } finally {
      raw.disconnect()
    }
  })

  it('rejects operations after close', async () => {
    const c = await make()
    await c.close()
    await c.close()
    await expect(c.get('a')).rejects.toMatchObject({ code: 'E_CLOSED' })
    await expect(c.set('a', 1)).rejects.toMatchObject({ code: 'E_CLOSED' })
    expect(() => c.namespace('x')).toThrow(expect.objectContaining({ code: 'E_CLOSED' }))
  })
})
