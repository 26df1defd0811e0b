import { isDeepStrictEqual } from 'node:util'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { allBackends, cacheOn, cluster, memory, standalone } from '../helpers/backends.js'
import { ManualClock } from '../helpers/clock.js'
import { ReferenceModel } from '../helpers/reference_model.js'

/**
 * Model-based test: long random sequences of operations run against the cache
 * and against a plain in-memory reference; every answer must be identical.
 * TTLs are hours long on an injected clock, so Redis' own expiry never fires
 * during a run while logical expiry is exercised by moving the clock.
 */
const HOUR = 3_600_000
const key = fc.constantFrom('a', 'ab', 'abc', 'b', 'b:1', 'b:2', 'user:1', 'user:2', 'user:10', '{h}x', '{h}y', 'zażółć', 'a*')
const prefix = fc.constantFrom('', 'a', 'ab', 'b:', 'user:', 'user:1', '{h}', 'zz', 'a*')
const tag = fc.constantFrom('red', 'green', 'blue')
const tags = fc.option(fc.uniqueArray(tag, { minLength: 1, maxLength: 2 }), { nil: undefined, freq: 2 })
const ttl = fc.option(fc.constantFrom(HOUR, 2 * HOUR, 5 * HOUR), { nil: undefined })
const value = fc.oneof(
  fc.constantFrom(null, 0, '', false, true, 1.5, -7, 'text'),
  fc.integer(),
  fc.string({ maxLength: 20 }),
  fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }),
  fc.date({ min: new Date(0), max: new Date(4e12), noInvalidDate: true }),
  fc.array(fc.oneof(fc.integer(), fc.string({ maxLength: 5 }), fc.constant(null)), { maxLength: 5 }),
  fc.dictionary(fc.string({ minLength: 1, maxLength: 4 }), fc.oneof(fc.integer(), fc.boolean(), fc.string({ maxLength: 4 })), { maxKeys: 4 }),
  fc.array(fc.tuple(fc.string({ maxLength: 3 }), fc.integer()), { maxLength: 3 }).map((kv) => new Map(kv)),
  fc.uniqueArray(fc.integer({ min: 0, max: 20 }), { maxLength: 4 }).map((xs) => new Set(xs)),
  fc.uint8Array({ maxLength: 8 }),
)

type Op =
  | { op: 'get'; key: string }
  | { op: 'getSync'; key: string }
  | { op: 'has'; key: string }
  | { op: 'getMany'; keys: string[] }
  | { op: 'set'; key: string; value: unknown; ttl?: number; tags?: string[]; mode?: 'nx' | 'xx' }
  | { op: 'setMany'; entries: { key: string; value: unknown; ttl?: number; tags?: string[] }[] }
  | { op: 'delete'; key: string }
  | { op: 'deleteMany'; keys: string[] }
  | { op: 'getOrSet'; key: string; value?: unknown; ttl?: number; tags?: string[] }
  | { op: 'cas'; key: string; expected?: unknown; next: unknown; ttl?: number }
  | { op: 'invalidateTags'; tags: string[] }
  | { op: 'invalidatePrefix'; prefix: string }
  | { op: 'clear' }
  | { op: 'advance'; ms: number }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('get' as const), key }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant('getSync' as const), key }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('has' as const), key }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('getMany' as const), keys: fc.array(key, { maxLength: 6 }) }), weight: 2 },
  {
    arbitrary: fc.record(
      { op: fc.constant('set' as const), key, value, ttl, tags, mode: fc.option(fc.constantFrom('nx' as const, 'xx' as const), { nil: undefined }) },
      { requiredKeys: ['op', 'key', 'value'] },
    ),
    weight: 6,
  },
  {
    arbitrary: fc.record({
      op: fc.constant('setMany' as const),
      entries: fc.uniqueArray(fc.record({ key, value, ttl, tags }, { requiredKeys: ['key', 'value'] }), { maxLength: 4, selector: (e) => e.key }),
    }),
    weight: 2,
  },
  { arbitrary: fc.record({ op: fc.constant('delete' as const), key }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('deleteMany' as const), keys: fc.array(key, { maxLength: 4 }) }), weight: 1 },
  {
    arbitrary: fc.record({ op: fc.constant('getOrSet' as const), key, value: fc.option(value, { nil: undefined }), ttl, tags }, { requiredKeys: ['op', 'key'] }),
    weight: 2,
  },
  {
    arbitrary: fc.record({ op: fc.constant('cas' as const), key, expected: fc.option(value, { nil: undefined }), next: value, ttl }, { requiredKeys: ['op', 'key', 'next'] }),
    weight: 2,
  },
  { arbitrary: fc.record({ op: fc.constant('invalidateTags' as const), tags: fc.uniqueArray(tag, { minLength: 1, maxLength: 2 }) }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('invalidatePrefix' as const), prefix }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('clear' as const) }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.constantFrom(HOUR / 2, HOUR, 3 * HOUR) }), weight: 2 },
)

// Every backend with its default shared L1, plus Redis behind an L1 small enough to
// evict all the time, and Redis with no L1 at all; and the shared frozen values of
// l1.shareValues (the test never changes a value it reads).
const variants = [
  ...allBackends.map((backend) => ({ name: backend.name, backend, options: {} })),
  { name: 'standalone, 256kb L1', backend: standalone, options: { l1: { maxBytes: '256kb' } } },
  { name: 'cluster, no L1', backend: cluster, options: { l1: false as const } },
  { name: 'memory, shareValues', backend: memory, options: { l1: { shareValues: true } } },
  { name: 'standalone, 256kb L1, shareValues', backend: standalone, options: { l1: { maxBytes: '256kb', shareValues: true } } },
]

describe.each(variants)('model-based on $name', ({ backend, options }) => {
  it('answers exactly like the reference model', { timeout: 240_000 }, async () => {
    // CAS on a value read back from the cache must compare equal to what was written.
    const numRuns = backend.name === 'memory' ? 500 : 250
    let steps = 0
    let runs = 0
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 60 }), async (ops) => {
        runs++
        const clock = new ManualClock()
        const model = new ReferenceModel()
        model.now = clock.now()
        const cache = await cacheOn(backend, { clock, ...options })
        try {
          for (const [i, o] of ops.entries()) {
            let got: unknown
            let want: unknown
            switch (o.op) {
              case 'get':
                ;[got, want] = [await cache.get(o.key), model.get(o.key)]
                break
              case 'getSync': {
                // L1 alone: without Redis it is the whole truth; with Redis, a miss is
                // allowed (the key may be only in Redis), a wrong value never.
                got = cache.getSync(o.key)
                want = model.get(o.key)
                if (backend.name !== 'memory' && got === undefined) want = undefined
                break
              }
              case 'has':
                ;[got, want] = [await cache.has(o.key), model.has(o.key)]
                break
              case 'getMany':
                ;[got, want] = [await cache.getMany(o.keys), model.getMany(o.keys)]
                break
              case 'set': {
                const opts = { ttl: o.ttl, tags: o.tags, nx: o.mode === 'nx', xx: o.mode === 'xx' }
                ;[got, want] = [await cache.set(o.key, o.value, opts), model.set(o.key, o.value, opts)]
                break
              }
              case 'setMany':
                ;[got, want] = [await cache.setMany(o.entries), model.setMany(o.entries)]
                break
              case 'delete':
                ;[got, want] = [await cache.delete(o.key), model.deleteMany([o.key]) === 1]
                break
              case 'deleteMany':
                ;[got, want] = [await cache.deleteMany(o.keys), model.deleteMany(o.keys)]
                break
              case 'getOrSet':
                ;[got, want] = [await cache.getOrSet(o.key, () => o.value, { ttl: o.ttl, tags: o.tags }), model.getOrSet(o.key, o.value, { ttl: o.ttl, tags: o.tags })]
                break
              case 'cas':
                ;[got, want] = [await cache.compareAndSet(o.key, o.expected, o.next, { ttl: o.ttl }), model.compareAndSet(o.key, o.expected, o.next, o.ttl)]
                break
              case 'invalidateTags':
                ;[got, want] = [await cache.invalidateTags(o.tags), model.invalidateTags(o.tags)]
                break
              case 'invalidatePrefix':
                ;[got, want] = [await cache.invalidatePrefix(o.prefix), model.invalidatePrefix(o.prefix)]
                break
              case 'clear':
                ;[got, want] = [await cache.clear(), model.clear()]
                break
              case 'advance':
                clock.advance(o.ms)
                model.now = clock.now()
                break
            }
            steps++
            if (!isDeepStrictEqual(got, want)) {
              throw new Error(`step ${i} ${JSON.stringify(o, replacer)}: cache answered ${show(got)}, model ${show(want)}`)
            }
          }
        } finally {
          await cache.clear()
          await cache.close()
        }
      }),
      { numRuns, endOnFailure: true },
    )
    // Every generated run was played against the cache, operation by operation.
    expect(runs).toBe(numRuns)
    expect(steps).toBeGreaterThanOrEqual(numRuns)
  })
})

function replacer(_k: string, v: unknown): unknown {
  if (typeof v === 'bigint') return `${v}n`
  if (v instanceof Map) return { Map: [...v] }
  if (v instanceof Set) return { Set: [...v] }
  return v
}

function show(v: unknown): string {
  return JSON.stringify(v, replacer) ?? String(v)
}
