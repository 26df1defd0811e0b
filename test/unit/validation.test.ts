import { describe, expect, it } from 'vitest'
import { CacheError, createCache, InvalidOptionError } from '../../src/index.js'
import type { CacheOptions, NearCache } from '../../src/index.js'

/** Bad input: one case per error code and per option message, on the in-process tier (no I/O involved). */
async function l1Cache(opts: CacheOptions = {}): Promise<NearCache> {
  return createCache({ redis: false, ...opts })
}

const rejectsWith = async (p: Promise<unknown>, code: string, message?: RegExp) => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err, 'expected a rejection').toBeInstanceOf(CacheError)
  expect((err as CacheError).code).toBe(code)
  if (message) expect((err as Error).message).toMatch(message)
}

describe('createCache option validation (E_INVALID_OPTION)', () => {
  const cases: [string, CacheOptions, RegExp][] = [
    ['unknown option', { redis: false, ttll: 5 } as CacheOptions, /Unknown option 'ttll'/],
    ['bad redis type', { redis: 42 as unknown as string }, /redis must be/],
    ['bad redis URL', { redis: 'localhost:6379' }, /redis:\/\//],
    ['empty namespace', { redis: false, namespace: '' }, /namespace must be/],
    ['namespace with |', { redis: false, namespace: 'a|b' }, /without '\|'/],
    ['zero ttl', { redis: false, ttl: 0 }, /ttl must be a positive/],
    ['negative ttl', { redis: false, ttl: -5 }, /ttl must be a positive/],
    ['bad duration unit', { redis: false, ttl: '5 weeks' }, /duration string/],
    ['NaN ttl', { redis: false, ttl: Number.NaN }, /ttl must be/],
    ['jitter over 100', { redis: false, ttlJitter: 150 }, /percentage from 0 to 100/],
    ['l1 not an object', { redis: false, l1: 'big' as unknown as false }, /l1 must be/],
    ['unknown l1 option', { redis: false, l1: { size: 1 } as never }, /Unknown l1 option/],
    ['bad l1.maxBytes', { redis: false, l1: { maxBytes: '64 lightyears' } }, /l1.maxBytes/],
    ['no tier at all', { redis: false, l1: false }, /no tier at all/],
    ['maxKeyBytes zero', { redis: false, maxKeyBytes: 0 }, /maxKeyBytes/],
    ['maxValueBytes negative', { redis: false, maxValueBytes: -1 }, /maxValueBytes/],
    ['compressThreshold junk', { redis: false, compressThreshold: 'lots' }, /compressThreshold/],
    ['clock without now', { redis: false, clock: {} as never }, /clock must be/],
    ['batchGets not boolean', { redis: false, batchGets: 'yes' as never }, /batchGets/],
    ['maxInFlight zero', { redis: false, maxInFlight: 0 }, /maxInFlight/],
    ['writeBehind without dir', { redis: 'redis://127.0.0.1:1', writeBehind: {} as never }, /writeBehind must be/],
    ['writeBehind without Redis', { redis: false, writeBehind: { dir: '/tmp/x' } }, /needs the redis option/],
    ['stampedeLock junk', { redis: false, stampedeLock: 'yes' as never }, /stampedeLock/],
    ['writer not a function', { redis: false, writer: 'db' as never }, /writer must be/],
    ['suppressL2Errors not boolean', { redis: false, suppressL2Errors: 1 as never }, /suppressL2Errors/],
    ['codecWorkers junk', { redis: false, codecWorkers: 'many' as never }, /codecWorkers/],
    ['circuitBreaker threshold 0', { redis: false, circuitBreaker: { threshold: 0 } }, /circuitBreaker.threshold/],
    ['empty cluster list', { redis: { cluster: [] } }, /redis.cluster must be a non-empty array/],
  ]
  it.each(cases)('%s', async (_name, opts, message) => {
    const err = await createCache(opts).then(
      async (c) => {
        await c.close()
        return undefined
      },
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(InvalidOptionError)
    expect((err as CacheError).code).toBe('E_INVALID_OPTION')
    expect((err as Error).message).toMatch(message)
  })

  it('accepts every documented duration and size form', async () => {
    for (const ttl of [1, '500ms', '10s', '5m', '1h', '1d', '1.5s', Infinity]) {
      const c = await l1Cache({ ttl, l1: { maxBytes: '1mb' }, maxValueBytes: '512kb', compressThreshold: false })
      await c.close()
    }
  })
})

describe('operation input validation', () => {
  it('E_INVALID_KEY: empty, non-string and over-long keys', async () => {
    const c = await l1Cache({ maxKeyBytes: 8 })
    await rejectsWith(c.get(''), 'E_INVALID_KEY', /non-empty string/)
    await rejectsWith(c.get(42 as unknown as string), 'E_INVALID_KEY')
    await rejectsWith(c.set(undefined as unknown as string, 1), 'E_INVALID_KEY')
    await rejectsWith(c.set('123456789', 1), 'E_INVALID_KEY', /maxKeyBytes \(8\)/)
    await rejectsWith(c.set('żżżżż', 1), 'E_INVALID_KEY', /10 bytes/)
    await rejectsWith(c.getMany(['ok', '']), 'E_INVALID_KEY')
    await rejectsWith(c.getMany('ok' as unknown as string[]), 'E_INVALID_KEY', /array of keys/)
    await rejectsWith(c.deleteMany([null as unknown as string]), 'E_INVALID_KEY')
    await rejectsWith(c.setMany([{ key: '', value: 1 }]), 'E_INVALID_KEY')
    expect(await c.set('12345678', 1)).toBe(true)
    await c.close()
  })

  it('E_INVALID_VALUE: undefined, functions and symbols, even nested; nothing is written', async () => {
    const c = await l1Cache()
    await rejectsWith(c.set('k', undefined), 'E_INVALID_VALUE', /Store null instead/)
    await rejectsWith(c.set('k', () => 1), 'E_INVALID_VALUE')
    await rejectsWith(c.set('k', Symbol('s')), 'E_INVALID_VALUE')
    await rejectsWith(c.set('k', { nested: { fn: () => 1 } }), 'E_INVALID_VALUE', /function/)
    await rejectsWith(c.set('k', [1, Symbol('x')]), 'E_INVALID_VALUE')
    await rejectsWith(c.setMany([{ key: 'a', value: 1 }, { key: 'b', value: undefined }]), 'E_INVALID_VALUE')
    await rejectsWith(c.compareAndSet('k', undefined, () => 2), 'E_INVALID_VALUE')
    await rejectsWith(c.getOrSet('k', () => ({ f: () => 1 })), 'E_INVALID_VALUE')
    expect(await c.getMany(['k', 'a', 'b'])).toEqual([undefined, undefined, undefined])
    // The codec still works after rejecting a value half-way through encoding it.
    await c.set('k', { fine: [1, 2, 3] })
    expect(await c.get('k')).toEqual({ fine: [1, 2, 3] })
    await c.close()
  })

  it('E_VALUE_TOO_LARGE: the encoded size is checked against maxValueBytes', async () => {
    const c = await l1Cache({ maxValueBytes: 1000 })
    await rejectsWith(c.set('big', 'x'.repeat(2000)), 'E_VALUE_TOO_LARGE', /over maxValueBytes \(1000\)/)
    await rejectsWith(c.getOrSet('big', () => 'x'.repeat(2000)), 'E_VALUE_TOO_LARGE')
    expect(await c.has('big')).toBe(false)
    expect(await c.set('small', 'x'.repeat(900))).toBe(true)
    await c.close()
  })

  it('E_INVALID_OPTION on operation options', async () => {
    const c = await l1Cache()
    await rejectsWith(c.set('k', 1, { ttl: 0 }), 'E_INVALID_OPTION', /ttl/)
    await rejectsWith(c.set('k', 1, { ttl: 'soon' }), 'E_INVALID_OPTION', /duration string/)
    await rejectsWith(c.set('k', 1, { nx: true, xx: true }), 'E_INVALID_OPTION', /cannot both/)
    await rejectsWith(c.set('k', 1, { nx: 'yes' as never }), 'E_INVALID_OPTION')
    await rejectsWith(c.set('k', 1, { tags: 'red' as never }), 'E_INVALID_OPTION', /tags must be an array/)
    await rejectsWith(c.set('k', 1, { tags: [''] }), 'E_INVALID_OPTION', /tag must be a non-empty/)
    await rejectsWith(c.set('k', 1, { expire: 5 } as never), 'E_INVALID_OPTION', /Unknown set option 'expire'/)
    await rejectsWith(c.set('k', 1, 'fast' as never), 'E_INVALID_OPTION', /options must be an object/)
    await rejectsWith(c.getOrSet('k', 5 as never), 'E_INVALID_OPTION', /loader function/)
    await rejectsWith(c.invalidateTags('red' as never), 'E_INVALID_OPTION')
    await rejectsWith(c.invalidatePrefix(5 as never), 'E_INVALID_OPTION')
    await rejectsWith(c.setMany('nope' as never), 'E_INVALID_OPTION')
    await rejectsWith(c.setMany([null as never]), 'E_INVALID_OPTION')
    await rejectsWith(c.compareAndSet('k', 1, 2, { tags: [] } as never), 'E_INVALID_OPTION')
    expect(() => c.namespace('a|b')).toThrow(expect.objectContaining({ code: 'E_INVALID_OPTION' }))
    expect(await c.has('k')).toBe(false)
    await c.close()
  })

  it('E_CLOSED after close', async () => {
    const c = await l1Cache()
    await c.close()
    await rejectsWith(c.has('k'), 'E_CLOSED', /createCache/)
  })
})
