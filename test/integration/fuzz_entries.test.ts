// Fuzz: envelope bytes planted in a real Redis under a cache's namespace (as
// anyone who can write to that Redis can), read back through every read
// operation. 12,000 generated and mutated byte strings (valid envelopes with
// mutated headers, flags, tag sections and payloads, checksums recomputed;
// random bytes; truncations; LZ4 headers with lying sizes; deep and wide
// msgpack) go through getMany in pipelined batches, and a few hundred through
// each single-key operation. Every case ends in a value, a miss or a typed
// CacheError: no crash, no unhandled rejection, RSS bounded.
import fc from 'fast-check'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { lz4Run, lyingLz4, plant } from '../../bench/hostile_values.js'
import { encodeEnvelope } from '../../src/codec/envelope.js'
import { checkDecodable, deserialize, serialize } from '../../src/codec/value_codec.js'
import { CacheError, createCache } from '../../src/index.js'
import type { NearCache } from '../../src/index.js'
import { h32, initHash } from '../../wasm/hash.js'
import { uniqueNamespace } from '../helpers/backends.js'

const MAX = 256 * 1024
const BULK = 12_000
const SINGLE = 300
const SEED = 0x5eed10

let redis: Redis
let cache: NearCache
const events: Error[] = []
const unhandled: unknown[] = []
const onUnhandled = (reason: unknown) => unhandled.push(reason)
let rssStart = 0
let rssPeak = 0
const sampleRss = () => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss))

beforeAll(async () => {
  await initHash()
  process.on('unhandledRejection', onUnhandled)
  redis = new Redis(inject('redisUrl'))
  cache = await createCache({ redis: inject('redisUrl'), namespace: uniqueNamespace('fuzz'), maxValueBytes: MAX })
  cache.on('error', (e) => events.push(e))
  rssStart = process.memoryUsage().rss
})
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled)
  await cache.close()
  redis.disconnect()
})

/** Rewrites the checksum the way encodeEnvelope does: an attacker can. */
const reseal = (b: Buffer) => {
  if (b.length >= 12) b.writeUInt32LE(h32(b.subarray(12)), 8)
  return b
}

const values = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.anything({ maxDepth: 3, withMap: true, withSet: true, withDate: true, withTypedArray: true, withBigInt: true, withSparseArray: false }),
  fc.string({ minLength: 1000, maxLength: 5000 }).map((s) => s.repeat(3)), // compressible: LZ4 payloads
)

/** A valid envelope of a generated value (tags, TTLs, compression as a write makes them). */
const validEnvelope = fc
  .record({ value: values, tags: fc.option(fc.array(fc.string({ maxLength: 12 }), { maxLength: 3 }), { nil: undefined }), expires: fc.boolean() })
  .map(({ value, tags, expires }) => {
    let enc
    try {
      enc = serialize(value, MAX, 1024)
    } catch {
      enc = serialize(null, MAX, 1024)
    }
    const now = Date.now()
    return encodeEnvelope(enc.stored, {
      createdAt: now,
      expiresAt: expires ? now + 3_600_000 : 0,
      softExpiresAt: 0,
      staleUntil: 0,
      tags: tags?.map((name, i) => ({ name, epoch: i })),
      compressed: enc.compressed,
      codec: 0,
    })
  })

/** One mutation of envelope bytes. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('byte' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('header' as const), at: fc.integer({ min: 0, max: 47 }), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('flags' as const), at: fc.constant(3), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('u32' as const), at: fc.constantFrom(4, 44, 46), value: fc.nat() }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(), value: fc.constant(0) }),
  fc.record({ kind: fc.constant('lz4claim' as const), at: fc.constant(0), value: fc.nat() }),
)

function mutate(b: Buffer, muts: { kind: string; at: number; value: number }[], resealIt: boolean): Buffer {
  let out = Buffer.from(b)
  for (const m of muts) {
    if (out.length === 0) break
    const at = m.at % out.length
    if (m.kind === 'byte' || m.kind === 'header' || m.kind === 'flags') out[at] = m.value
    else if (m.kind === 'u32' && at + 4 <= out.length) out.writeUInt32LE(m.value >>> 0, at)
    else if (m.kind === 'truncate') out = out.subarray(0, at)
    else if (m.kind === 'lz4claim' && out.length >= 48) {
      const headerLength = out.readUInt32LE(4)
      if (headerLength + 4 <= out.length) out.writeUInt32LE(m.value >>> 0, headerLength)
    }
  }
  return resealIt ? reseal(out) : out
}

const mutated = fc.tuple(validEnvelope, fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.boolean()).map(([b, muts, r]) => mutate(b, muts, r))

/** Deep and wide msgpack, and lying LZ4 headers, in valid envelopes. */
const hostilePayload = fc.oneof(
  fc.record({ depth: fc.integer({ min: 100, max: 5000 }), open: fc.constantFrom(0x91, 0x81, 0xd4) }).map(({ depth, open }) =>
    plant(Buffer.concat([open === 0xd4 ? Buffer.alloc(depth * 3).fill(Buffer.from([0xd4, 0x73, 0x00])) : Buffer.alloc(depth, open), Buffer.alloc(depth, 0)]), false),
  ),
  fc.record({ n: fc.nat(), head: fc.constantFrom(0xdc, 0xdd, 0xde, 0xdf, 0xc6, 0xdb, 0xc9), fill: fc.integer({ min: 0, max: 255 }), len: fc.integer({ min: 0, max: 4000 }) }).map(({ n, head, fill, len }) => {
    const h = Buffer.alloc(5)
    h[0] = head
    if (head === 0xdc || head === 0xde) h.writeUInt16BE(n & 0xffff, 1)
    else h.writeUInt32BE(n >>> 0, 1)
    return plant(Buffer.concat([head === 0xdc || head === 0xde ? h.subarray(0, 3) : h, Buffer.alloc(len, fill)]), false)
  }),
  fc.record({ fill: fc.constantFrom(0x80, 0x90, 0x00, 0xc0), total: fc.integer({ min: 64, max: 4 * MAX }), count: fc.nat() }).map(({ fill, total, count }) => {
    const h = Buffer.alloc(5)
    h[0] = 0xdd
    h.writeUInt32BE(Math.min(count, total - 5), 1)
    return plant(lz4Run(h, fill, total), true)
  }),
  fc.record({ claim: fc.nat(), bytes: fc.integer({ min: 4, max: 200 }) }).map(({ claim, bytes }) => plant(lyingLz4(claim, bytes), true)),
  fc.uint8Array({ minLength: 0, maxLength: 300 }).map((p) => plant(Buffer.from(p), false)),
  fc.uint8Array({ minLength: 0, maxLength: 300 }).map((p) => plant(Buffer.from(p), true)),
)

const randomBytes = fc.uint8Array({ minLength: 0, maxLength: 200 }).map((b) => Buffer.from(b))
const withMagic = fc.uint8Array({ minLength: 0, maxLength: 200 }).map((b) => reseal(Buffer.concat([Buffer.from([0x4e, 0x43, 2]), Buffer.from(b)])))

const entries = fc.oneof({ arbitrary: mutated, weight: 5 }, { arbitrary: hostilePayload, weight: 3 }, { arbitrary: validEnvelope, weight: 1 }, { arbitrary: randomBytes, weight: 1 }, { arbitrary: withMagic, weight: 1 })

/** A case's outcome is fine when it is a value, a miss, or a rejection with a typed CacheError. */
async function outcome(p: Promise<unknown>): Promise<'value' | 'miss' | 'typed'> {
  try {
    return (await p) === undefined ? 'miss' : 'value'
  } catch (err) {
    expect(err).toBeInstanceOf(CacheError)
    return 'typed'
  }
}

describe('fuzz: planted entries through every read operation', () => {
  it(`${BULK} generated and mutated entries through getMany (pipelined)`, async () => {
    const cases = fc.sample(entries, { numRuns: BULK, seed: SEED })
    const counts = { value: 0, miss: 0, typed: 0 }
    for (let start = 0; start < cases.length; start += 500) {
      const batch = cases.slice(start, start + 500)
      const pipe = redis.pipeline()
      batch.forEach((b, i) => pipe.set(`${cache.prefix}:bulk${start + i}`, b))
      await pipe.exec()
      const keys = batch.map((_, i) => `bulk${start + i}`)
      try {
        const got = await cache.getMany(keys)
        expect(got).toHaveLength(batch.length)
        for (const v of got) counts[v === undefined ? 'miss' : 'value']++
      } catch (err) {
        expect(err).toBeInstanceOf(CacheError)
        counts.typed += batch.length
      }
      sampleRss()
    }
    expect(counts.value + counts.miss + counts.typed).toBe(BULK)
    // The corpus is mostly hostile, but not only: some values survive mutation.
    expect(counts.value).toBeGreaterThan(100)
    expect(counts.miss).toBeGreaterThan(BULK / 2)
    expect(events.length).toBeGreaterThan(BULK / 2)
    expect(events.every((e) => e instanceof CacheError)).toBe(true)
    expect(unhandled).toEqual([])
    expect(rssPeak - rssStart).toBeLessThan(300 * 1024 * 1024)
  }, 120_000)

  it(`${SINGLE} entries each through get, has, getOrSet and compareAndSet`, async () => {
    let n = 0
    await fc.assert(
      fc.asyncProperty(entries, async (bytes) => {
        const key = `single${n++}`
        await redis.set(`${cache.prefix}:${key}`, bytes)
        const got = await outcome(cache.get(key))
        await outcome(cache.has(key))
        await outcome(cache.compareAndSet(key, { never: 'equal' }, 'cas'))
        await redis.set(`${cache.prefix}:${key}`, bytes)
        const loaded = await cache.getOrSet(key, () => 'loaded').catch((err: unknown) => {
          expect(err).toBeInstanceOf(CacheError)
          return 'typed'
        })
        // A miss (or a bad entry) loads; a value that reads back does not.
        if (got === 'miss') expect(loaded).toBe('loaded')
        sampleRss()
      }),
      { numRuns: SINGLE, seed: SEED + 1 },
    )
    expect(events.every((e) => e instanceof CacheError)).toBe(true)
    expect(unhandled).toEqual([])
    expect(rssPeak - rssStart).toBeLessThan(300 * 1024 * 1024)
  }, 120_000)

  it('anything serialize accepts passes the read-side check and decodes (write/read symmetry)', () => {
    fc.assert(
      fc.property(values, (value) => {
        let enc
        try {
          enc = serialize(value, MAX, Infinity)
        } catch (err) {
          expect(err).toBeInstanceOf(CacheError)
          return
        }
        expect(() => checkDecodable(enc.raw, MAX)).not.toThrow()
        deserialize(enc.raw)
      }),
      { numRuns: 2000, seed: SEED + 2 },
    )
  })
})
