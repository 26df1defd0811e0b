/**
 * One record of the write-ahead log: a batch of `TierWrite`s. Pure functions over
 * Buffers: no files here (segments: wal_scan.ts; the log: wal.ts).
 *
 * Record (little-endian)
 *   u32 length of payload | u32 CRC-32 (IEEE) of payload | payload
 *   payload = u64 seq | f64 append time (ms since epoch) | u32 count |
 *             count × ( u32 key length | key UTF-8 | f64 px (NaN = no expiry) |
 *                       u32 bytes length | bytes )
 * Sequence numbers start at 1 and are contiguous across segments: a record's seq
 * is its segment's first seq plus its index in the segment.
 */
import { InvalidOptionError, ValueTooLargeError } from '../errors.js'
import type { TierWrite } from '../tiers/tier.js'
import { crc32 } from './wal_crc.js'

export interface WalRecord {
  seq: number
  /** When the batch was appended (ms since the epoch), so TTLs can be shortened on replay. */
  time: number
  writes: TierWrite[]
}

/** u32 length + u32 crc. */
export const HEADER = 8
/** u64 seq + f64 time + u32 count. */
export const PAYLOAD_FIXED = 20
const MAX_PAYLOAD = 0xffff_ffff
const TWO_32 = 2 ** 32

/** Why `writes` cannot be a record (not an array of `{ key, bytes, px }`), or undefined. */
export function invalidWrites(writes: readonly TierWrite[]): InvalidOptionError | undefined {
  if (!Array.isArray(writes)) return new InvalidOptionError('append takes an array of { key, bytes, px } writes.')
  for (const w of writes) {
    if (typeof w !== 'object' || w === null || typeof w.key !== 'string' || !(w.bytes instanceof Uint8Array)) {
      return new InvalidOptionError('Each write must be { key: string, bytes: Buffer, px: number | undefined }.')
    }
    if (w.px !== undefined && !(typeof w.px === 'number' && w.px > 0 && w.px !== Infinity)) {
      return new InvalidOptionError(`px must be a positive number of milliseconds or undefined (got ${String(w.px)} for ${w.key}).`)
    }
  }
  return undefined
}

/** A whole record (header included) with its seq and CRC still to be filled in by `sealRecord`. */
export function encodeRecord(writes: readonly TierWrite[], time: number): Buffer {
  let size = HEADER + PAYLOAD_FIXED
  const keyLens = new Array<number>(writes.length)
  for (let i = 0; i < writes.length; i++) {
    const w = writes[i] as TierWrite
    const kl = Buffer.byteLength(w.key, 'utf8')
    keyLens[i] = kl
    size += 4 + kl + 8 + 4 + w.bytes.length
  }
  if (size - HEADER > MAX_PAYLOAD) {
    throw new ValueTooLargeError(`A write-ahead log record holds at most 4 GiB; this batch of ${writes.length} writes encodes to ${size - HEADER} bytes. Enqueue it in smaller batches.`)
  }
  const buf = Buffer.allocUnsafe(size)
  buf.writeUInt32LE(size - HEADER, 0)
  let o = HEADER + 8
  o = buf.writeDoubleLE(time, o)
  o = buf.writeUInt32LE(writes.length, o)
  for (let i = 0; i < writes.length; i++) {
    const w = writes[i] as TierWrite
    const kl = keyLens[i] as number
    o = buf.writeUInt32LE(kl, o)
    o += buf.write(w.key, o, kl, 'utf8')
    o = buf.writeDoubleLE(w.px === undefined ? NaN : w.px, o)
    o = buf.writeUInt32LE(w.bytes.length, o)
    o += Buffer.from(w.bytes.buffer, w.bytes.byteOffset, w.bytes.length).copy(buf, o)
  }
  return buf
}

/** Stamps the sequence number and the CRC into a record made by `encodeRecord`. */
export function sealRecord(record: Buffer, seq: number): void {
  record.writeUInt32LE(seq % TWO_32, HEADER)
  record.writeUInt32LE(Math.floor(seq / TWO_32), HEADER + 4)
  record.writeUInt32LE(crc32(record.subarray(HEADER)), 4)
}

/** The u64 sequence number at `at` (as a JS number: exact up to 2^53). */
export function readSeq(buf: Buffer, at: number): number {
  return (buf.readUInt32LE(at) as number) + (buf.readUInt32LE(at + 4) as number) * TWO_32
}

/** The record in `payload` (CRC already checked), or a reason it is malformed. Bytes are views into `payload`. */
export function decodePayload(payload: Buffer): WalRecord | string {
  if (payload.length < PAYLOAD_FIXED) return 'payload shorter than its fixed fields'
  const seq = readSeq(payload, 0)
  const time = payload.readDoubleLE(8)
  const count = payload.readUInt32LE(16)
  let o = PAYLOAD_FIXED
  const writes: TierWrite[] = []
  for (let i = 0; i < count; i++) {
    if (o + 4 > payload.length) return `write ${i} of ${count} runs past the payload`
    const kl = payload.readUInt32LE(o)
    o += 4
    if (o + kl + 12 > payload.length) return `write ${i} of ${count} runs past the payload`
    const key = payload.toString('utf8', o, o + kl)
    o += kl
    const pxRaw = payload.readDoubleLE(o)
    o += 8
    const bl = payload.readUInt32LE(o)
    o += 4
    if (o + bl > payload.length) return `write ${i} of ${count} runs past the payload`
    writes.push({ key, bytes: payload.subarray(o, o + bl), px: Number.isNaN(pxRaw) ? undefined : pxRaw })
    o += bl
  }
  if (o !== payload.length) return `${payload.length - o} bytes left over after ${count} writes`
  return { seq, time, writes }
}
