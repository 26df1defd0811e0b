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
