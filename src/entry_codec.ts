import { decodeEnvelope, encodeEnvelope, CODEC_MSGPACKR } from './codec/envelope.js'
import type { Envelope, TagStamp } from './codec/envelope.js'
import { deserialize, inflate, serialize } from './codec/value_codec.js'
import type { ResolvedOptions } from './options.js'

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

/** getOrSet's freshness options, in ms. */
export interface Freshness {
  softTtl?: number
  grace?: number
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

/** The msgpack bytes of an envelope's payload; throws on a bad payload. */
export function payloadBytes(env: Envelope): Uint8Array {
  if (env.codec !== CODEC_MSGPACKR) throw new Error(`unknown codec ${env.codec}`)
  return inflate(env.payload, env.compressed)
}

export function decodeValue(env: Envelope): unknown {
  return deserialize(payloadBytes(env))
}
