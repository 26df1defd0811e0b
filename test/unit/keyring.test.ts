import { randomBytes } from 'node:crypto'
import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import { InvalidOptionError } from '../../src/errors.js'
import { Keyring, MAX_KEYS } from '../../src/security/keyring.js'

/** The configured keys (issue 12, part 3): validation, and no key bytes anywhere they could be printed. */
const k1 = randomBytes(32)
const k2 = randomBytes(32)

/** The E_INVALID_OPTION message `Keyring.from(keys)` fails with. */
function invalid(keys: unknown): string {
  try {
    Keyring.from(keys)
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidOptionError)
    return (err as InvalidOptionError).message
  }
  throw new Error('expected E_INVALID_OPTION')
}

describe('Keyring', () => {
  it('accepts bytes and base64, the first key is primary, any listed key is found by id', () => {
    const ring = Keyring.from([
      { id: 7, key: k1 },
      { id: 65535, key: k2.toString('base64') },
      { id: 0, key: new Uint8Array(randomBytes(32)) },
    ])
    expect(ring.primary.id).toBe(7)
    expect(ring.ids).toEqual([7, 65535, 0])
    expect(ring.get(65535)?.id).toBe(65535)
    expect(ring.get(8)).toBeUndefined()
    expect(ring.processSalt.length).toBe(16)
  })

  it('derives distinct 32-byte subkeys per purpose and salt, the same from bytes or base64', () => {
    const a = Keyring.from([{ id: 1, key: k1 }]).primary
    const b = Keyring.from([{ id: 1, key: k1.toString('base64') }]).primary
    const salt = randomBytes(16)
    expect(a.derive('entry', salt).equals(b.derive('entry', salt))).toBe(true)
    const all = [a.derive('entry', salt), a.derive('entry', randomBytes(16)), a.derive('bus'), a.derive('audit')]
    for (const k of all) expect(k.length).toBe(32)
    expect(new Set(all.map((k) => k.toString('hex'))).size).toBe(4)
    expect(all.some((k) => k.equals(k1))).toBe(false)
  })

  it('refuses bad lists, ids and keys with E_INVALID_OPTION', () => {
    expect(invalid([])).toMatch(/list of 1 to 16 keys/)
    expect(invalid('x')).toMatch(/list of 1 to 16 keys/)
    expect(invalid(Array.from({ length: MAX_KEYS + 1 }, (_, i) => ({ id: i, key: k1 })))).toMatch(/got 17 keys/)
    expect(invalid([null])).toMatch(/\[0\] must be an object/)
    expect(invalid([{ id: -1, key: k1 }])).toMatch(/\.id must be an integer from 0 to 65535 \(it is stored in 2 bytes\)/)
    expect(invalid([{ id: 65536, key: k1 }])).toMatch(/0 to 65535/)
    expect(invalid([{ id: 1.5, key: k1 }])).toMatch(/0 to 65535/)
    expect(invalid([{ id: 1, key: k1 }, { id: 1, key: k2 }])).toMatch(/id 1 is listed twice/)
    expect(invalid([{ id: 1, key: randomBytes(16) }])).toMatch(/must be 32 bytes \(got 16\)/)
    expect(invalid([{ id: 1, key: randomBytes(16).toString('base64') }])).toMatch(/must be 32 bytes \(got 16\)/)
    expect(invalid([{ id: 1, key: 'not base64 at all!' }])).toMatch(/not base64/)
    expect(invalid([{ id: 1, key: 42 }])).toMatch(/as a Buffer\/Uint8Array or base64/)
  })

  it('never shows key bytes: inspect, JSON, and the messages of refused keys', () => {
    const ring = Keyring.from([
      { id: 1, key: k1 },
      { id: 2, key: k2.toString('base64') },
    ])
    const shown = [inspect(ring, { showHidden: true, depth: 10 }), JSON.stringify(ring), inspect(ring.primary, { showHidden: true, depth: 10 }), JSON.stringify(ring.primary), JSON.stringify({ ring })]
    for (const text of shown) {
      for (const k of [k1, k2]) {
        expect(text).not.toContain(k.toString('hex'))
        expect(text).not.toContain(k.toString('base64'))
        expect(text).not.toContain(k.subarray(0, 8).toString('hex'))
      }
    }
    expect(JSON.parse(JSON.stringify(ring))).toEqual({ ids: [1, 2] })
    // A 31-byte key in base64, or a near-base64 string: the message does not echo it.
    const short = randomBytes(31).toString('base64')
    expect(invalid([{ id: 1, key: short }])).not.toContain(short)
    const almost = `${k1.toString('base64').slice(0, -2)}!!`
    expect(invalid([{ id: 1, key: almost }])).not.toContain(almost.slice(0, 20))
  })
})
