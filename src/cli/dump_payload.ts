/**
 * Checks of a Redis DUMP payload before `restore` sends it: only strings (what
 * nearcache stores: entries and tag epochs) are restored. A payload is
 *   <RDB type byte> <the value, RDB-encoded> <RDB version: 2 bytes LE> <CRC64 of all before: 8 bytes LE>
 * (Redis's own verifyDumpPayload checks the footer too; checking here names the
 * line and key, and refuses other types Redis would happily restore.)
 */

/** RDB_TYPE_STRING in Redis's rdb.h. */
export const RDB_TYPE_STRING = 0
/** Newest RDB version this check accepts (Redis 7.0 writes 10, 7.2 11, 7.4 and 8.x 12). */
export const MAX_RDB_VERSION = 32
const FOOTER = 10

// CRC-64/Jones as Redis computes it (reflected, polynomial 0xad93d23594c935a9,
// init 0, no final xor), in two 32-bit halves.
const POLY_HI = 0x95ac9329
const POLY_LO = 0xac4bc9b5
const T_HI = new Uint32Array(256)
const T_LO = new Uint32Array(256)
for (let n = 0; n < 256; n++) {
  let hi = 0
  let lo = n
  for (let k = 0; k < 8; k++) {
    const bit = lo & 1
    lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0
    hi = hi >>> 1
    if (bit) {
      lo = (lo ^ POLY_LO) >>> 0
      hi = (hi ^ POLY_HI) >>> 0
    }
  }
  T_HI[n] = hi
  T_LO[n] = lo
}

/** Redis's crc64 of `buf`, as [high, low] 32-bit halves. */
export function crc64(buf: Uint8Array): [number, number] {
  let hi = 0
  let lo = 0
  for (let i = 0; i < buf.length; i++) {
    const idx = (lo ^ (buf[i] as number)) & 0xff
    lo = (((lo >>> 8) | (hi << 24)) ^ (T_LO[idx] as number)) >>> 0
    hi = ((hi >>> 8) ^ (T_HI[idx] as number)) >>> 0
  }
  return [hi, lo]
}

/**
 * Where an RDB length ends and what it says, from `at`: undefined when it runs
 * past `end`. `special` is the encoding of an integer or LZF string (0xC0..0xC3).
 */
export function rdbLength(p: Buffer, at: number, end: number): { len: number; next: number; special?: number } | undefined {
  if (at >= end) return undefined
  const b = p[at] as number
  switch (b >> 6) {
    case 0:
      return { len: b & 0x3f, next: at + 1 }
    case 1:
      return at + 2 <= end ? { len: ((b & 0x3f) << 8) | (p[at + 1] as number), next: at + 2 } : undefined
    case 2:
      if (b === 0x80) return at + 5 <= end ? { len: p.readUInt32BE(at + 1), next: at + 5 } : undefined
      if (b === 0x81 && at + 9 <= end) {
        const len = Number(p.readBigUInt64BE(at + 1))
        return Number.isSafeInteger(len) ? { len, next: at + 9 } : undefined
      }
      return undefined
    default:
      return { len: 0, next: at + 1, special: b & 0x3f }
  }
}

/** Why `payload` is not a DUMP of a string this nearcache can restore; undefined when it is. */
export function dumpProblem(payload: Buffer): string | undefined {
  if (payload.length < 1 + 1 + FOOTER) return `the DUMP payload is too short (${payload.length} bytes)`
  const end = payload.length - FOOTER
  const version = payload.readUInt16LE(end)
  const [hi, lo] = crc64(payload.subarray(0, end + 2))
  if (payload.readUInt32LE(end + 2) !== lo || payload.readUInt32LE(end + 6) !== hi) return 'the DUMP payload fails its CRC64 check (damaged or edited)'
  if (version < 1 || version > MAX_RDB_VERSION) return `the DUMP payload has RDB version ${version}, which this nearcache does not know`
  const type = payload[0] as number
  if (type !== RDB_TYPE_STRING) return `the DUMP payload is of RDB type ${type}, not a string (type 0): nearcache restores only strings`
  const l = rdbLength(payload, 1, end)
  if (!l) return 'the DUMP payload has a bad string length'
  let bodyEnd: number
  if (l.special === undefined) bodyEnd = l.next + l.len
  else if (l.special <= 2) bodyEnd = l.next + (1 << l.special) // an int8, int16 or int32
  else if (l.special === 3) {
    // LZF: compressed length, original length, compressed bytes.
    const c = rdbLength(payload, l.next, end)
    const u = c && rdbLength(payload, c.next, end)
    if (!c || !u || c.special !== undefined || u.special !== undefined) return 'the DUMP payload has a bad compressed string'
    bodyEnd = u.next + c.len
  } else return `the DUMP payload has an unknown string encoding (${l.special})`
  if (bodyEnd !== end) return `the DUMP payload's string is ${bodyEnd > end ? 'cut short' : 'followed by extra bytes'}`
  return undefined
}
