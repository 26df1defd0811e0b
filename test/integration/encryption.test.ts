import { randomBytes } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { buildEnvelope, prepareValue } from '../../src/codec/entry.js'
import { CorruptEntryError, createCache } from '../../src/index.js'
import type { CacheOptions, NearCache } from '../../src/index.js'
import { resolveOptions } from '../../src/options/options.js'
import { EntryCipher } from '../../src/security/entry_cipher.js'
import { h32, initHash } from '../../wasm/hash.js'
import { redisBackends, uniqueNamespace } from '../helpers/backends.js'

/**
 * Authenticated encryption of entries (issue 12, part 3) on real Redis: what an
 * attacker who can write to Redis can plant, copy or edit reads as a miss plus
 * E_CORRUPT_ENTRY naming the cause; rotation; plain L1 hits; conditional writes.
 */
const k1 = randomBytes(32)
const k2 = randomBytes(32)
const KEYS_1 = [{ id: 1, key: k1 }]
const KEYS_21 = [{ id: 2, key: k2 }, { id: 1, key: k1 }]
const KEYS_2 = [{ id: 2, key: k2.toString('base64') }]

beforeAll(async () => {
  await initHash()
})

/** The xxh32 checksum an attacker recomputes after editing stored bytes. */
function withChecksum(buf: Buffer): Buffer {
  buf.writeUInt32LE(h32(buf.subarray(12)), 8)
  return buf
}

describe.each(redisBackends)('encryption on $name', (backend) => {
  const raw = backend.rawClient() as Redis | Cluster
  const open: NearCache[] = []
  afterEach(async () => {
    for (const c of open.splice(0)) await c.close()
  })
  afterAll(() => raw.disconnect())

  /** A cache on namespace `ns` with the given keys (false: no encryption), recording its error events. */
  const cacheWith = async (ns: string, keys: { id: number; key: Buffer | string }[] | false, extra: CacheOptions = {}) => {
    const encryption = keys === false ? false : { keys, acceptPlaintext: extra.encryption ? extra.encryption.acceptPlaintext : false }
    const c = await createCache({ redis: backend.redisOption(), namespace: ns, ...extra, encryption })
    open.push(c)
    const errors: Error[] = []
    c.on('error', (e) => errors.push(e))
    return { c, errors }
  }
  const corrupt = (errors: Error[]) => errors.filter((e): e is CorruptEntryError => e instanceof CorruptEntryError)

  it('stores sealed bytes (envelope version 3, key id 1) that hold no plaintext, and reads them back', async () => {
    const ns = uniqueNamespace(backend.name)
    const { c } = await cacheWith(ns, KEYS_1)
    const secret = `distinctive-${randomBytes(8).toString('hex')}`
    await c.set('user', { secret }, { ttl: '1h', tags: ['team'] })
    const stored = (await raw.getBuffer(`${ns}:user`)) as Buffer
    expect(stored.subarray(0, 3)).toEqual(Buffer.from([0x4e, 0x43, 3]))
    expect(EntryCipher.keyIdOf(stored)).toBe(1)
    expect(stored.includes(Buffer.from(secret))).toBe(false)
    const { c: other } = await cacheWith(ns, KEYS_1)
    expect(await other.get('user')).toEqual({ secret })
  })

  it("a forged plain { role: 'admin' }, a sealed value copied to another key, an edited TTL or tag, a flipped ciphertext byte: each is a miss, the loader runs, and E_CORRUPT_ENTRY names why", async () => {
    const ns = uniqueNamespace(backend.name)
    // `w` writes the genuine entries; `c` (another process, its L1 empty) reads what Redis then holds.
    const { c: w } = await cacheWith(ns, KEYS_1)
    const { c, errors } = await cacheWith(ns, KEYS_1)
    // Forged: a well-formed plain envelope, exactly what a cache without encryption writes.
    const forged = buildEnvelope(prepareValue({ role: 'admin' }, resolveOptions({ redis: false })), Date.now(), undefined, undefined)
    await raw.set(`${ns}:session`, forged)
    // Copied: a genuine sealed value of another key.
    await w.set('guest', { role: 'guest' })
    await raw.set(`${ns}:copied`, (await raw.getBuffer(`${ns}:guest`)) as Buffer)
    // TTL edited: a short-lived entry made to live forever.
    await w.set('short', { role: 'short' }, { ttl: '1h' })
    const short = Buffer.from((await raw.getBuffer(`${ns}:short`)) as Buffer)
    short.writeDoubleLE(0, 20)
    await raw.set(`${ns}:short`, withChecksum(short))
    // Tag edited: the entry's stamp of tag 't' set to another epoch.
    await w.set('tagged', { role: 'tagged' }, { tags: ['t'] })
    const tagged = Buffer.from((await raw.getBuffer(`${ns}:tagged`)) as Buffer)
    const epochAt = 44 + 2 + 2 + 1
    tagged.writeDoubleLE(tagged.readDoubleLE(epochAt) + 1, epochAt)
    await raw.set(`${ns}:tagged`, withChecksum(tagged))
    // Ciphertext flipped.
    await w.set('flipped', { role: 'flipped' })
    const flipped = Buffer.from((await raw.getBuffer(`${ns}:flipped`)) as Buffer)
    flipped[flipped.length - 20]! ^= 1
    await raw.set(`${ns}:flipped`, withChecksum(flipped))

    const expectations: [string, RegExp][] = [
      ['session', /plaintext entry/],
      ['copied', /failed authentication/],
      ['short', /failed authentication/],
      ['tagged', /failed authentication/],
      ['flipped', /failed authentication/],
    ]
    const errorsBefore = c.stats().l2.errors
    for (const [key, why] of expectations) {
      const before = corrupt(errors).length
      let called = 0
      const value = await c.getOrSet(key, () => {
        called++
        return { role: 'from-loader' }
      })
      expect(value).toEqual({ role: 'from-loader' })
      expect(called).toBe(1)
      const mine = corrupt(errors).slice(before)
      expect(mine.length).toBeGreaterThanOrEqual(1)
      expect(mine[0]?.code).toBe('E_CORRUPT_ENTRY')
      expect(mine[0]?.key).toBe(`${ns}:${key}`)
      expect(mine[0]?.message).toMatch(why)
      // The loader's value replaced it, sealed.
      expect(EntryCipher.keyIdOf((await raw.getBuffer(`${ns}:${key}`)) as Buffer)).toBe(1)
    }
    expect(c.stats().l2.errors).toBeGreaterThanOrEqual(errorsBefore + expectations.length)
    expect(c.stats().namespaces[ns]?.errors).toBeGreaterThanOrEqual(expectations.length)
  })

  it('acceptPlaintext reads entries a cache without encryption wrote; without it they are refused', async () => {
    const ns = uniqueNamespace(backend.name)
    const { c: plain } = await cacheWith(ns, false)
    await plain.set('old', { written: 'before encryption' })
    const { c: lenient } = await cacheWith(ns, KEYS_1, { encryption: { keys: KEYS_1, acceptPlaintext: true } })
    const { c: strict, errors } = await cacheWith(ns, KEYS_1)
    expect(await lenient.get('old')).toEqual({ written: 'before encryption' })
    expect(await strict.get('old')).toBeUndefined()
    expect(corrupt(errors)[0]?.message).toMatch(/plaintext entry/)
    // Writes are sealed even in the migration window.
    await lenient.set('new', 1)
    expect(EntryCipher.keyIdOf((await raw.getBuffer(`${ns}:new`)) as Buffer)).toBe(1)
  })

  it('rotation: [k2, k1] reads k1 entries and writes under k2; [k1] cannot read those; [k2] cannot read k1 entries', async () => {
    const ns = uniqueNamespace(backend.name)
    const { c: a, errors: aErrors } = await cacheWith(ns, KEYS_1)
    const { c: b } = await cacheWith(ns, KEYS_21)
    const { c: only2, errors: only2Errors } = await cacheWith(ns, KEYS_2)
    await a.set('by-a', 'old key')
    expect(await b.get('by-a')).toBe('old key')
    await b.set('by-b', 'new key')
    expect(EntryCipher.keyIdOf((await raw.getBuffer(`${ns}:by-b`)) as Buffer)).toBe(2)
    expect(await a.get('by-b')).toBeUndefined()
    expect(corrupt(aErrors).at(-1)?.message).toMatch(/key id 2, which is not in encryption.keys/)
    expect(await only2.get('by-b')).toBe('new key')
    expect(await only2.get('by-a')).toBeUndefined()
    expect(corrupt(only2Errors).at(-1)?.message).toMatch(/key id 1, which is not in encryption.keys/)
  })

  it('L1 hits pay nothing: after the first read, repeated gets are L1 hits and open nothing', async () => {
    const ns = uniqueNamespace(backend.name)
    const { c: writer } = await cacheWith(ns, KEYS_1)
    const { c: reader } = await cacheWith(ns, KEYS_1)
    // The writer's announcement reaching the reader later would drop its L1 copy: wait for it first.
    const announced = new Promise<void>((resolve) => {
      reader.on('invalidation', (n) => {
        if (n.direction === 'received' && n.keys.includes(`${ns}:hot`)) resolve()
      })
    })
    await writer.set('hot', { n: 42 })
    await announced
    const opens = vi.spyOn(EntryCipher.prototype, 'open')
    try {
      expect(await reader.get('hot')).toEqual({ n: 42 })
      expect(opens).toHaveBeenCalledTimes(1)
      const hitsBefore = reader.stats().l1.hits
      for (let i = 0; i < 50; i++) expect(await reader.get('hot')).toEqual({ n: 42 })
      expect(reader.stats().l1.hits).toBe(hitsBefore + 50)
      expect(opens).toHaveBeenCalledTimes(1)
    } finally {
      opens.mockRestore()
    }
  })

  it('nx, xx and compareAndSet work with encryption on', async () => {
    const ns = uniqueNamespace(backend.name)
    const { c } = await cacheWith(ns, KEYS_1)
    expect(await c.set('k', 'first', { nx: true })).toBe(true)
    expect(await c.set('k', 'second', { nx: true })).toBe(false)
    expect(await c.set('absent', 'x', { xx: true })).toBe(false)
    expect(await c.set('k', 'third', { xx: true })).toBe(true)
    expect(await c.compareAndSet('k', 'wrong', 'fourth')).toBe(false)
    expect(await c.compareAndSet('k', 'third', 'fourth')).toBe(true)
    const { c: other } = await cacheWith(ns, KEYS_1)
    expect(await other.get('k')).toBe('fourth')
    expect(EntryCipher.keyIdOf((await raw.getBuffer(`${ns}:k`)) as Buffer)).toBe(1)
    // A forged entry reads as missing, so nx replaces it (as it replaces any corrupt entry).
    await raw.set(`${ns}:planted`, buildEnvelope(prepareValue('forged', resolveOptions({ redis: false })), Date.now(), undefined, undefined))
    expect(await c.set('planted', 'mine', { nx: true })).toBe(true)
    expect(await other.get('planted')).toBe('mine')
  })
})

describe('encryption with redis: false', () => {
  it('is accepted and unused: nothing leaves the process, the L1 holds plain envelopes', async () => {
    const c = await createCache({ redis: false, namespace: uniqueNamespace('encmem'), encryption: { keys: KEYS_1 } })
    const seals = vi.spyOn(EntryCipher.prototype, 'seal')
    try {
      await c.set('k', { v: 1 })
      expect(await c.get('k')).toEqual({ v: 1 })
      expect(seals).not.toHaveBeenCalled()
    } finally {
      seals.mockRestore()
      await c.close()
    }
  })
})
