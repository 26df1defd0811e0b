// The limits on what one value may decode to (src/codec/msgpack_limits.ts): size
// before inflating, depth, decoded memory; the same on write as on read, so what
// `set` accepts reads back and what it refuses cannot be planted either. Bytes are
// planted in a real Redis under the cache's namespace, as an attacker would.
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { CASES, lz4Run, lyingLz4, msgpackArrayOf, plant } from '../../bench/hostile_values.js'
import { heapBudget, HEAP_COST, MAX_DEPTH } from '../../src/codec/msgpack_limits.js'
import { checkDecodable, deserialize, inflate, serialize } from '../../src/codec/value_codec.js'
import { CorruptEntryError, createCache, InvalidValueError, ValueTooLargeError } from '../../src/index.js'
import type { NearCache } from '../../src/index.js'
import { uniqueNamespace } from '../helpers/backends.js'

const MiB = 1024 * 1024
const MAX = 4 * MiB

/** `depth` arrays nested in each other around a 0. */
const nested = (depth: number): unknown => {
  let v: unknown = 0
  for (let i = 0; i < depth; i++) v = [v]
  return v
}
/** The msgpack of `nested(depth)`, by hand. */
const nestedBytes = (depth: number) => Buffer.concat([Buffer.alloc(depth, 0x91), Buffer.from([0x00])])
/** How many empty Maps an array may hold under `max`: slot + array, then a slot and a Map each. */
const mapsAtLimit = (max: number) => Math.floor((heapBudget(max) - HEAP_COST.slot - HEAP_COST.array) / (HEAP_COST.slot + HEAP_COST.map))
const maps = (n: number) => Array.from({ length: n }, () => new Map())

let redis: Redis
let cache: NearCache
const errors: Error[] = []

beforeAll(async () => {
  redis = new Redis(inject('redisUrl'))
  cache = await createCache({ redis: inject('redisUrl'), namespace: uniqueNamespace('limits'), maxValueBytes: MAX })
  cache.on('error', (e) => errors.push(e))
})
afterAll(async () => {
  await cache.close()
  redis.disconnect()
})

/** Plants envelope bytes under `key` of `c`'s namespace, behind the cache's back. */
async function plantAt(c: NearCache, key: string, bytes: Buffer): Promise<void> {
  await redis.set(`${c.prefix}:${key}`, bytes)
}
/** The E_CORRUPT_ENTRY events `op` caused. */
async function corruptEventsOf(op: () => Promise<unknown>): Promise<{ result: unknown; corrupt: CorruptEntryError[] }> {
  const before = errors.length
  const result = await op()
  return { result, corrupt: errors.slice(before).filter((e): e is CorruptEntryError => e instanceof CorruptEntryError) }
}

describe('depth', () => {
  it(`a value nested ${MAX_DEPTH} deep writes and reads back; one level deeper is refused on write with E_INVALID_VALUE`, async () => {
    await cache.set('deep-ok', nested(MAX_DEPTH))
    expect(await cache.get('deep-ok')).toEqual(nested(MAX_DEPTH))
    await expect(cache.set('deep-over', nested(MAX_DEPTH + 1))).rejects.toBeInstanceOf(InvalidValueError)
    await expect(cache.setMany([{ key: 'deep-over', value: nested(MAX_DEPTH + 1) }])).rejects.toBeInstanceOf(InvalidValueError)
    await expect(cache.getOrSet('deep-over', () => nested(MAX_DEPTH + 1))).rejects.toBeInstanceOf(InvalidValueError)
    await expect(cache.compareAndSet('deep-over', undefined, nested(MAX_DEPTH + 1))).rejects.toBeInstanceOf(InvalidValueError)
    expect(await redis.exists(`${cache.prefix}:deep-over`)).toBe(0)
  })

  it('a planted value nested deeper than the limit is a miss plus E_CORRUPT_ENTRY', async () => {
    expect(() => checkDecodable(nestedBytes(MAX_DEPTH), MAX)).not.toThrow()
    expect(() => checkDecodable(nestedBytes(MAX_DEPTH + 1), MAX)).toThrow(/deeper than 128/)
    await plantAt(cache, 'deep-planted', plant(nestedBytes(10_000), false))
    const { result, corrupt } = await corruptEventsOf(() => cache.get('deep-planted'))
    expect(result).toBeUndefined()
    expect(corrupt).toHaveLength(1)
    expect(corrupt[0]?.message).toMatch(/deeper than 128 levels/)
  })
})

describe('decoded memory (element budget)', () => {
  it('an array of empty Maps at the budget writes and reads back; one more is refused on write with E_VALUE_TOO_LARGE', async () => {
    const n = mapsAtLimit(MAX)
    expect(n).toBeGreaterThan(10_000)
    await cache.set('maps-ok', maps(n))
    expect((await cache.get<Map<unknown, unknown>[]>('maps-ok'))?.length).toBe(n)
    const err = await cache.set('maps-over', maps(n + 1)).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ValueTooLargeError)
    expect((err as Error).message).toMatch(/memory once decoded/)
  })

  it('1 MB of planted empty Maps is a miss plus E_CORRUPT_ENTRY (it would take ~200 MB decoded)', async () => {
    await plantAt(cache, 'maps-planted', CASES['empty maps 1 MB']!())
    const { result, corrupt } = await corruptEventsOf(() => cache.get('maps-planted'))
    expect(result).toBeUndefined()
    expect(corrupt).toHaveLength(1)
    expect(corrupt[0]?.message).toMatch(/memory once decoded/)
  })

  it('a container header claiming more elements than there are bytes is refused before anything is walked', () => {
    const liar = Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff, 0x00])
    expect(() => checkDecodable(liar, MAX)).toThrow(/more elements than there are bytes/)
    // 15M zeros under a 16 MiB maxValueBytes: the slots alone (120 MB) are over the 64 MiB budget.
    expect(() => checkDecodable(msgpackArrayOf(0, 15_000_000), 16 * MiB)).toThrow(/memory once decoded/)
  })
})

describe('declared size (LZ4 header), checked before inflating', () => {
  it('a compressed value whose declared size is over maxValueBytes is a miss plus E_CORRUPT_ENTRY', async () => {
    // A 1.5 MB Buffer of zeros in ~6 KB of LZ4: valid, but over this cache's 1 MB maxValueBytes.
    const small = await createCache({ redis: inject('redisUrl'), namespace: uniqueNamespace('limits-1mb'), maxValueBytes: MiB })
    const seen: Error[] = []
    small.on('error', (e) => seen.push(e))
    try {
      const len = 1.5 * MiB - 5 // a msgpack bin32 of zeros: a valid 1.5 MB Buffer
      await plantAt(small, 'big', plant(lz4Run(Buffer.from([0xc6, len >>> 24, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff]), 0, 1.5 * MiB), true))
      expect(await small.get('big')).toBeUndefined()
      expect(await small.has('big')).toBe(false)
      expect(await small.getMany(['big'])).toEqual([undefined])
      expect(seen.map((e) => (e as CorruptEntryError).code)).toEqual(['E_CORRUPT_ENTRY', 'E_CORRUPT_ENTRY', 'E_CORRUPT_ENTRY'])
      expect(seen[0]?.message).toMatch(/claims 1572864 bytes, over maxValueBytes/)
    } finally {
      await small.close()
    }
  })

  it('a header claiming more than its bytes can inflate to (255:1) is refused as a lie; an honest one at that ratio is not', async () => {
    expect(() => inflate(lyingLz4(8 * MiB, 52), true, 16 * MiB)).toThrow(/more than its 52 bytes can hold/)
    const zeros = serialize(Buffer.alloc(3 * MiB), MAX, 1024) // LZ4 of zeros: ~255:1
    expect(zeros.compressed).toBe(true)
    expect(Buffer.from(deserialize(inflate(zeros.stored, true, MAX)) as Uint8Array).equals(Buffer.alloc(3 * MiB))).toBe(true)
    await plantAt(cache, 'liar', plant(lyingLz4(2 * MiB, 52), true))
    const { result, corrupt } = await corruptEventsOf(() => cache.get('liar'))
    expect(result).toBeUndefined()
    expect(corrupt[0]?.message).toMatch(/more than its 52 bytes can hold/)
  })

  it('the 1 MB LZ4 bomb (256 MiB) and the 52-byte 512 MiB claim: has() is false and get() a miss, each with E_CORRUPT_ENTRY', async () => {
    for (const name of ['lz4 bomb 1 MB', 'claims 512 MiB'] as const) {
      await plantAt(cache, name, CASES[name]!())
      const has = await corruptEventsOf(() => cache.has(name))
      expect(has.result).toBe(false)
      expect(has.corrupt).toHaveLength(1)
      const get = await corruptEventsOf(() => cache.get(name))
      expect(get.result).toBeUndefined()
      expect(get.corrupt[0]?.message).toMatch(/over maxValueBytes/)
    }
  })

})

describe('every read path', () => {
  it('getOrSet treats a planted bomb as missing: it loads, caches the loaded value, and reports E_CORRUPT_ENTRY', async () => {
    await plantAt(cache, 'gos', CASES['empty maps 1 MB']!())
    const { result, corrupt } = await corruptEventsOf(() => cache.getOrSet('gos', () => 'loaded'))
    expect(result).toBe('loaded')
    expect(corrupt).toHaveLength(1)
    expect(await cache.get('gos')).toBe('loaded')
  })

  it('compareAndSet over a planted entry that does not decode answers false with E_CORRUPT_ENTRY, never an untyped rejection', async () => {
    // An unknown msgpack extension (type 0x05): msgpackr throws a plain Error on it.
    await plantAt(cache, 'cas', plant(Buffer.from([0xd4, 0x05, 0x00]), false))
    const { result, corrupt } = await corruptEventsOf(() => cache.compareAndSet('cas', 'old', 'new'))
    expect(result).toBe(false)
    expect(corrupt.length).toBeGreaterThanOrEqual(1)
    expect(corrupt[0]?.message).toMatch(/unknown extension/)
  })

  it('the codec worker pool refuses the bombs too (declared size before handing over, decoded memory after)', async () => {
    const pooled = await createCache({ redis: inject('redisUrl'), namespace: uniqueNamespace('limits-pool'), maxValueBytes: MAX, codecWorkers: { threads: 1, threshold: 1 } })
    const seen: Error[] = []
    pooled.on('error', (e) => seen.push(e))
    try {
      await plantAt(pooled, 'bomb', CASES['lz4 bomb 1 MB']!())
      // 1.5M empty maps behind LZ4: under maxValueBytes, inflated in the worker, refused by the walk.
      await plantAt(pooled, 'maps', plant(lz4Run(Buffer.from([0xdd, 0x00, 0x16, 0xe3, 0x60]), 0x80, 5 + 1_500_000), true))
      await pooled.set('fine', { text: 'x'.repeat(50_000) })
      expect(await pooled.get('bomb')).toBeUndefined()
      expect(await pooled.get('maps')).toBeUndefined()
      expect(await pooled.get('fine')).toEqual({ text: 'x'.repeat(50_000) })
      expect(seen.map((e) => (e as CorruptEntryError).code)).toEqual(['E_CORRUPT_ENTRY', 'E_CORRUPT_ENTRY'])
      expect(seen[1]?.message).toMatch(/memory once decoded/)
    } finally {
      await pooled.close()
    }
  })
})
