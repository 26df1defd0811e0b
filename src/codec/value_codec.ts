import { Packr } from 'msgpackr'
import { compressSync, uncompressSync } from 'lz4-napi'
import { InvalidValueError, ValueTooLargeError } from '../errors.js'
import { describe } from '../util/units.js'
import { checkMsgpack, ValueLimitError } from './msgpack_limits.js'

/**
 * Values are serialized with msgpackr in structured-clone mode: plain objects,
 * arrays, strings, numbers, bigint, Date, Map, Set, typed arrays/Buffer, RegExp,
 * Error, and nested, shared or cyclic references all round-trip. Functions and
 * symbols are rejected anywhere in the value, `undefined` at the top level.
 */
class RejectFunction extends Error {}
const packr = new Packr({
  structuredClone: true,
  mapsAsObjects: false,
  writeFunction: () => {
    throw new RejectFunction()
  },
})
// Decoding never needs state from encoding (records travel inside each message),
// so any thread can decode what any other encoded.
const unpackr = new Packr({ structuredClone: true, mapsAsObjects: false })

/** Largest LZ4 output we will inflate: Redis strings stop at 512 MiB. */
const MAX_INFLATED = 512 * 1024 * 1024
/**
 * LZ4 turns each input byte into at most ~255 output bytes (a match's length is
 * extended 255 per byte), so a block of n bytes cannot inflate past 255 n plus a
 * few bytes of its last sequence: a header claiming more is a lie.
 */
export const LZ4_MAX_RATIO = 255
const LZ4_SLACK = 64

export interface EncodedValue {
  /** msgpack bytes, uncompressed: what every reader decodes. */
  raw: Uint8Array
  /** What goes into the envelope: `raw` or its LZ4 form. */
  stored: Uint8Array
  compressed: boolean
}

export function serialize(value: unknown, maxValueBytes: number, compressThreshold: number): EncodedValue {
  if (value === undefined) {
    throw new InvalidValueError('undefined cannot be cached: get() returns undefined for a missing entry. Store null instead, or delete the key.')
  }
  const t = typeof value
  if (t === 'function' || t === 'symbol') {
    throw new InvalidValueError(`${describe(value)} cannot be cached; store plain data (objects, arrays, strings, numbers, bigint, Date, Map, Set, Buffer).`)
  }
  let raw: Uint8Array
  try {
    raw = packr.pack(value)
  } catch (err) {
    if (err instanceof RejectFunction) {
      throw new InvalidValueError('The value contains a function; functions cannot be cached. Remove it or store plain data instead.')
    }
    const msg = err instanceof Error ? err.message : String(err)
    throw new InvalidValueError(`The value cannot be serialized (${msg}); symbols and other non-data values cannot be cached.`, err)
  }
  if (raw.length > maxValueBytes) {
    throw new ValueTooLargeError(
      `The encoded value is ${raw.length} bytes, over maxValueBytes (${maxValueBytes}). Store a smaller value or raise maxValueBytes.`,
    )
  }
  // The limits every read applies (msgpack_limits.ts), so anything written here reads back.
  try {
    checkMsgpack(raw, maxValueBytes)
  } catch (err) {
    if (!(err instanceof ValueLimitError)) throw err
    if (err.kind === 'heap') throw new ValueTooLargeError(`The value cannot be cached: ${err.message}. Store a smaller value or raise maxValueBytes.`)
    throw new InvalidValueError(`The value cannot be cached: ${err.message}. Flatten it or store it in parts.`)
  }
  if (raw.length >= compressThreshold) {
    const packed = compressSync(raw as Buffer)
    if (packed.length < raw.length) return { raw, stored: packed, compressed: true }
  }
  return { raw, stored: raw, compressed: false }
}

/**
 * Throws when a stored payload's declared size is out of bounds: over
 * maxValueBytes, or (compressed) more than its LZ4 bytes can inflate to. O(1):
 * reads the 4-byte LZ4 header, allocates nothing.
 */
export function checkDeclaredSize(stored: Uint8Array, compressed: boolean, maxValueBytes: number): void {
  if (!compressed) {
    if (stored.length > maxValueBytes) throw new Error(`the payload is ${stored.length} bytes, over maxValueBytes (${maxValueBytes})`)
    return
  }
  if (stored.length < 4) throw new Error('truncated LZ4 payload')
  const claimed = lz4Claim(stored)
  if (claimed > maxValueBytes || claimed > MAX_INFLATED) throw new Error(`the LZ4 payload claims ${claimed} bytes, over maxValueBytes (${maxValueBytes})`)
  if (claimed > (stored.length - 4) * LZ4_MAX_RATIO + LZ4_SLACK) {
    throw new Error(`the LZ4 payload claims ${claimed} bytes, more than its ${stored.length} bytes can hold`)
  }
}

/** The inflated size an LZ4 payload's header declares (u32 LE); the payload has at least 4 bytes. */
export function lz4Claim(stored: Uint8Array): number {
  return ((stored[0] as number) | ((stored[1] as number) << 8) | ((stored[2] as number) << 16) | ((stored[3] as number) << 24)) >>> 0
}

/** The msgpack bytes of a stored payload (inflating it when compressed), refused before allocating when over maxValueBytes. */
export function inflate(stored: Uint8Array, compressed: boolean, maxValueBytes: number): Uint8Array {
  checkDeclaredSize(stored, compressed, maxValueBytes)
  if (!compressed) return stored
  const raw = uncompressSync(Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength))
  if (raw.length > maxValueBytes) throw new Error(`the LZ4 payload inflated to ${raw.length} bytes, over maxValueBytes (${maxValueBytes})`)
  return raw
}

/**
 * Throws (a plain Error saying which limit) unless `raw` is one msgpack value
 * within the limits of msgpack_limits.ts: run it on bytes from outside this
 * process before `deserialize`.
 */
export function checkDecodable(raw: Uint8Array, maxValueBytes: number): void {
  if (raw.length > maxValueBytes) throw new Error(`the value is ${raw.length} bytes, over maxValueBytes (${maxValueBytes})`)
  checkMsgpack(raw, maxValueBytes)
}

/** A fresh, independent value from msgpack bytes that `serialize` produced or `checkDecodable` passed. */
export function deserialize(raw: Uint8Array): unknown {
  return unpackr.unpack(raw)
}
