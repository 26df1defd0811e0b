import { describe, expect, it } from 'vitest'
import { BusSigner } from '../../src/l2/bus_signer.js'
import { Keyring } from '../../src/security/keyring.js'

/** One accepted spelling per signed message: the bus fuzz found two other spellings that verified. */
describe('BusSigner', () => {
  const signer = new BusSigner(Keyring.from([{ id: 9, key: new Uint8Array(32).fill(9) }]))
  const channel = '__nc|inv|shop'
  const text = '{"v":1,"o":"pub-a","s":0,"k":["shop:1"],"p":[]}'
  const signed = signer.sign(channel, text)
  const suffix = /"a":"(\d+)\.([A-Za-z0-9_-]{43})"\}$/.exec(signed) as RegExpExecArray

  it('verifies what it signed, for its channel only', () => {
    expect(signer.verify(channel, signed)).toEqual({ ok: true, text })
    expect(signer.verify('__nc|inv|other', signed).ok).toBe(false)
  })

  it('refuses a key id with leading zeros', () => {
    expect(suffix[1]).toBe('9')
    expect(signer.verify(channel, signed.replace('"a":"9.', '"a":"09.')).ok).toBe(false)
    expect(signer.verify(channel, signed.replace('"a":"9.', '"a":"009.')).ok).toBe(false)
  })

  it('refuses another spelling of the same MAC bytes (the unused low bits of the last base64url character)', () => {
    const mac = suffix[2] as string
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const last = alphabet.indexOf(mac[42] as string)
    let others = 0
    for (let flip = 1; flip < 4; flip++) {
      const spelling = mac.slice(0, 42) + alphabet[last ^ flip]
      // The same 32 bytes, another text.
      expect(Buffer.from(spelling, 'base64url').equals(Buffer.from(mac, 'base64url'))).toBe(true)
      expect(signer.verify(channel, signed.replace(mac, spelling)).ok).toBe(false)
      others++
    }
    expect(others).toBe(3)
  })
})
