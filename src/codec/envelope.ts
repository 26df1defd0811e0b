import { h32 } from '../../wasm/hash.js'

/**
 * The bytes stored for every entry, in every tier (little-endian):
 *
 *   0  'N' 'C'          magic
 *   2  u8  version      ENVELOPE_VERSION
 *   3  u8  flags        bit0 payload LZ4-compressed, bit1 has tags, bits 4-7 codec id
 *   4  u32 headerLength offset of the payload
 *   8  u32 checksum     xxh32 of every byte from offset 12 to the end
 *  12  f64 createdAt    ms, from the cache's clock
 *  20  f64 expiresAt    ms, 0 = never (the TTL: after it the entry reads as missing)
 *  28  f64 softExpiresAt ms, 0 = none (getOrSet's softTtl: after it the value is refreshed in the background)
 *  36  f64 staleUntil   ms, 0 = none (getOrSet's grace: until then an expired value may stand in when the loader or L2 fails)
 *  44  tags (only with bit1): u16 count, then per tag u16 byteLength, UTF-8 name, f64 epoch
 *      payload
 *
 * Anything that does not parse, or whose checksum does not match, is rejected
 * with an EnvelopeError; callers turn that into a miss plus an error event.
 *
 * Version 3, "sealed" (encryption on; src/security/entry_cipher.ts): what Redis,
 * the WAL and backups hold. The same fixed header and tag section as version 2
 * (so `storedUntil` and tools that read expiry work on both), then
 *
 *   T   u16 keyId       which configured key (`encryption.keys[].id`, 2 bytes: 0-65535)
 *   T+2 16 bytes salt   the writer's HKDF salt of its entry subkey (one per process)
 *   T+18 12 bytes nonce random, one per seal
 *   T+30 = headerLength; payload: AES-256-GCM ciphertext of the version-2 payload,
 *        then its 16-byte authentication tag
 *
 * where T is the end of the tag section (44 without tags). The checksum (xxh32,
 * a cheap damage check, not a defence) is computed last, over the sealed bytes.
 */
export const ENVELOPE_VERSION = 2
export const FIXED_HEADER = 44
const FLAG_COMPRESSED = 1
const FLAG_TAGS = 2
export const CODEC_MSGPACKR = 0
/** Byte offsets of the fixed header's times (see the layout above). */
const AT = { createdAt: 12, expiresAt: 20, softExpiresAt: 28, staleUntil: 36 } as const

export interface TagStamp {
  name: string
  epoch: number
}

export interface EntryMeta {
  createdAt: number
  /** 0 = never */
  expiresAt: number
  /** 0 = none */
  softExpiresAt: number
  /** 0 = none */
  staleUntil: number
  tags: TagStamp[] | undefined
  compressed: boolean
  codec: number
}

export interface Envelope extends EntryMeta {
  payload: Uint8Array
}

export class EnvelopeError extends Error {}

/**
 * The last moment anything may read stored bytes: the later of their expiry and
 * their grace end, 0 = never (also for bytes that are not an envelope, such as
 * tag-epoch counters). Reads only the fixed header (no checksum: the bytes were
 * just written or just read from L2, where the full parse checks them), so an L1
 * copy never outlives its entry.
 */
export function storedUntil(bytes: Uint8Array): number {
  if (bytes.length < FIXED_HEADER || bytes[0] !== 0x4e || bytes[1] !== 0x43) return 0
  const view = new DataView(bytes.buffer, bytes.byteOffset, FIXED_HEADER)
  return Math.max(view.getFloat64(AT.expiresAt, true), view.getFloat64(AT.staleUntil, true))
}

export function encodeEnvelope(payload: Uint8Array, meta: EntryMeta): Buffer {
  let tagBytes = 0
  const names = meta.tags?.map((t) => Buffer.from(t.name, 'utf8'))
  if (names) {
    tagBytes = 2
    for (const n of names) tagBytes += 2 + n.length + 8
  }
  const headerLength = FIXED_HEADER + tagBytes
  const buf = Buffer.allocUnsafe(headerLength + payload.length)
  buf[0] = 0x4e
  buf[1] = 0x43
  buf[2] = ENVELOPE_VERSION
  buf[3] = (meta.compressed ? FLAG_COMPRESSED : 0) | (names ? FLAG_TAGS : 0) | (meta.codec << 4)
  buf.writeUInt32LE(headerLength, 4)
  buf.writeDoubleLE(meta.createdAt, AT.createdAt)
  buf.writeDoubleLE(meta.expiresAt, AT.expiresAt)
  buf.writeDoubleLE(meta.softExpiresAt, AT.softExpiresAt)
  buf.writeDoubleLE(meta.staleUntil, AT.staleUntil)
  if (names && meta.tags) {
    let off = FIXED_HEADER
    buf.writeUInt16LE(names.length, off)
    off += 2
    for (let i = 0; i < names.length; i++) {
      const n = names[i] as Buffer
      buf.writeUInt16LE(n.length, off)
      n.copy(buf, off + 2)
      off += 2 + n.length
      buf.writeDoubleLE((meta.tags[i] as TagStamp).epoch, off)
      off += 8
    }
  }
  buf.set(payload, headerLength)
  buf.writeUInt32LE(h32(buf.subarray(12)), 8)
  return buf
}

/** Parses and verifies an envelope; the payload is a view into `buf`. */
export function decodeEnvelope(buf: Uint8Array): Envelope {
  if (buf.length < FIXED_HEADER || buf[0] !== 0x4e || buf[1] !== 0x43) {
    throw new EnvelopeError('not a nearcache entry (no magic bytes)')
  }
  if (buf[2] === SEALED_VERSION) throw new EnvelopeError('encrypted entry (envelope version 3) and this cache has no encryption keys')
  if (buf[2] !== ENVELOPE_VERSION) throw new EnvelopeError(`unknown envelope version ${buf[2]}`)
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  const flags = buf[3] as number
  const headerLength = view.getUint32(4, true)
  if (headerLength < FIXED_HEADER || headerLength > buf.length) throw new EnvelopeError('bad header length')
  if (view.getUint32(8, true) !== h32(buf.subarray(12))) throw new EnvelopeError('checksum mismatch')
  let tags: TagStamp[] | undefined
  if (flags & FLAG_TAGS) {
    tags = []
    let off = FIXED_HEADER
    const count = view.getUint16(off, true)
    off += 2
    for (let i = 0; i < count; i++) {
      const len = view.getUint16(off, true)
      const name = Buffer.from(buf.buffer, buf.byteOffset + off + 2, len).toString('utf8')
      off += 2 + len
      tags.push({ name, epoch: view.getFloat64(off, true) })
      off += 8
    }
    if (off !== headerLength) throw new EnvelopeError('bad tag section')
  }
  return {
    createdAt: view.getFloat64(AT.createdAt, true),
    expiresAt: view.getFloat64(AT.expiresAt, true),
    softExpiresAt: view.getFloat64(AT.softExpiresAt, true),
    staleUntil: view.getFloat64(AT.staleUntil, true),
    tags,
    compressed: (flags & FLAG_COMPRESSED) !== 0,
    codec: flags >> 4,
    payload: buf.subarray(headerLength),
  }
}

/** Version of sealed (encrypted) envelopes. */
export const SEALED_VERSION = 3
/** Bytes of a sealed envelope's seal fields: key id (u16), salt (16), nonce (12). */
export const SEAL_FIELDS = 2 + 16 + 12
export const SEAL_SALT_BYTES = 16
export const SEAL_NONCE_BYTES = 12
/** AES-GCM authentication tag, after the ciphertext. */
export const SEAL_TAG_BYTES = 16

/** The envelope version of stored bytes (2 plain, 3 sealed, …), or undefined when they are not an envelope. */
export function envelopeVersion(bytes: Uint8Array): number | undefined {
  return bytes.length >= FIXED_HEADER && bytes[0] === 0x4e && bytes[1] === 0x43 ? bytes[2] : undefined
}

/** Where a sealed envelope's parts are; every offset checked against its length. */
export interface SealedLayout {
  /** End of the tag section: where the plain envelope's payload would start. */
  tagEnd: number
  /** Start of the ciphertext (end of the seal fields). */
  headerLength: number
  keyId: number
  salt: Uint8Array
  nonce: Uint8Array
  ciphertext: Uint8Array
  authTag: Uint8Array
}

/** Header byte offsets a sealed layout needs; no checksum check. Undefined when they do not fit. */
function layoutOf(buf: Uint8Array): SealedLayout | undefined {
  if (envelopeVersion(buf) !== SEALED_VERSION) return undefined
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  const headerLength = view.getUint32(4, true)
  const tagEnd = headerLength - SEAL_FIELDS
  if (tagEnd < FIXED_HEADER || headerLength + SEAL_TAG_BYTES > buf.length) return undefined
  return {
    tagEnd,
    headerLength,
    keyId: view.getUint16(tagEnd, true),
    salt: buf.subarray(tagEnd + 2, tagEnd + 2 + SEAL_SALT_BYTES),
    nonce: buf.subarray(tagEnd + 2 + SEAL_SALT_BYTES, headerLength),
    ciphertext: buf.subarray(headerLength, buf.length - SEAL_TAG_BYTES),
    authTag: buf.subarray(buf.length - SEAL_TAG_BYTES),
  }
}

/** The key id of sealed bytes, or undefined for anything else (no checksum check). */
export function sealedKeyId(buf: Uint8Array): number | undefined {
  return layoutOf(buf)?.keyId
}

/** The layout of a sealed envelope, its checksum verified; throws an EnvelopeError. */
export function readSealed(buf: Uint8Array): SealedLayout {
  const layout = layoutOf(buf)
  if (!layout) throw new EnvelopeError('bad sealed header (lengths out of range)')
  if (new DataView(buf.buffer, buf.byteOffset, 12).getUint32(8, true) !== h32(buf.subarray(12))) throw new EnvelopeError('checksum mismatch (damaged)')
  return layout
}

/**
 * The additional authenticated data of a sealed envelope for Redis key `fullKey`:
 * u32 length + UTF-8 of the key, then every header byte before the ciphertext
 * except the checksum field (bytes 8-11, computed after sealing).
 */
export function sealedAad(fullKey: string, sealed: Uint8Array, headerLength: number): Buffer {
  const keyLen = Buffer.byteLength(fullKey, 'utf8')
  const aad = Buffer.allocUnsafe(4 + keyLen + headerLength - 4)
  aad.writeUInt32LE(keyLen, 0)
  aad.write(fullKey, 4, 'utf8')
  aad.set(sealed.subarray(0, 8), 4 + keyLen)
  aad.set(sealed.subarray(12, headerLength), 12 + keyLen)
  return aad
}

/**
 * The start of a sealed envelope made from a plain (version 2) one: its header and
 * tags, then the seal fields; room for `bodyLength` bytes of ciphertext + tag after
 * `headerLength`, filled by the caller, who then calls `finishSealed`. Throws an
 * EnvelopeError when `plain` is not a version-2 envelope.
 */
export function startSealed(plain: Uint8Array, keyId: number, salt: Uint8Array, nonce: Uint8Array, bodyLength: number): { sealed: Buffer; headerLength: number; payload: Uint8Array } {
  if (envelopeVersion(plain) !== ENVELOPE_VERSION) throw new EnvelopeError('only a plain (version 2) envelope can be sealed')
  const tagEnd = new DataView(plain.buffer, plain.byteOffset, 8).getUint32(4, true)
  if (tagEnd < FIXED_HEADER || tagEnd > plain.length) throw new EnvelopeError('bad header length')
  const headerLength = tagEnd + SEAL_FIELDS
  const sealed = Buffer.allocUnsafe(headerLength + bodyLength)
  sealed.set(plain.subarray(0, tagEnd), 0)
  sealed[2] = SEALED_VERSION
  sealed.writeUInt32LE(headerLength, 4)
  sealed.writeUInt16LE(keyId, tagEnd)
  sealed.set(salt, tagEnd + 2)
  sealed.set(nonce, tagEnd + 2 + SEAL_SALT_BYTES)
  return { sealed, headerLength, payload: plain.subarray(tagEnd) }
}

/** Writes the checksum of a sealed (or plain) envelope once every other byte is in place. */
export function finishEnvelope(buf: Buffer): Buffer {
  buf.writeUInt32LE(h32(buf.subarray(12)), 8)
  return buf
}

/** The plain (version 2) envelope of an authenticated sealed one and its decrypted payload. */
export function unsealed(sealed: Uint8Array, layout: SealedLayout, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(layout.tagEnd + payload.length)
  out.set(sealed.subarray(0, layout.tagEnd), 0)
  out[2] = ENVELOPE_VERSION
  out.writeUInt32LE(layout.tagEnd, 4)
  out.set(payload, layout.tagEnd)
  return finishEnvelope(out)
}
