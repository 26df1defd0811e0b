import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto'
import { ENVELOPE_VERSION, SEAL_NONCE_BYTES, SEAL_TAG_BYTES, SEALED_VERSION, envelopeVersion, finishEnvelope, readSealed, sealedAad, sealedKeyId, startSealed, unsealed } from '../codec/envelope.js'
import type { SealedLayout } from '../codec/envelope.js'
import { CorruptEntryError } from '../errors.js'
import type { Keyring } from './keyring.js'

/** Subkeys of other processes' salts kept at most (a hostile writer can spray salts; each costs one HKDF). */
export const MAX_CACHED_SUBKEYS = 256
const ALGORITHM = 'aes-256-gcm'

/**
 * Authenticated encryption of entries (AES-256-GCM), bound to their Redis key.
 *
 * `seal` turns a plain envelope (version 2, codec/envelope.ts) into a sealed one
 * (version 3): same header and tags, then key id, the writer's salt and a random
 * 96-bit nonce, then the ciphertext of the payload and its tag. The additional
 * authenticated data is the full Redis key and every header byte (expiry times,
 * flags, tags, key id, salt, nonce), so a sealed value copied to another key, or
 * with its expiry or tags edited, fails to open, as does a changed ciphertext.
 *
 * Keys: this process encrypts under `primary.derive('entry', processSalt)`, its
 * own subkey (random nonces are safe for about 2^32 seals per subkey, and each
 * process has its own); an entry of another process is opened with
 * `get(keyId).derive('entry', itsSalt)`, cached in a bounded map.
 *
 * `open` never returns unauthenticated bytes: anything that fails is a
 * CorruptEntryError naming why. The one exception is a plain envelope when
 * `acceptPlaintext` is on (the migration window), which is returned unchanged.
 * No key material is reachable from outside (private fields).
 */
export class EntryCipher {
  readonly #keyring: Keyring
  readonly #acceptPlaintext: boolean
  readonly #sealId: number
  readonly #salt: Buffer
  readonly #sealKey: Buffer
  readonly #subkeys = new Map<string, Buffer>()
  readonly #nonce = Buffer.alloc(SEAL_NONCE_BYTES)

  constructor(keyring: Keyring, acceptPlaintext: boolean) {
    this.#keyring = keyring
    this.#acceptPlaintext = acceptPlaintext
    this.#sealId = keyring.primary.id
    this.#salt = keyring.processSalt
    this.#sealKey = keyring.primary.derive('entry', this.#salt)
  }

  /** Seals a plain envelope (what codec/envelope.encodeEnvelope made) for Redis key `fullKey`. */
  seal(fullKey: string, envelope: Uint8Array): Buffer {
    randomFillSync(this.#nonce)
    const bodyLength = envelope.length - headerOf(envelope) + SEAL_TAG_BYTES
    const { sealed, headerLength, payload } = startSealed(envelope, this.#sealId, this.#salt, this.#nonce, bodyLength)
    const cipher = createCipheriv(ALGORITHM, this.#sealKey, this.#nonce, { authTagLength: SEAL_TAG_BYTES })
    cipher.setAAD(sealedAad(fullKey, sealed, headerLength))
    let at = headerLength
    const head = cipher.update(payload)
    sealed.set(head, at)
    at += head.length
    const tail = cipher.final()
    sealed.set(tail, at)
    at += tail.length
    sealed.set(cipher.getAuthTag(), at)
    return finishEnvelope(sealed)
  }

  /**
   * The plain envelope of stored bytes; throws CorruptEntryError (E_CORRUPT_ENTRY,
   * the message says why) — never returns unauthenticated bytes, except plain
   * envelopes when acceptPlaintext is on.
   */
  open(fullKey: string, stored: Uint8Array): Buffer {
    const version = envelopeVersion(stored)
    if (version === undefined) throw refused(fullKey, 'is not a nearcache entry (no magic bytes)')
    if (version === ENVELOPE_VERSION) {
      if (this.#acceptPlaintext) return Buffer.isBuffer(stored) ? stored : Buffer.from(stored)
      throw refused(fullKey, 'is a plaintext entry and encryption is on (acceptPlaintext is off): it may have been planted by anyone who can write to Redis')
    }
    if (version !== SEALED_VERSION) throw refused(fullKey, `has an unknown envelope version ${version}`)
    let layout: SealedLayout
    try {
      layout = readSealed(stored)
    } catch (err) {
      throw refused(fullKey, `is damaged (${err instanceof Error ? err.message : String(err)})`)
    }
    const key = this.#keyFor(layout)
    if (key === undefined) {
      throw refused(fullKey, `is sealed with key id ${layout.keyId}, which is not in encryption.keys (a removed key?)`)
    }
    let plain: Buffer
    try {
      const decipher = createDecipheriv(ALGORITHM, key, layout.nonce, { authTagLength: SEAL_TAG_BYTES })
      decipher.setAAD(sealedAad(fullKey, stored, layout.headerLength))
      decipher.setAuthTag(layout.authTag)
      const head = decipher.update(layout.ciphertext)
      const tail = decipher.final()
      plain = tail.length === 0 ? head : Buffer.concat([head, tail])
    } catch {
      throw refused(
        fullKey,
        `failed authentication (key id ${layout.keyId}): it was sealed for another Redis key (copied or renamed), its header (expiry, tags) or ciphertext was changed, or key id ${layout.keyId} is not the key it was sealed with`,
      )
    }
    return unsealed(stored, layout, plain)
  }

  /** The key id stored bytes were sealed with; undefined for a plain envelope or non-entry. */
  static keyIdOf(stored: Uint8Array): number | undefined {
    return sealedKeyId(stored)
  }

  /** The subkey that opens `layout` (this process's own, or derived and cached), undefined for an unknown key id. */
  #keyFor(layout: SealedLayout): Buffer | undefined {
    if (layout.keyId === this.#sealId && this.#salt.equals(layout.salt)) return this.#sealKey
    const name = `${layout.keyId}:${Buffer.from(layout.salt.buffer, layout.salt.byteOffset, layout.salt.length).toString('hex')}`
    const cached = this.#subkeys.get(name)
    if (cached) return cached
    const master = this.#keyring.get(layout.keyId)
    if (!master) return undefined
    const subkey = master.derive('entry', layout.salt)
    if (this.#subkeys.size >= MAX_CACHED_SUBKEYS) this.#subkeys.delete(this.#subkeys.keys().next().value as string)
    this.#subkeys.set(name, subkey)
    return subkey
  }

  /** How many other processes' subkeys are cached (at most MAX_CACHED_SUBKEYS). */
  get cachedSubkeys(): number {
    return this.#subkeys.size
  }

  toJSON(): object {
    return { keyIds: this.#keyring.ids, acceptPlaintext: this.#acceptPlaintext }
  }
}

/** The plain envelope's header length (offset of its payload); startSealed validates it. */
function headerOf(envelope: Uint8Array): number {
  if (envelope.length < 8) return 0
  return new DataView(envelope.buffer, envelope.byteOffset, 8).getUint32(4, true)
}

function refused(fullKey: string, why: string): CorruptEntryError {
  return new CorruptEntryError(fullKey, `The entry at '${fullKey}' ${why}; it reads as missing.`)
}
