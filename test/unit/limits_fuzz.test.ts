import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CacheError, createCache } from '../../src/index.js'
import type { CacheOptions, NearCache } from '../../src/index.js'
import { validateKey } from '../../src/keys.js'
import { resolveOptions, validateNamespace } from '../../src/options/options.js'

/** The documented limits (README, Security model), written out rather than imported. */
const MAX_TTL_MS = 2 ** 47
const MAX_TIMER_MS = 2 ** 31 - 1
const MAX_VALUE_BYTES = 512 * 1024 * 1024
const MAX_L1_BYTES = 2 * 1024 * 1024 * 1024

/**
 * Options, namespaces and keys are input: whatever is passed ends in a cache (or a
 * value) within the documented limits, or in a typed CacheError with a one-sentence
 * message; never a RangeError or TypeError, never a value Redis would refuse later.
 */

/** The documented namespace rule, written independently of src/options/namespace.ts. */
const NAMESPACE_RULE = /^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)*$/
const namespaceOk = (ns: string) => ns.length <= 256 && NAMESPACE_RULE.test(ns) && !ns.split(':').some((s) => /^__nc/i.test(s))

/** The outcome of `fn`: its value, or the code of the CacheError it threw; anything else fails the test. */
function outcome<T>(fn: () => T, codes: readonly string[]): { ok: true; value: T } | { ok: false; code: string } {
  try {
    return { ok: true, value: fn() }
  } catch (err) {
    if (!(err instanceof CacheError)) throw new Error(`not a CacheError: ${String(err)}`, { cause: err })
    expect(codes).toContain(err.code)
    expect(err.message.length).toBeLessThan(700)
    expect(err.message).not.toMatch(/\n/)
    return { ok: false, code: err.code }
  }
}

async function outcomeAsync<T>(fn: () => Promise<T>, codes: readonly string[]): Promise<{ ok: true; value: T } | { ok: false; code: string }> {
  try {
    return { ok: true, value: await fn() }
  } catch (err) {
    if (!(err instanceof CacheError)) throw new Error(`not a CacheError: ${String(err)}`, { cause: err })
    expect(codes).toContain(err.code)
    return { ok: false, code: err.code }
  }
}

// ── hostile values ─────────────────────────────────────────────────────────

const hugeNumbers = fc.constantFrom(
  1e20, 1e21, 1e300, Number.MAX_VALUE, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2, 2 ** 47, 2 ** 47 + 1, 2 ** 31 - 1, 2 ** 31,
  2 ** 31 + 1, 2 ** 53, 512 * 1024 * 1024, 512 * 1024 * 1024 + 1, 2 ** 63, Infinity, -Infinity, NaN, -0, 0, -1, 0.4, 0.5, 1.5,
  Number.MIN_VALUE, -1e20,
)
const unitStrings = fc.constantFrom(
  '10gb', '100gb', '2gb', '3gb', '512mb', '513mb', '1e20', '1e+20', '9'.repeat(30), '9'.repeat(400) + 'd', '0', '-5', '5 weeks', 'NaN',
  'Infinity', '1.5s', '500ms', '10s', '5m', '1h', '1d', '99999999999d', '64mb', '256kb', '1kb', '1b', ' 1mb ', '1MB', '\u0000', '',
  '1\n', '0x10', '1_000', '１０ｓ',
)
const weird = fc.oneof(
  fc.constantFrom(null, undefined, true, false, {}, [], () => 1, Symbol('s'), 10n, new Date(0), Object.create(null)),
  fc.string({ maxLength: 12 }),
)
const hostile = fc.oneof(hugeNumbers, unitStrings, fc.double(), fc.integer(), weird)

const namespaceLike = fc.oneof(
  fc.constantFrom('nc', 'shop', 'shop:users', '__nc', '__NC:x', 'a*', 'a?', '[a]', 'a\\b', '{a}', 'a|b', 'a b', 'a\nb', 'a\u202eb',
    'a\ud800', ':a', 'a:', 'a::b', '', 'x'.repeat(256), 'x'.repeat(257), 'café', 'a.b-c_d', '\u0000', 'a\u0085b'),
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.array(fc.constantFrom('a', 'Z', '9', '_', '.', '-', ':', '*', '|', '{', '}', '\\', ' ', '\t', '\u00e9', '\ud800', '__nc'), { maxLength: 12 }).map((p) => p.join('')),
)

/** Mostly a plausible value for the field, sometimes a hostile one. */
const field = (...plausible: unknown[]) => fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...plausible) }, { weight: 1, arbitrary: hostile })
const durations = ['500ms', '10s', 1, 1000, '1d', 2 ** 31 - 1]

/** An options object: some known keys with plausible or hostile values, rarely an unknown key. */
const optionsArb = fc.record(
  {
    namespace: fc.oneof({ weight: 3, arbitrary: fc.constantFrom('nc', 'shop', 'a:b') }, { weight: 1, arbitrary: namespaceLike }, { weight: 1, arbitrary: weird }),
    ttl: field(...durations, 2 ** 47, Infinity),
    ttlJitter: field(0, 10, 100),
    maxKeyBytes: field(16, 1024, 65_535),
    maxValueBytes: field('1mb', '512mb', 1024),
    compressThreshold: field('1kb', false, 1),
    connectTimeout: field(...durations),
    commandTimeout: field(...durations),
    maxInFlight: field(1, 100),
    l1: fc.oneof(
      { weight: 6, arbitrary: fc.record({ maxBytes: field('256kb', '1mb', '2gb'), maxEntryBytes: field('1kb', '1mb'), negativeTtl: field(0, ...durations), ttl: field(...durations, Infinity) }, { requiredKeys: [] }) },
      { weight: 1, arbitrary: fc.constant(false) },
      { weight: 1, arbitrary: weird },
    ),
    circuitBreaker: fc.oneof(fc.record({ threshold: field(1, 5), resetTimeout: field(...durations) }, { requiredKeys: [] }), fc.constant(false), weird),
    stampedeLock: fc.oneof(fc.record({ lease: field(...durations), waitTimeout: field(...durations) }, { requiredKeys: [] }), fc.boolean(), weird),
    batchGets: field(true, false),
    invalidation: field(true, false),
    suppressL2Errors: field(true, false),
  },
  { requiredKeys: [] },
).chain((o) => fc.oneof({ weight: 20, arbitrary: fc.constant(o) }, { weight: 1, arbitrary: hostile.map((bogus) => ({ ...o, bogus })) }))
  .map((o) => ({ redis: false as const, ...o }))

/** A reference reading of a size or duration option (number, or digits and a unit), independent of src/util/units.ts. */
function amount(v: unknown, units: Record<string, number>, bare: string): number | undefined {
  if (typeof v === 'number') return v
  if (typeof v !== 'string') return undefined
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(v)
  const unit = m ? units[(m[2] || bare).toLowerCase()] : undefined
  return m && unit !== undefined ? Number(m[1]) * unit : undefined
}
const MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const BYTES = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }

/** Whether a per-call `ttl` must be accepted: none, Infinity, or 1 ms to 2^47 ms. */
function ttlAllowed(v: unknown): boolean {
  if (v === undefined || v === Infinity) return true
  const ms = amount(v, MS, 'ms')
  return ms !== undefined && Number.isFinite(ms) && ms > 0 && Math.max(1, Math.round(ms)) <= 2 ** 47
}

/** What an accepted option object must satisfy: every limit, whatever came in. */
function checkResolved(o: ReturnType<typeof resolveOptions>): void {
  expect(namespaceOk(o.namespace)).toBe(true)
  if (o.ttl !== undefined) expect(Number.isSafeInteger(o.ttl) && o.ttl >= 1 && o.ttl <= MAX_TTL_MS).toBe(true)
  expect(Number.isSafeInteger(o.maxValueBytes) && o.maxValueBytes >= 1 && o.maxValueBytes <= MAX_VALUE_BYTES).toBe(true)
  for (const t of [o.connectTimeout, o.commandTimeout]) expect(t >= 1 && t <= MAX_TIMER_MS).toBe(true)
  if (o.circuitBreaker) expect(o.circuitBreaker.resetTimeout <= MAX_TIMER_MS).toBe(true)
  if (o.stampedeLock) expect(o.stampedeLock.lease <= MAX_TIMER_MS && o.stampedeLock.waitTimeout <= MAX_TIMER_MS).toBe(true)
  if (o.l1) {
    expect(o.l1.maxBytes >= 256 * 1024 && o.l1.maxBytes <= MAX_L1_BYTES).toBe(true)
    expect(o.l1.ttl >= 0 && o.l1.ttl <= MAX_TTL_MS).toBe(true)
    expect(o.l1.negativeTtl >= 0 && o.l1.negativeTtl <= MAX_TTL_MS).toBe(true)
  }
}

describe('option objects (fuzz)', () => {
  it('10,000 generated option objects through resolveOptions: within every limit, or E_INVALID_OPTION', () => {
    let accepted = 0
    fc.assert(
      fc.property(optionsArb, (opts) => {
        const r = outcome(() => resolveOptions(opts as CacheOptions), ['E_INVALID_OPTION'])
        if (r.ok) {
          checkResolved(r.value)
          accepted++
        }
      }),
      { numRuns: 10_000 },
    )
    // The generator reaches both sides: this would be 0 if every object were refused.
    expect(accepted).toBeGreaterThan(20)
  })

  it('300 of them through createCache({ redis: false }) with a small L1: a working cache or E_INVALID_OPTION', async () => {
    let created = 0
    await fc.assert(
      fc.asyncProperty(optionsArb, fc.oneof(fc.constantFrom('256kb', '1mb', '2gb'), hugeNumbers, unitStrings), async (opts, maxBytes) => {
        // Every case has an L1 size: up to 2 GiB it becomes a small table (nothing big is allocated); larger ones stay, and must be refused, not thrown.
        const size = amount(maxBytes, BYTES, 'b')
        const l1 = { ...(opts.l1 && typeof opts.l1 === 'object' ? opts.l1 : {}), maxBytes: size !== undefined && size <= 2 ** 31 ? '256kb' : maxBytes }
        const small = { ...opts, l1 }
        const r = await outcomeAsync(() => createCache(small as CacheOptions), ['E_INVALID_OPTION'])
        if (!r.ok) return
        created++
        const c = r.value
        try {
          const w = await outcomeAsync(() => c.set('k', 'v', { ttl: '1h' }), ['E_VALUE_TOO_LARGE'])
          if (w.ok) expect(await c.get('k')).toBe('v')
        } finally {
          await c.close()
        }
      }),
      { numRuns: 300 },
    )
    expect(created).toBeGreaterThan(0)
  })
})

describe('namespaces (fuzz)', () => {
  let cache: NearCache
  beforeAll(async () => {
    cache = await createCache({ redis: false, l1: { maxBytes: '256kb' } })
  })
  afterAll(async () => {
    await cache.close()
  })

  it('10,000 generated namespaces: accepted exactly when they follow the documented rule, by createCache and cache.namespace()', () => {
    let accepted = 0
    fc.assert(
      fc.property(namespaceLike, (ns) => {
        const root = outcome(() => validateNamespace(ns), ['E_INVALID_OPTION'])
        const child = outcome(() => cache.namespace(ns), ['E_INVALID_OPTION'])
        expect(root.ok, JSON.stringify(ns)).toBe(namespaceOk(ns))
        expect(child.ok).toBe(root.ok)
        if (child.ok) {
          expect(child.value.prefix).toBe(`nc:${ns}`)
          accepted++
        }
      }),
      { numRuns: 10_000 },
    )
    expect(accepted).toBeGreaterThan(100)
  })
})

describe('keys and per-call TTLs (fuzz)', () => {
  let cache: NearCache
  beforeAll(async () => {
    cache = await createCache({ redis: false, l1: { maxBytes: '1mb' }, maxKeyBytes: 64 })
  })
  afterAll(async () => {
    await cache.close()
  })

  const keyArb = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 24 }),
    fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 24 }),
    fc.constantFrom('\ud800', '\udfff', '\ufffd', 'a\ud800b', '\ud83d\ude00', '\ude00\ud83d', '', 'x'.repeat(65), 'ż'.repeat(33)),
  )

  it('10,000 generated keys: well-formed keys round-trip and never collide; the rest are E_INVALID_KEY', async () => {
    let accepted = 0
    await fc.assert(
      fc.asyncProperty(keyArb, async (key) => {
        const v = outcome(() => validateKey(key, 64), ['E_INVALID_KEY'])
        // In a u-mode regex a surrogate pair is one code point: only lone surrogates match.
        const expectOk = key.length > 0 && !/[\ud800-\udfff]/u.test(key) && Buffer.byteLength(key) <= 64
        expect(v.ok, JSON.stringify(key)).toBe(expectOk)
        // UTF-8 is one-to-one on well-formed strings: no two accepted keys share bytes.
        if (v.ok) expect(Buffer.from(key, 'utf8').toString('utf8')).toBe(key)
        const set = await outcomeAsync(() => cache.set(key, key), ['E_INVALID_KEY'])
        expect(set.ok).toBe(expectOk)
        if (set.ok) {
          accepted++
          expect(await cache.get(key)).toBe(key)
        } else {
          expect((await outcomeAsync(() => cache.get(key), ['E_INVALID_KEY'])).ok).toBe(false)
        }
      }),
      { numRuns: 10_000 },
    )
    expect(accepted).toBeGreaterThan(1000)
  })

  it('10,000 generated per-call TTLs (set, getOrSet with softTtl and grace): stored, or E_INVALID_OPTION', async () => {
    let stored = 0
    await fc.assert(
      fc.asyncProperty(hostile, hostile, hostile, async (ttl, softTtl, grace) => {
        const r = await outcomeAsync(() => cache.set('t', 1, { ttl: ttl as number }), ['E_INVALID_OPTION'])
        expect(r.ok, fc.stringify(ttl)).toBe(ttlAllowed(ttl))
        if (r.ok) stored++
        await outcomeAsync(() => cache.getOrSet('g', () => 2, { ttl: ttl as number, softTtl: softTtl as number, grace: grace as number }), ['E_INVALID_OPTION'])
      }),
      { numRuns: 10_000 },
    )
    expect(stored).toBeGreaterThan(100)
  })
})
