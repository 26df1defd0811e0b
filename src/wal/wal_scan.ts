/**
 * Reading one segment file of the write-ahead log: its good records, and where and
 * why it stops being good (a torn tail, or damage). Pure functions over Buffers.
 * What the log does with a torn tail (wal_recover.ts) and with damage
 * (wal_replay.ts) is decided there.
 */
import { crc32 } from './wal_crc.js'
import { decodePayload, HEADER, PAYLOAD_FIXED, readSeq } from './wal_record.js'
import type { WalRecord } from './wal_record.js'

/** findValidRecords checks at most this many bytes per byte searched, plus CRC_BUDGET_BASE. */
const CRC_BUDGET_FACTOR = 4
const CRC_BUDGET_BASE = 1024 * 1024

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
