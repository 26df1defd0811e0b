import { decodeEnvelope, encodeEnvelope, CODEC_MSGPACKR } from './envelope.js'
import type { Envelope, TagStamp } from './envelope.js'
import { checkDeclaredSize, checkDecodable, deserialize, inflate, serialize } from './value_codec.js'
import type { ResolvedOptions } from '../options/options.js'

/** What a write needs once the value is encoded: everything but the tag epochs. */
export interface PreparedValue {
  /** msgpack bytes (uncompressed): decoded by waiters of a coalesced load. */
  raw: Uint8Array
  stored: Uint8Array
  compressed: boolean
}

export function prepareValue(value: unknown, o: ResolvedOptions): PreparedValue {
  return serialize(value, o.maxValueBytes, o.compressThreshold)
}

/** The effective TTL (jitter applied), or undefined for no expiry. */
export function effectiveTtl(ttl: number | undefined, jitterPercent: number): number | undefined {
  if (ttl === undefined || jitterPercent === 0) return ttl
  return Math.max(1, Math.round(ttl * (1 - (Math.random() * jitterPercent) / 100)))
}

/** getOrSet's freshness options (ms): softTtl and grace are stored in the envelope, earlyRefresh is read-time only. */
export interface Freshness {
  softTtl?: number
  grace?: number
  earlyRefresh?: number
}

export function buildEnvelope(v: PreparedValue, now: number, ttl: number | undefined, tags: TagStamp[] | undefined, f: Freshness = {}): Buffer {
  return encodeEnvelope(v.stored, {
    createdAt: now,
    expiresAt: ttl === undefined ? 0 : now + ttl,
    softExpiresAt: f.softTtl === undefined ? 0 : now + f.softTtl,
    staleUntil: ttl === undefined || f.grace === undefined ? 0 : now + ttl + f.grace,
    tags,
    compressed: v.compressed,
    codec: CODEC_MSGPACKR,
  })
}

export { decodeEnvelope }
export type { Envelope }

/**
 * Parses and verifies envelope bytes from a tier, and refuses (O(1), nothing
 * allocated) a payload of an unknown codec or whose declared size is over
 * maxValueBytes or over what its LZ4 bytes can hold. Throws; callers make it a
 * miss plus an E_CORRUPT_ENTRY 'error' event.
 */
export function parseEntry(raw: Uint8Array, maxValueBytes: number): Envelope {
  const env = decodeEnvelope(raw)
  if (env.codec !== CODEC_MSGPACKR) throw new Error(`unknown codec ${env.codec}`)
  checkDeclaredSize(env.payload, env.compressed, maxValueBytes)
  return env
}

/**
 * The msgpack bytes of an envelope's payload, checked against every limit (size
 * before inflating, then depth and decoded memory: msgpack_limits.ts), ready for
 * `deserialize`. Throws on a bad payload.
 */
export function payloadBytes(env: Envelope, maxValueBytes: number): Uint8Array {
  if (env.codec !== CODEC_MSGPACKR) throw new Error(`unknown codec ${env.codec}`)
  const raw = inflate(env.payload, env.compressed, maxValueBytes)
  checkDecodable(raw, maxValueBytes)
  return raw
}

/** The value of an envelope read from a tier, within the limits; throws on a bad payload. */
export function decodeValue(env: Envelope, maxValueBytes: number): unknown {
  return deserialize(payloadBytes(env, maxValueBytes))
}
