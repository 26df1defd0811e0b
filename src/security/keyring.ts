import { hkdfSync, randomBytes } from 'node:crypto'
import { InvalidOptionError } from '../errors.js'
import { describe } from '../util/units.js'

/**
 * The configured secret keys (`encryption.keys`) and every key derived from them.
 * Nothing else in nearcache holds key material, and none of it is ever printed:
 * the bytes live in private fields (util.inspect and JSON.stringify show none),
 * and error messages name a key by its position and id, never by its bytes.
 *
 * Keys are never used directly. Each use gets its own key, derived with
 * HKDF-SHA-256 (RFC 5869) under a distinct `info` label:
 *
 *   entry     AES-256-GCM key of the entries this process writes. The salt is
 *             16 random bytes chosen once per process (stored in each entry), so
 *             every process encrypts under its own subkey and the 2^32
 *             random-nonce limit of AES-GCM applies per process, not per fleet.
 *   bus       HMAC-SHA-256 key signing invalidation messages (fixed salt: every
 *             process of the fleet derives the same one).
 *   audit     HMAC-SHA-256 key hashing key names in the audit log (fixed salt).
 */

/** Width of the key id stored in every encrypted entry: an unsigned 16-bit integer. */
export const KEY_ID_BYTES = 2
export const MAX_KEY_ID = 0xffff
/** AES-256: every configured key is exactly 32 bytes. */
export const KEY_BYTES = 32
/** Length of the per-process salt of the entry subkey. */
export const SALT_BYTES = 16
/** At most this many keys may be listed (the current one and the ones being retired). */
export const MAX_KEYS = 16

export type KeyPurpose = 'entry' | 'bus' | 'audit'
const INFO: Record<KeyPurpose, string> = {
  entry: 'nearcache/v1/entry/aes-256-gcm',
  bus: 'nearcache/v1/bus/hmac-sha256',
  audit: 'nearcache/v1/audit/hmac-sha256',
}
const NO_SALT = Buffer.alloc(0)

/** What `encryption.keys` accepts: `key` is 32 bytes, or the base64 text of 32 bytes. */
export interface EncryptionKeyInput {
  /** Stored in each entry (16 bits, 0-65535): which key decrypts it. Unique in the list. */
  id: number
  key: Uint8Array | string
}

/** One configured key. Its bytes never leave this object except through `derive`. */
export class MasterKey {
  readonly #key: Buffer
  constructor(
    readonly id: number,
    key: Buffer,
  ) {
    this.#key = key
  }

  /** A 32-byte key for `purpose`, derived with HKDF-SHA-256 (`salt`: empty unless given). */
  derive(purpose: KeyPurpose, salt: Uint8Array = NO_SALT): Buffer {
    return Buffer.from(hkdfSync('sha256', this.#key, salt, INFO[purpose], KEY_BYTES))
  }

  toJSON(): object {
    return { id: this.id }
  }
}

export class Keyring {
  readonly #byId: Map<number, MasterKey>
  /** The first key listed: the one that encrypts and signs. */
  readonly primary: MasterKey
  /** This process's salt for its entry subkeys (random, chosen when the keyring is made). */
  readonly processSalt: Buffer = randomBytes(SALT_BYTES)

  private constructor(keys: MasterKey[]) {
    this.#byId = new Map(keys.map((k) => [k.id, k]))
    this.primary = keys[0] as MasterKey
  }

  /** Validates `encryption.keys` (named `name` in errors) and makes the keyring. */
  static from(keys: unknown, name = 'encryption.keys'): Keyring {
    if (!Array.isArray(keys) || keys.length === 0 || keys.length > MAX_KEYS) {
      throw new InvalidOptionError(`${name} must be a list of 1 to ${MAX_KEYS} keys { id, key } (got ${Array.isArray(keys) ? `${keys.length} keys` : describe(keys)}).`)
    }
    const made: MasterKey[] = []
    keys.forEach((k: unknown, i) => {
      const at = `${name}[${i}]`
      if (typeof k !== 'object' || k === null) throw new InvalidOptionError(`${at} must be an object { id, key } (got ${describe(k)}).`)
      const { id, key } = k as Partial<EncryptionKeyInput>
      if (!Number.isInteger(id) || (id as number) < 0 || (id as number) > MAX_KEY_ID) {
        throw new InvalidOptionError(`${at}.id must be an integer from 0 to ${MAX_KEY_ID} (it is stored in ${KEY_ID_BYTES} bytes) (got ${describe(id)}).`)
      }
      if (made.some((m) => m.id === id)) throw new InvalidOptionError(`${at}.id ${id} is listed twice: key ids must be unique.`)
      made.push(new MasterKey(id as number, keyBytes(key, `${at}.key`)))
    })
    return new Keyring(made)
  }

  /** The key with this id, or undefined when it is not (or no longer) listed. */
  get(id: number): MasterKey | undefined {
    return this.#byId.get(id)
  }

  get ids(): number[] {
    return [...this.#byId.keys()]
  }

  toJSON(): object {
    return { ids: this.ids }
  }
}

/** 32 key bytes from a Buffer/Uint8Array or strict base64 text; the message never shows the bytes. */
function keyBytes(key: unknown, name: string): Buffer {
  let bytes: Buffer
  if (key instanceof Uint8Array) bytes = Buffer.from(key)
  else if (typeof key === 'string') {
    const text = key.trim()
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
      throw new InvalidOptionError(`${name} must be 32 bytes, as a Buffer/Uint8Array or base64 text (the text given is not base64).`)
    }
    bytes = Buffer.from(text, 'base64')
  } else {
    throw new InvalidOptionError(`${name} must be 32 bytes, as a Buffer/Uint8Array or base64 text (got ${describe(key)}).`)
  }
  if (bytes.length !== KEY_BYTES) throw new InvalidOptionError(`${name} must be ${KEY_BYTES} bytes (got ${bytes.length}).`)
  return bytes
}
