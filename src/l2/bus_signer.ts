import { createHmac, timingSafeEqual } from 'node:crypto'
import type { Keyring } from '../security/keyring.js'

/**
 * Signatures of invalidation messages (with `encryption` configured).
 *
 * A signed message is the unsigned message text T (bus_protocol.ts) with one
 * last field appended: `…,"a":"<key id>.<mac>"}`, where `<key id>` is the
 * decimal id of the signing key (the keyring's primary) and `<mac>` the
 * unpadded base64url of
 *
 *   HMAC-SHA-256(bus key, u32be(len(channel)) ‖ channel ‖ T)      (UTF-8 bytes)
 *
 * under the key's `bus` subkey (HKDF, keyring.ts). The MAC covers the channel
 * name, so a message cannot be moved to another root's channel, and the exact
 * text T: a receiver splits the suffix off and verifies the bytes it got, with
 * no re-serialisation, then parses T alone (which must not carry an `a` field).
 * A receiver verifies with the key of the id given: any key its keyring lists.
 *
 * Not covered (the security model): a captured message can be published again on
 * its own channel (replay). It can only make receivers drop L1 copies of the keys
 * it names, and, its sequence number being out of order, cause a root flush
 * (rate-limited by the bus). It never makes anyone keep or read stale data.
 */

/**
 * `,"a":"<id>.<43 base64url characters>"}` at the very end of the text. Only the
 * canonical form passes: an id without leading zeros, and (checked in verify) the
 * MAC's own base64url text, so a signed message has exactly one accepted spelling.
 */
const SUFFIX = /,"a":"(0|[1-9]\d{0,4})\.([A-Za-z0-9_-]{43})"\}$/
/** Longest suffix: `,"a":"` + 5 digits + `.` + 43 + `"}`. */
export const MAX_SIGNATURE_CHARS = 6 + 5 + 1 + 43 + 2

export type Verified = { ok: true; text: string } | { ok: false; why: string }

export class BusSigner {
  /** Each listed key's bus subkey, derived once. */
  readonly #keys = new Map<number, Buffer>()
  readonly #signId: number

  constructor(keyring: Keyring) {
    for (const id of keyring.ids) this.#keys.set(id, keyring.get(id)!.derive('bus'))
    this.#signId = keyring.primary.id
  }

  /** The signed form of the message text `text` (a JSON object's text) for `channel`. */
  sign(channel: string, text: string): string {
    const mac = this.#mac(this.#keys.get(this.#signId)!, channel, text)
    return `${text.slice(0, -1)},"a":"${this.#signId}.${mac.toString('base64url')}"}`
  }

  /** The unsigned text of a signed message, or why it is refused. Never throws. */
  verify(channel: string, text: string): Verified {
    const m = SUFFIX.exec(text)
    if (!m) return { ok: false, why: 'the message is not signed (encryption is configured: every message must carry a signature)' }
    const id = Number(m[1])
    const key = this.#keys.get(id)
    if (!key) return { ok: false, why: `the message is signed with key id ${id}, which this process does not list` }
    const body = `${text.slice(0, m.index)}}`
    // The text of the MAC is compared, not its decoded bytes: the last of 43 base64url
    // characters carries 2 unused bits, so 4 spellings decode to the same bytes.
    const given = Buffer.from(m[2] as string, 'latin1')
    const expected = Buffer.from(this.#mac(key, channel, body).toString('base64url'), 'latin1')
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return { ok: false, why: `the message's signature (key id ${id}) does not match its content and channel` }
    }
    return { ok: true, text: body }
  }

  #mac(key: Buffer, channel: string, text: string): Buffer {
    const ch = Buffer.from(channel, 'utf8')
    const len = Buffer.alloc(4)
    len.writeUInt32BE(ch.length)
    return createHmac('sha256', key).update(len).update(ch).update(text, 'utf8').digest()
  }

  toJSON(): object {
    return { signs: this.#signId, verifies: [...this.#keys.keys()] }
  }
}
