import { describe, expect, it } from 'vitest'
import { CacheError, createCache, InvalidOptionError } from '../../src/index.js'
import type { CacheOptions, NearCache } from '../../src/index.js'
import { SharedTable } from '../../src/l1/shared_table.js'
import { GROUPS, OPTIONS } from '../../src/options/declarations.js'
import { declaredNames } from '../../src/options/declare.js'
import { resolveOptions } from '../../src/options/options.js'

/** The documented longest TTL: 2^47 ms (about 4,460 years). */
const MAX_TTL_MS = 2 ** 47

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
    ['empty namespace', { redis: false, namespace: '' }, /namespace must be segments .*it is empty/],
    ['namespace with |', { redis: false, namespace: 'a|b' }, /namespace must be .*'\|' is not allowed/],
    ['namespace with a glob', { redis: false, namespace: 'shop*' }, /'\*' is not allowed/],
    ['namespace with ?', { redis: false, namespace: 'sh?p' }, /'\?' is not allowed/],
    ['namespace with [ ]', { redis: false, namespace: 'sh[o]p' }, /'\[' is not allowed/],
    ['namespace with a backslash', { redis: false, namespace: 'sh\\op' }, /'\\' is not allowed/],
    ['namespace with a hash tag', { redis: false, namespace: '{shop}' }, /'\{' is not allowed/],
    ['namespace with a newline', { redis: false, namespace: 'shop\nFLUSHALL' }, /U\+000A is not allowed/],
    ['namespace with a space', { redis: false, namespace: 'my shop' }, /U\+0020 is not allowed/],
    ['namespace with a bidi override', { redis: false, namespace: 'shop\u202e' }, /U\+202E is not allowed/],
    ['namespace with a lone surrogate', { redis: false, namespace: 'shop\ud800' }, /U\+D800 is not allowed/],
    ['namespace with non-ASCII letters', { redis: false, namespace: 'café' }, /U\+00E9 is not allowed/],
    ['namespace starting with __nc', { redis: false, namespace: '__nc' }, /reserved/],
    ['namespace segment starting with __NC', { redis: false, namespace: 'shop:__NCx' }, /reserved/],
    ['namespace with an empty segment', { redis: false, namespace: 'shop::users' }, /empty segment/],
    ['namespace ending in :', { redis: false, namespace: 'shop:' }, /empty segment/],
    ['namespace over 256 characters', { redis: false, namespace: 'a'.repeat(257) }, /257 characters long/],
    ['namespace not a string', { redis: false, namespace: 5 as never }, /not a string/],
    ['ttl beyond what Redis stores', { redis: false, ttl: 1e20 }, /ttl must be at most 140737488355328 ms/],
    ['ttl one over the cap', { redis: false, ttl: 2 ** 47 + 1 }, /ttl must be at most/],
    ['ttl string beyond the cap', { redis: false, ttl: '999999999999d' }, /ttl must be at most/],
    ['l1.ttl beyond the cap', { redis: false, l1: { ttl: 1e300 } }, /l1.ttl must be at most/],
    ['l1.negativeTtl beyond the cap', { redis: false, l1: { negativeTtl: 2 ** 48 } }, /l1.negativeTtl must be at most/],
    ['connectTimeout beyond a timer', { redis: false, connectTimeout: 2 ** 31 }, /connectTimeout must be at most 2147483647 ms/],
    ['commandTimeout beyond a timer', { redis: false, commandTimeout: '30d' }, /commandTimeout must be at most/],
    ['resetTimeout beyond a timer', { redis: false, circuitBreaker: { resetTimeout: 1e12 } }, /circuitBreaker.resetTimeout must be at most/],
    ['stampedeLock.lease beyond a timer', { redis: false, stampedeLock: { lease: '100d' } }, /stampedeLock.lease must be at most/],
    ['maxValueBytes over 512 MiB', { redis: false, maxValueBytes: '10gb' }, /maxValueBytes must be at most 512mb \(got "10gb"\)/],
    ['maxValueBytes one byte over 512 MiB', { redis: false, maxValueBytes: 512 * 1024 * 1024 + 1 }, /maxValueBytes must be at most 512mb/],
    ['l1.maxBytes over 2 GiB', { redis: false, l1: { maxBytes: '100gb' } }, /l1.maxBytes must be at most 2gb \(got "100gb"\)/],
    ['l1.maxBytes just over 2 GiB', { redis: false, l1: { maxBytes: 2 ** 31 + 1 } }, /l1.maxBytes must be at most 2gb/],
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
    ['writeBehind.fsync junk', { redis: 'redis://127.0.0.1:1', writeBehind: { dir: '/tmp/x', fsync: 'sometimes' as never } }, /writeBehind.fsync is 'always', 'batch' or 'none' \(got "sometimes"\)/],
    ['writeBehind.maxAttempts over 100', { redis: 'redis://127.0.0.1:1', writeBehind: { dir: '/tmp/x', maxAttempts: 101 } }, /writeBehind.maxAttempts must be a whole number from 1 to 100/],
    ['unknown writeBehind option', { redis: 'redis://127.0.0.1:1', writeBehind: { dir: '/tmp/x', fsynch: 'always' } as never }, /Unknown writeBehind option 'fsynch'. Known: dir, fsync,/],
    ['null is a value, not "left out"', { redis: false, maxInFlight: null as never }, /maxInFlight must be a whole number of at least 1 \(got null\)/],
    ['codecWorkers.threads zero', { redis: false, codecWorkers: { threads: 0 } }, /codecWorkers.threads must be a whole number of at least 1/],
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

describe('what durations and sizes resolve to', () => {
  const KB = 1024
  const MB = 1024 * KB
  const GB = 1024 * MB
  const resolved = (o: CacheOptions) => resolveOptions({ redis: false, ...o })
  const withRedis = (o: CacheOptions) => resolveOptions({ redis: 'redis://127.0.0.1:1', ...o })

  it('durations are milliseconds: ms, s, m, h, d, fractions, bare numbers and digit strings', () => {
    const cases: [string | number, number][] = [
      ['500ms', 500],
      ['10s', 10_000],
      ['5m', 300_000],
      ['1h', 3_600_000],
      ['1d', 86_400_000],
      ['1.5s', 1500],
      ['2H', 7_200_000],
      [' 3s ', 3000],
      ['250', 250],
      [750, 750],
      [0.4, 1], // rounded, never below 1 ms
    ]
    for (const [given, ms] of cases) {
      const label = JSON.stringify(given)
      expect(resolved({ ttl: given }).ttl, `ttl ${label}`).toBe(ms)
      const l1 = resolved({ l1: { ttl: given, negativeTtl: given } }).l1
      expect(l1 && l1.ttl, `l1.ttl ${label}`).toBe(ms)
      expect(l1 && l1.negativeTtl, `l1.negativeTtl ${label}`).toBe(ms)
    }
    const o = withRedis({
      connectTimeout: '2s',
      commandTimeout: '1m',
      circuitBreaker: { resetTimeout: '30s' },
      stampedeLock: { lease: '1h', waitTimeout: '500ms' },
      writeBehind: { dir: '/tmp/x', flushInterval: '1s' },
    })
    expect(o.connectTimeout).toBe(2000)
    expect(o.commandTimeout).toBe(60_000)
    expect(o.circuitBreaker && o.circuitBreaker.resetTimeout).toBe(30_000)
    expect(o.stampedeLock).toEqual({ lease: 3_600_000, waitTimeout: 500 })
    expect(o.writeBehind && o.writeBehind.flushIntervalMs).toBe(1000)
  })

  it('Infinity and 0 where they are allowed: no expiry, L1 copies until the entry expires, no negative caching', () => {
    expect(resolved({ ttl: Infinity }).ttl).toBeUndefined()
    expect(resolved({}).ttl).toBeUndefined()
    expect(resolved({ l1: { ttl: Infinity, negativeTtl: 0 } }).l1).toMatchObject({ ttl: 0, negativeTtl: 0 })
  })

  it('sizes are bytes in powers of 1024: b, kb, mb, gb, any case, fractions rounded down', () => {
    const cases: [string | number, number][] = [
      ['512kb', 512 * KB],
      ['64mb', 64 * MB],
      ['2gb', 2 * GB],
      ['1.5mb', 1.5 * MB],
      ['300KB', 300 * KB],
      [' 1Mb ', MB],
      ['1000000b', 1_000_000],
      ['1000000', 1_000_000],
      [700_000, 700_000],
    ]
    for (const [given, n] of cases) {
      const label = JSON.stringify(given)
      const l1 = resolved({ l1: { maxBytes: given, maxEntryBytes: given } }).l1
      expect(l1 && l1.maxBytes, `l1.maxBytes ${label}`).toBe(n)
      expect(l1 && l1.maxEntryBytes, `l1.maxEntryBytes ${label}`).toBe(n)
    }
    expect(resolved({ maxValueBytes: '512kb' }).maxValueBytes).toBe(524_288)
    expect(resolved({ maxValueBytes: '512mb' }).maxValueBytes).toBe(512 * MB)
    expect(resolved({ compressThreshold: '1kb' }).compressThreshold).toBe(1024)
    expect(resolved({ compressThreshold: '1.5kb' }).compressThreshold).toBe(1536)
    expect(resolved({ compressThreshold: '1.0001kb' }).compressThreshold).toBe(1024)
    expect(resolved({ compressThreshold: false }).compressThreshold).toBe(Infinity)
    expect(resolved({ codecWorkers: { threshold: '16kb' } }).codecWorkers).toMatchObject({ threshold: 16 * KB })
    expect(withRedis({ writeBehind: { dir: '/tmp/x', maxDeadLetterBytes: '8mb' } }).writeBehind).toMatchObject({ maxDeadLetterBytes: 8 * MB })
  })

  it('the documented defaults', () => {
    const o = withRedis({ writeBehind: { dir: '/tmp/x' }, stampedeLock: true, codecWorkers: true })
    expect(o).toMatchObject({
      namespace: 'nc',
      ttl: undefined,
      ttlJitter: 0,
      l1: { maxBytes: 64 * MB, maxEntryBytes: MB, negativeTtl: 1000, ttl: 10_000 },
      maxKeyBytes: 1024,
      maxValueBytes: 16 * MB,
      compressThreshold: KB,
      connectTimeout: 5000,
      commandTimeout: 5000,
      clock: Date,
      batchGets: undefined,
      maxInFlight: 10_000,
      invalidation: { legacyChannel: false },
      circuitBreaker: { threshold: 5, resetTimeout: 5000 },
      stampedeLock: { lease: 10_000, waitTimeout: 5000 },
      writeBehind: { dir: '/tmp/x', fsync: 'batch', batchSize: 500, flushIntervalMs: 50, maxQueue: 100_000, maxAttempts: 5, maxDeadLetterBytes: 64 * MB },
      writer: undefined,
      suppressL2Errors: false,
      onError: undefined,
      codecWorkers: { threads: undefined, threshold: undefined, adaptive: false },
    })
    expect(resolveOptions({ redis: false })).toMatchObject({ stampedeLock: false, writeBehind: false, codecWorkers: false })
  })
})

describe('every declared option is read, and only those', () => {
  // Written out here, not derived from the declarations: a value that differs from each default.
  const TOP: Record<string, unknown> = {
    redis: 'rediss://127.0.0.1:2',
    namespace: 'shop',
    ttl: '1m',
    ttlJitter: 10,
    l1: { maxBytes: '1mb' },
    maxKeyBytes: 64,
    maxValueBytes: '1mb',
    compressThreshold: false,
    connectTimeout: '1s',
    commandTimeout: '2s',
    clock: { now: () => 0 },
    batchGets: false,
    clusterReadScript: false,
    workerConnections: 'owner',
    maxInFlight: 5,
    invalidation: false,
    circuitBreaker: false,
    stampedeLock: true,
    writeBehind: { dir: '/tmp/x' },
    writer: async () => {},
    suppressL2Errors: true,
    onError: () => {},
    codecWorkers: true,
    encryption: { keys: [{ id: 1, key: Buffer.alloc(32, 1) }] },
    access: { principals: { reader: { can: ['read'], keys: ['user:*'] } } },
    audit: { sink: '/tmp/audit.log' },
  }
  const NESTED: Record<string, Record<string, unknown>> = {
    l1: { maxBytes: '1mb', maxEntryBytes: '2kb', negativeTtl: 0, ttl: '1m', ttlJitter: 5, shareValues: true },
    invalidation: { legacyChannel: true },
    circuitBreaker: { threshold: 2, resetTimeout: '1s' },
    stampedeLock: { lease: '1s', waitTimeout: '2s' },
    writeBehind: { dir: '/tmp/x', fsync: 'always', batchSize: 10, flushInterval: '1s', maxQueue: 10, maxAttempts: 2, maxDeadLetterBytes: '1mb' },
    codecWorkers: { threads: 1, threshold: '16kb', adaptive: true },
    encryption: { keys: [{ id: 2, key: Buffer.alloc(32, 2).toString('base64') }], acceptPlaintext: true },
    audit: { sink: () => {}, operations: ['set'], hashKeys: true, hashKey: Buffer.alloc(32, 4), maxQueue: 5, maxFileBytes: '1kb', maxFiles: 2 },
  }
  const BASE = { redis: 'redis://127.0.0.1:1', writeBehind: { dir: '/tmp/base' } } as CacheOptions
  const message = (o: unknown) => {
    try {
      resolveOptions(o as CacheOptions)
    } catch (e) {
      expect((e as CacheError).code).toBe('E_INVALID_OPTION')
      return (e as Error).message
    }
    return 'accepted'
  }

  it('each option of createCache is accepted and changes what the cache runs with', () => {
    expect(declaredNames(OPTIONS).sort()).toEqual(Object.keys(TOP).sort())
    const base = resolveOptions(BASE) as unknown as Record<string, unknown>
    for (const [name, value] of Object.entries(TOP)) {
      const o = resolveOptions({ ...BASE, [name]: value } as CacheOptions) as unknown as Record<string, unknown>
      expect(o[name], name).not.toEqual(base[name])
    }
  })

  it('each option inside a group is accepted and changes what the cache runs with', () => {
    expect(Object.keys(GROUPS).sort()).toEqual(Object.keys(NESTED).sort())
    for (const [group, values] of Object.entries(NESTED)) {
      expect(declaredNames(GROUPS[group as keyof typeof GROUPS]).sort(), group).toEqual(Object.keys(values).sort())
      const required = group === 'writeBehind' ? { dir: '/tmp/base' } : group === 'encryption' ? { keys: [{ id: 1, key: Buffer.alloc(32, 1) }] } : group === 'audit' ? { sink: '/tmp/base.log', hashKey: Buffer.alloc(32, 3) } : {}
      const base = (resolveOptions({ ...BASE, [group]: required } as CacheOptions) as unknown as Record<string, Record<string, unknown>>)[group]
      for (const [name, value] of Object.entries(values)) {
        const o = resolveOptions({ ...BASE, [group]: { ...required, [name]: value } } as CacheOptions) as unknown as Record<string, Record<string, unknown>>
        expect(o[group], `${group}.${name}`).not.toEqual(base)
      }
    }
  })

  it('an unknown option is refused with a message listing every known one', () => {
    const msg = message({ ...BASE, colour: 'blue' })
    expect(msg).toMatch(/^Unknown option 'colour'\. Known options: /)
    const listed = (msg.match(/Known options: (.*)\.$/)?.[1] ?? '').split(', ')
    expect(listed.sort()).toEqual(Object.keys(TOP).sort())
    for (const [group, values] of Object.entries(NESTED)) {
      const required = group === 'writeBehind' ? { dir: '/tmp/base' } : group === 'encryption' ? { keys: [{ id: 1, key: Buffer.alloc(32, 1) }] } : group === 'audit' ? { sink: '/tmp/base.log', hashKey: Buffer.alloc(32, 3) } : {}
      const m = message({ ...BASE, [group]: { ...required, colour: 'blue' } })
      expect(m, group).toMatch(new RegExp(`^Unknown ${group} option 'colour'\\. Known: `))
      expect((m.match(/Known: (.*)\.$/)?.[1] ?? '').split(', ').sort(), group).toEqual(Object.keys(values).sort())
    }
  })
})

describe('limits on options (E_INVALID_OPTION), and what is still accepted', () => {
  it('each limit: its largest value is accepted, one more is refused', () => {
    const refused = (o: CacheOptions) => {
      try {
        resolveOptions(o)
      } catch (e) {
        return (e as CacheError).code
      }
      return 'accepted'
    }
    const pairs: [CacheOptions, CacheOptions][] = [
      [{ ttl: MAX_TTL_MS }, { ttl: MAX_TTL_MS + 1 }],
      [{ l1: { ttl: MAX_TTL_MS, negativeTtl: MAX_TTL_MS } }, { l1: { negativeTtl: MAX_TTL_MS + 1 } }],
      [{ maxValueBytes: '512mb' }, { maxValueBytes: 512 * 1024 * 1024 + 1 }],
      [{ l1: { maxBytes: '2gb' } }, { l1: { maxBytes: 2 ** 31 + 1 } }],
      [{ connectTimeout: 2 ** 31 - 1, commandTimeout: 2 ** 31 - 1 }, { commandTimeout: 2 ** 31 }],
      [{ namespace: 'x'.repeat(256) }, { namespace: 'x'.repeat(257) }],
      [{ namespace: 'shop:users' }, { namespace: 'shop:users:' }],
      [{ namespace: 'a.b-c_d:E9' }, { namespace: 'a.b-c_d:E9*' }],
      [{ namespace: '_nc:nc__:a__nc' }, { namespace: 'a:__nc' }],
    ]
    for (const [ok, bad] of pairs) {
      expect(refused({ redis: false, ...ok }), JSON.stringify(ok)).toBe('accepted')
      expect(refused({ redis: false, ...bad }), JSON.stringify(bad)).toBe('E_INVALID_OPTION')
    }
  })

  it('cache.namespace(name) takes a name or an a:b path under the same rule', async () => {
    const c = await l1Cache()
    expect(c.namespace('users').prefix).toBe('nc:users')
    expect(c.namespace('users:eu').prefix).toBe('nc:users:eu')
    for (const bad of ['a*', 'a b', '{x}', '__nc', 'a::b', '', 'x\u0000', 'a|b']) {
      expect(() => c.namespace(bad), bad).toThrow(expect.objectContaining({ code: 'E_INVALID_OPTION', message: expect.stringMatching(/^namespace name must be segments/) }))
    }
    await c.close()
  })

  it('an L1 the process cannot allocate is E_INVALID_OPTION naming the size, not a RangeError', () => {
    let err: unknown
    try {
      SharedTable.create(2 ** 50)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(InvalidOptionError)
    expect((err as Error).message).toMatch(/l1.maxBytes is 1125899906842624 bytes, more shared memory than this process can allocate/)
  })

  it('error messages quote at most 100 characters of a hostile value', () => {
    const err = (() => {
      try {
        resolveOptions({ redis: false, namespace: 'x'.repeat(5000) + '*' })
      } catch (e) {
        return e as Error
      }
      return undefined
    })()
    expect(err?.message.length).toBeLessThan(400)
    expect(err?.message).toMatch(/\.\.\. \(5001 characters\)/)
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

  it('E_INVALID_KEY: lone UTF-16 surrogates in keys and tags, which would collide with U+FFFD', async () => {
    const c = await l1Cache()
    await c.set('\ufffd', 'replacement char')
    await rejectsWith(c.get('\ud800'), 'E_INVALID_KEY', /lone UTF-16 surrogate \(U\+D800 at index 0\)/)
    await rejectsWith(c.set('a\udc00', 1), 'E_INVALID_KEY', /U\+DC00 at index 1/)
    await rejectsWith(c.has('ok\ud83d'), 'E_INVALID_KEY', /U\+D83D at index 2/)
    await rejectsWith(c.getMany(['ok', '\udfff\ud800']), 'E_INVALID_KEY')
    await rejectsWith(c.delete('\ud800'), 'E_INVALID_KEY')
    await rejectsWith(c.getOrSet('\ud800', () => 1), 'E_INVALID_KEY')
    await rejectsWith(c.compareAndSet('\ud800', 1, 2), 'E_INVALID_KEY')
    await rejectsWith(c.setMany([{ key: 'x\ud800y', value: 1 }]), 'E_INVALID_KEY')
    await rejectsWith(c.set('k', 1, { tags: ['t\ud800'] }), 'E_INVALID_KEY', /A tag contains a lone UTF-16 surrogate/)
    await rejectsWith(c.invalidateTags(['\udc00']), 'E_INVALID_KEY')
    // Well-formed pairs (astral characters) are fine, and U+FFFD keeps its own entry.
    expect(await c.set('\ud83d\ude00', 'smile', { tags: ['\ud83c\udf4e'] })).toBe(true)
    expect(await c.get('\ud83d\ude00')).toBe('smile')
    expect(await c.get('\ufffd')).toBe('replacement char')
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
    await rejectsWith(c.invalidatePrefix('user:\ud800'), 'E_INVALID_KEY', /lone UTF-16 surrogate/)
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
