/**
 * The write-ahead log's record format and segment scanning (see wal.ts for the
 * layout and the recovery rules). Pure functions over Buffers: no files here.
 */
import * as zlib from 'node:zlib'
import { ValueTooLargeError } from '../errors.js'
import type { TierWrite } from '../tiers/tier.js'

export interface WalRecord {
  seq: number
  /** When the batch was appended (ms since the epoch), so TTLs can be shortened on replay. */
  time: number
  writes: TierWrite[]
}


// ---------------------------------------------------------------- CRC-32

let crcTable: Int32Array | undefined
/** Table-driven CRC-32 (IEEE 802.3, as zlib), for Node versions before 20.15 which lack zlib.crc32. */
export function crc32Fallback(data: Uint8Array, value = 0): number {
  if (!crcTable) {
    crcTable = new Int32Array(256)
    for (let n = 0; n < 256; n++) {
      let c = n
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
      crcTable[n] = c
    }
  }
  let c = ~value
  for (let i = 0; i < data.length; i++) c = (crcTable[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8)
  return ~c >>> 0
}
const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32
/** CRC-32 (IEEE): zlib's native one when this Node has it (20.15+), else a table-driven one. */
export const crc32: (data: Uint8Array, value?: number) => number = nativeCrc32 ?? crc32Fallback

// ---------------------------------------------------------------- record encoding

const HEADER = 8 // u32 length + u32 crc
const PAYLOAD_FIXED = 20 // u64 seq + f64 time + u32 count
const MAX_PAYLOAD = 0xffff_ffff
const TWO_32 = 2 ** 32
/** findValidRecords checks at most this many bytes per byte searched, plus CRC_BUDGET_BASE. */
const CRC_BUDGET_FACTOR = 4
const CRC_BUDGET_BASE = 1024 * 1024

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

function readSeq(buf: Buffer, at: number): number {
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

// ---------------------------------------------------------------- segment scanning

export interface Damage {
  offset: number
  reason: string
  /** A partial last record of the newest segment (a crash mid-append), not damage. */
  torn: boolean
}

export interface SegmentScan {
  records: WalRecord[]
  /** End of the last good record. */
  validEnd: number
  damage: Damage | undefined
  /** Highest sequence number seen, good records and any valid record found past damage. */
  maxSeq: number
}

/**
 * Looks for CRC-valid records with seq >= minSeq anywhere at or after `from`
 * (only to tell damage from a torn tail, and which numbers are taken): the
 * highest seq found, or -1.
 */
function findValidRecords(buf: Buffer, from: number, minSeq: number): { max: number; exhausted: boolean } {
  let max = -1
  // Bytes CRC-checked so far. Hostile bytes can make every offset look like the start of
  // a long record (quadratic work); past the budget the search stops and answers "maybe"
  // (`exhausted`): the bad record is then treated as damage (reported), never cut as a torn tail.
  let budget = CRC_BUDGET_FACTOR * (buf.length - from) + CRC_BUDGET_BASE
  for (let p = from; p + HEADER + PAYLOAD_FIXED <= buf.length; ) {
    const len = buf.readUInt32LE(p)
    if (len >= PAYLOAD_FIXED && p + HEADER + len <= buf.length) {
      const seq = readSeq(buf, p + HEADER)
      if (seq >= minSeq && seq <= Number.MAX_SAFE_INTEGER && (budget -= len) < 0) return { max, exhausted: true }
      if (seq >= minSeq && seq <= Number.MAX_SAFE_INTEGER && crc32(buf.subarray(p + HEADER, p + HEADER + len)) === buf.readUInt32LE(p + 4)) {
        max = Math.max(max, seq)
        p += HEADER + len
        continue
      }
    }
    p++
  }
  return { max, exhausted: false }
}

/**
 * Parses a segment. A bad record in the newest segment (`newest`) with no valid
 * record anywhere after it is a torn tail; any other bad record is damage.
 */
export function scanSegment(buf: Buffer, base: number, newest: boolean): SegmentScan {
  const records: WalRecord[] = []
  let o = 0
  let expected = base
  let reason: string | undefined
  let tearable = true
  let maxSeq = base - 1
  while (o < buf.length) {
    if (buf.length - o < HEADER) {
      reason = `a record header cut short (${buf.length - o} of ${HEADER} bytes)`
      break
    }
    const len = buf.readUInt32LE(o)
    if (len < PAYLOAD_FIXED) {
      reason = `a record length of ${len} (at least ${PAYLOAD_FIXED})`
      break
    }
    if (o + HEADER + len > buf.length) {
      reason = `a record of ${len} bytes running past the end of the file (${buf.length - o - HEADER} left)`
      break
    }
    const payload = buf.subarray(o + HEADER, o + HEADER + len)
    if (crc32(payload) !== buf.readUInt32LE(o + 4)) {
      reason = 'a CRC-32 mismatch'
      break
    }
    const rec = decodePayload(payload)
    tearable = false // a record with a valid CRC is not a torn write
    if (typeof rec === 'string') {
      reason = `a malformed record (${rec})`
      break
    }
    maxSeq = Math.max(maxSeq, rec.seq)
    if (rec.seq !== expected) {
      reason = `sequence number ${rec.seq} where ${expected} was expected`
      break
    }
    tearable = true
    records.push(rec)
    expected++
    o += HEADER + len
  }
  let damage: Damage | undefined
  if (reason !== undefined) {
    const later = findValidRecords(buf, o + 1, expected)
    const torn = newest && tearable && later.max < 0 && !later.exhausted
    // Damage (not a torn tail) takes the bad record's number too: it is reported lost, and never reused.
    maxSeq = Math.max(maxSeq, later.max, torn ? -1 : expected)
    damage = { offset: o, reason, torn }
  }
  return { records, validEnd: o, damage, maxSeq }
}
