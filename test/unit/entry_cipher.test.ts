import { randomBytes } from 'node:crypto'
import { inspect } from 'node:util'
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { decodeEnvelope, encodeEnvelope, storedUntil, CODEC_MSGPACKR, SEAL_FIELDS, SEAL_TAG_BYTES } from '../../src/codec/envelope.js'
import type { EntryMeta } from '../../src/codec/envelope.js'
import { CorruptEntryError } from '../../src/errors.js'
import { EntryCipher, MAX_CACHED_SUBKEYS } from '../../src/security/entry_cipher.js'
import { Keyring } from '../../src/security/keyring.js'
import { h32, initHash } from '../../wasm/hash.js'

/**
 * EntryCipher (issue 12, part 3): sealed envelopes open only for the Redis key
 * they were sealed for, with their header unchanged, under a listed key; every
 * other input is a CorruptEntryError whose message names the cause.
 */
const k1 = randomBytes(32)
const k2 = randomBytes(32)
const ring = (...keys: [number, Buffer][]) => Keyring.from(keys.map(([id, key]) => ({ id, key })))
const META: EntryMeta = { createdAt: 1000, expiresAt: 5000, softExpiresAt: 0, staleUntil: 6000, tags: [{ name: 'team', epoch: 7 }], compressed: false, codec: CODEC_MSGPACKR }
const SECRET = Buffer.from('{"role":"admin","secret":"hunter2-distinctive"}')
const plain = (payload: Uint8Array = SECRET, meta: EntryMeta = META) => encodeEnvelope(payload, meta)

/** The message of the CorruptEntryError `fn` throws (fails the test on anything else). */
function refusal(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(CorruptEntryError)
    return (err as CorruptEntryError).message
  }
  throw new Error('expected a CorruptEntryError, nothing was thrown')
}

beforeAll(async () => {
  await initHash()
})

describe('EntryCipher', () => {
  it('seal then open gives back the exact plain envelope, with the header readable (expiry) and no plaintext in the sealed bytes', () => {
    const c = new EntryCipher(ring([1, k1]), false)
    for (const p of [plain(), plain(Buffer.alloc(0), { ...META, tags: undefined }), plain(randomBytes(100 * 1024))]) {
      const sealed = c.seal('ns:k', p)
      expect(sealed.length).toBe(p.length + SEAL_FIELDS + SEAL_TAG_BYTES)
      expect(sealed.includes(SECRET)).toBe(false)
      expect(storedUntil(sealed)).toBe(storedUntil(p))
      expect(EntryCipher.keyIdOf(sealed)).toBe(1)
      const opened = c.open('ns:k', sealed)
      expect(opened.equals(p)).toBe(true)
      expect(decodeEnvelope(opened).tags).toEqual(decodeEnvelope(p).tags)
    }
  })

  it('two seals of the same envelope differ (random nonce)', () => {
    const c = new EntryCipher(ring([1, k1]), false)
    expect(c.seal('ns:k', plain()).equals(c.seal('ns:k', plain()))).toBe(false)
  })

  it('another process (own salt) with the same key opens it; a key ring listing the key second opens it too', () => {
    const a = new EntryCipher(ring([1, k1]), false)
    const sealed = a.seal('ns:k', plain())
    expect(new EntryCipher(ring([1, k1]), false).open('ns:k', sealed).equals(plain())).toBe(true)
    const b = new EntryCipher(ring([2, k2], [1, k1]), false)
    expect(b.open('ns:k', sealed).equals(plain())).toBe(true)
    const byB = b.seal('ns:k', plain())
    expect(EntryCipher.keyIdOf(byB)).toBe(2)
    expect(refusal(() => a.open('ns:k', byB))).toMatch(/key id 2, which is not in encryption.keys/)
  })

  it('refuses a value moved to another key, an edited expiry or tag, a flipped ciphertext byte, and a different key under the same id', () => {
    const c = new EntryCipher(ring([1, k1]), false)
    const sealed = c.seal('ns:k', plain())
    expect(refusal(() => c.open('ns:other', sealed))).toMatch(/failed authentication/)
    // The attacker recomputes the unkeyed checksum after each edit.
    const edit = (f: (b: Buffer) => void) => {
      const copy = Buffer.from(sealed)
      f(copy)
      return withChecksum(copy)
    }
    expect(refusal(() => c.open('ns:k', edit((b) => b.writeDoubleLE(9e15, 20))))).toMatch(/failed authentication/)
    const tagEpochAt = 44 + 2 + 2 + 'team'.length
    expect(decodeEnvelope(c.open('ns:k', sealed)).tags).toEqual([{ name: 'team', epoch: 7 }])
    expect(refusal(() => c.open('ns:k', edit((b) => b.writeDoubleLE(8, tagEpochAt))))).toMatch(/failed authentication/)
    expect(refusal(() => c.open('ns:k', edit((b) => (b[b.length - 20]! ^= 1))))).toMatch(/failed authentication/)
    expect(refusal(() => c.open('ns:k', edit((b) => (b[44 + 2 + 2 + 4 + 8 + 5]! ^= 1))))).toMatch(/failed authentication/)
    const sameIdOtherKey = new EntryCipher(ring([1, k2]), false)
    expect(refusal(() => sameIdOtherKey.open('ns:k', sealed))).toMatch(/failed authentication/)
    // Without recomputing the checksum it is reported as damage.
    const flipped = Buffer.from(sealed)
    flipped[flipped.length - 1]! ^= 0x80
    expect(refusal(() => c.open('ns:k', flipped))).toMatch(/damaged \(checksum/)
  })

  it('refuses plaintext unless acceptPlaintext, and non-entries always', () => {
    const strict = new EntryCipher(ring([1, k1]), false)
    const lenient = new EntryCipher(ring([1, k1]), true)
    expect(refusal(() => strict.open('ns:k', plain()))).toMatch(/plaintext entry/)
    expect(lenient.open('ns:k', plain()).equals(plain())).toBe(true)
    for (const c of [strict, lenient]) {
      expect(refusal(() => c.open('ns:k', Buffer.from('hello')))).toMatch(/not a nearcache entry/)
      const v9 = plain()
      v9[2] = 9
      expect(refusal(() => c.open('ns:k', v9))).toMatch(/unknown envelope version 9/)
    }
    expect(EntryCipher.keyIdOf(plain())).toBeUndefined()
    expect(EntryCipher.keyIdOf(Buffer.from('x'))).toBeUndefined()
  })

  it('keeps a bounded number of other processes\' subkeys, and opens them all', () => {
    const reader = new EntryCipher(ring([1, k1]), false)
    for (let i = 0; i < MAX_CACHED_SUBKEYS + 50; i++) {
      const writer = new EntryCipher(ring([1, k1]), false)
      expect(reader.open('ns:k', writer.seal('ns:k', plain())).equals(plain())).toBe(true)
    }
    expect(reader.cachedSubkeys).toBe(MAX_CACHED_SUBKEYS)
  })

  it('shows no key material in inspect or JSON', () => {
    const c = new EntryCipher(ring([5, k1], [6, k2]), true)
    const shown = inspect(c, { showHidden: true, depth: 10 }) + JSON.stringify(c)
    for (const k of [k1, k2]) {
      expect(shown).not.toContain(k.toString('hex'))
      expect(shown).not.toContain(k.toString('base64'))
    }
    expect(JSON.parse(JSON.stringify(c))).toEqual({ keyIds: [5, 6], acceptPlaintext: true })
  })
})

/** Sets the xxh32 checksum an attacker would compute (encodeEnvelope's rule: bytes 12..end, at offset 8). */
function withChecksum(buf: Buffer): Buffer {
  if (buf.length >= 12) buf.writeUInt32LE(h32(buf.subarray(12)), 8)
  return buf
}

describe('EntryCipher fuzz: mutated sealed entries', () => {
  it('every mutation is refused with a CorruptEntryError (never another error, never unauthenticated bytes)', () => {
    const c = new EntryCipher(ring([1, k1], [2, k2]), false)
    const base = [c.seal('ns:a', plain()), c.seal('ns:a', plain(randomBytes(300), { ...META, tags: undefined }))]
    const mutation = fc.record({
      which: fc.nat(base.length - 1),
      kind: fc.constantFrom('flip', 'truncate', 'extend', 'set32', 'set16'),
      at: fc.nat(),
      value: fc.integer({ min: 0, max: 0xffffffff }),
      fixChecksum: fc.boolean(),
    })
    let refused = 0
    fc.assert(
      fc.property(mutation, (m) => {
        const src = base[m.which] as Buffer
        let b = Buffer.from(src)
        const at = m.at % b.length
        if (m.kind === 'flip') b[at]! ^= (m.value % 255) + 1
        else if (m.kind === 'truncate') b = b.subarray(0, at)
        else if (m.kind === 'extend') b = Buffer.concat([b, Buffer.alloc((m.value % 64) + 1, m.value & 0xff)])
        else if (m.kind === 'set32' && at + 4 <= b.length) b.writeUInt32LE(m.value, at)
        else if (m.kind === 'set16' && at + 2 <= b.length) b.writeUInt16LE(m.value & 0xffff, at)
        // A recomputed checksum is what an attacker sends.
        if (m.fixChecksum) withChecksum(b)
        if (b.equals(src)) return
        refusal(() => c.open('ns:a', b))
        refused++
      }),
      { numRuns: 5000 },
    )
    expect(refused).toBeGreaterThan(4000)
  })
})
