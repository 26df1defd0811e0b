import { Packr } from 'msgpackr'
import { compressSync, uncompressSync } from 'lz4-napi'
import { InvalidValueError, ValueTooLargeError } from '../errors.js'
import { describe } from '../util/units.js'

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
  if (raw.length >= compressThreshold) {
    const packed = compressSync(raw as Buffer)
    if (packed.length < raw.length) return { raw, stored: packed, compressed: true }
  }
  return { raw, stored: raw, compressed: false }
}

/** The msgpack bytes of a stored payload (inflating it when compressed). */
export function inflate(stored: Uint8Array, compressed: boolean): Uint8Array {
  if (!compressed) return stored
  if (stored.length < 4) throw new Error('truncated LZ4 payload')
  const claimed = new DataView(stored.buffer, stored.byteOffset, stored.byteLength).getUint32(0, true)
  if (claimed > MAX_INFLATED) throw new Error(`LZ4 payload claims ${claimed} bytes`)
  return uncompressSync(Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength))
}

/** A fresh, independent value from msgpack bytes. */
export function deserialize(raw: Uint8Array): unknown {
  return unpackr.unpack(raw)
}
