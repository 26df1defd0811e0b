/**
 * Limits on what one cached value may decode to, checked by walking its msgpack
 * bytes before msgpackr turns them into objects. The same check runs on every
 * write (so anything `set` accepts reads back) and on every fresh decode of bytes
 * read from L1 or Redis (which another program may have written).
 *
 * - Depth: at most {@link MAX_DEPTH} nested containers (arrays, objects, Maps,
 *   Sets, an Error's fields). Deeper is E_INVALID_VALUE on write, E_CORRUPT_ENTRY on read.
 * - Memory: each element is charged an estimate of what it costs in the JS heap
 *   once decoded ({@link HEAP_COST}, measured with msgpackr 2.1 on Node 20: an empty
 *   Map is ~192 bytes, an array slot 8). The total may be at most
 *   {@link HEAP_FACTOR} × maxValueBytes, and never less than {@link HEAP_FLOOR}:
 *   64 MiB at the 16 MiB default. A container's slots are charged when its header
 *   is read, so an array of 15M zeros is refused at its first 5 bytes. Over it is E_VALUE_TOO_LARGE on write,
 *   E_CORRUPT_ENTRY on read. So 1 MB of empty Maps (~200 MB once decoded) is refused
 *   before anything is allocated.
 * - Only what nearcache's own encoder writes is accepted: msgpack with msgpackr's
 *   one-byte record ids and its structured-clone extensions (undefined, bigint,
 *   Date, Set, Error, RegExp, typed arrays, references). Anything else (trailing
 *   bytes, a truncated value, an unknown extension, the 0xc1 byte) is refused.
 *
 * The walk is iterative over siblings and recursive only per nesting level, which
 * MAX_DEPTH bounds; it allocates nothing but a 64-slot table of record sizes.
 */

/** Deepest nesting of containers a value may have. */
export const MAX_DEPTH = 128
/** Estimated decoded heap may be at most this many times maxValueBytes... */
export const HEAP_FACTOR = 4
/** ...and is never limited below this many bytes (so a small maxValueBytes does not refuse small values). */
export const HEAP_FLOOR = 8 * 1024 * 1024

/** Estimated JS heap bytes per decoded element (msgpackr 2.1, Node 20, measured per kind with --expose-gc). */
export const HEAP_COST = {
  /** Every value: its slot in the parent (array element, property, Map key or value), charged by the parent. */
  slot: 8,
  /** A heap number, a 64-bit integer as bigint. */
  number: 24,
  /** A string's header; its bytes are charged too. */
  string: 16,
  array: 40,
  object: 56,
  /** Per property of a record object (beyond its slot). */
  property: 8,
  map: 192,
  /** Per Map entry (beyond the two slots). */
  mapEntry: 16,
  set: 160,
  date: 96,
  regexp: 96,
  /** An Error captures a stack trace. */
  error: 768,
  /** A Buffer / typed array / ArrayBuffer header; its bytes are charged too. */
  binary: 192,
  /** A structured-clone id: the placeholder object a cycle is assembled into. */
  reference: 64,
} as const

/** Why a value broke a limit: depth and shape are invalid values, heap is a size. */
export type LimitKind = 'depth' | 'heap' | 'malformed'

export class ValueLimitError extends Error {
  constructor(
    readonly kind: LimitKind,
    message: string,
  ) {
    super(message)
  }
}

/** The heap budget for a value under `maxValueBytes`. */
export function heapBudget(maxValueBytes: number): number {
  return Math.max(HEAP_FLOOR, HEAP_FACTOR * maxValueBytes)
}

// Walk state (one walk at a time per thread; the walk is synchronous and not re-entrant).
const NOTHING = new Uint8Array(0)
let src: Uint8Array = NOTHING
let pos = 0
let end = 0
let heap = 0
let budget = 0
/** Field count of each one-byte record id (0x40-0x7f) defined so far in this value, -1 = none. */
const records = new Int32Array(64).fill(-1)
/** Whether `records` holds definitions from an earlier walk (most small values define one record). */
let recordsUsed = false

/**
 * Checks that `raw` is one msgpack value within the limits; throws a
 * ValueLimitError saying which limit it broke. Returns the estimated heap bytes.
 */
export function checkMsgpack(raw: Uint8Array, maxValueBytes: number): number {
  src = raw
  pos = 0
  end = raw.length
  heap = 0
  budget = heapBudget(maxValueBytes)
  if (recordsUsed) {
    records.fill(-1)
    recordsUsed = false
  }
  try {
    charge(HEAP_COST.slot)
    value(0)
    if (pos !== end) throw malformed(`${end - pos} bytes after the value`)
    return heap
  } finally {
    src = NOTHING // do not keep the caller's bytes alive
  }
}

function malformed(why: string): ValueLimitError {
  return new ValueLimitError('malformed', `malformed msgpack: ${why}`)
}

function charge(bytes: number): void {
  heap += bytes
  if (heap > budget) {
    throw new ValueLimitError('heap', `the value would take more than ${budget} bytes of memory once decoded (the limit is ${HEAP_FACTOR} × maxValueBytes)`)
  }
}

/** Moves past `n` bytes that must be there. */
function skip(n: number): void {
  if (n > end - pos) throw malformed('truncated')
  pos += n
}

function u8(): number {
  if (pos >= end) throw malformed('truncated')
  return src[pos++] as number
}
function u16(): number {
  skip(2)
  return ((src[pos - 2] as number) << 8) | (src[pos - 1] as number)
}
function u32(): number {
  skip(4)
  return (((src[pos - 4] as number) << 24) | ((src[pos - 3] as number) << 16) | ((src[pos - 2] as number) << 8) | (src[pos - 1] as number)) >>> 0
}

/** `n` children one level deeper than `depth` (each takes at least one byte), their slots charged up front. */
function children(n: number, depth: number): void {
  if (n > end - pos) throw malformed('a container claims more elements than there are bytes')
  if (depth + 1 > MAX_DEPTH) throw new ValueLimitError('depth', `the value nests deeper than ${MAX_DEPTH} levels`)
  charge(n * HEAP_COST.slot)
  for (let i = 0; i < n; i++) value(depth + 1)
}

function array(n: number, depth: number): void {
  charge(HEAP_COST.array)
  children(n, depth)
}

function map(n: number, depth: number): void {
  charge(HEAP_COST.map + n * HEAP_COST.mapEntry)
  children(2 * n, depth)
}

function str(n: number): void {
  skip(n)
  charge(HEAP_COST.string + n)
}

/** One value at nesting `depth` (the number of containers around it); its slot is already charged. */
function value(depth: number): void {
  const t = u8()
  if (t < 0x40 || t >= 0xe0) return // fixints
  if (t < 0x80) {
    // msgpackr: a record reference when that id was defined earlier in this value, else an int.
    const fields = records[t & 0x3f] as number
    if (fields < 0) return
    charge(HEAP_COST.object + fields * HEAP_COST.property)
    return children(fields, depth)
  }
  // Empty containers are common in bombs: no children to walk.
  if (t < 0x90) return t === 0x80 ? charge(HEAP_COST.map) : map(t - 0x80, depth)
  if (t < 0xa0) return t === 0x90 ? charge(HEAP_COST.array) : array(t - 0x90, depth)
  if (t < 0xc0) return str(t - 0xa0)
  switch (t) {
    case 0xc0: case 0xc2: case 0xc3: return
    case 0xc4: return binary(u8())
    case 0xc5: return binary(u16())
    case 0xc6: return binary(u32())
    case 0xc7: return ext(u8(), depth)
    case 0xc8: return ext(u16(), depth)
    case 0xc9: return ext(u32(), depth)
    case 0xca: case 0xce: case 0xd2: skip(4); return charge(HEAP_COST.number)
    case 0xcb: case 0xcf: case 0xd3: skip(8); return charge(HEAP_COST.number)
    case 0xcc: case 0xd0: return skip(1)
    case 0xcd: case 0xd1: return skip(2)
    case 0xd4: return fixext1(depth)
    case 0xd5: return ext(2, depth)
    case 0xd6: return ext(4, depth)
    case 0xd7: return ext(8, depth)
    case 0xd8: return ext(16, depth)
    case 0xd9: return str(u8())
    case 0xda: return str(u16())
    case 0xdb: return str(u32())
    case 0xdc: return array(u16(), depth)
    case 0xdd: return array(u32(), depth)
    case 0xde: return map(u16(), depth)
    case 0xdf: return map(u32(), depth)
    default: throw malformed(`unused type byte 0x${t.toString(16)}`)
  }
}

function binary(n: number): void {
  skip(n)
  charge(HEAP_COST.binary + n)
}

/** fixext 1: msgpackr's record definitions and its no-data extensions live here. */
function fixext1(depth: number): void {
  const type = u8()
  if (type === 0x72) {
    // Record definition: a one-byte id, an array of string keys, then the first record's fields.
    const id = u8() & 0x3f
    const n = keyList(depth)
    records[id] = n
    recordsUsed = true
    charge(HEAP_COST.object + n * HEAP_COST.property)
    return children(n, depth)
  }
  return ext(1, depth, type)
}

/** A record definition's keys: an array of strings; answers how many. */
function keyList(depth: number): number {
  const t = u8()
  const n = t >= 0x90 && t < 0xa0 ? t - 0x90 : t === 0xdc ? u16() : t === 0xdd ? u32() : -1
  if (n < 0) throw malformed('a record definition without a key list')
  if (n > end - pos) throw malformed('a record definition claims more keys than there are bytes')
  if (depth + 1 > MAX_DEPTH) throw new ValueLimitError('depth', `the value nests deeper than ${MAX_DEPTH} levels`)
  charge(HEAP_COST.array)
  for (let i = 0; i < n; i++) {
    const k = u8()
    if (k >= 0xa0 && k < 0xc0) str(k - 0xa0)
    else if (k === 0xd9) str(u8())
    else if (k === 0xda) str(u16())
    else if (k === 0xdb) str(u32())
    else throw malformed('a record key that is not a string')
  }
  return n
}

/**
 * An extension of `length` data bytes (its type byte next, unless already read).
 * Set, Error, RegExp and the structured-clone id wrap the value that follows them.
 */
function ext(length: number, depth: number, known?: number): void {
  const type = known ?? u8()
  skip(length)
  switch (type) {
    case 0x00: return // undefined
    case 0x42: return charge(HEAP_COST.number + length) // bigint
    case 0xff: return charge(HEAP_COST.date) // Date
    case 0x74: return charge(HEAP_COST.binary + length) // typed array, ArrayBuffer, DataView
    case 0x70: // reference to an earlier id
      if (length !== 4) throw malformed('a reference without its 4-byte id')
      return
    case 0x69: // id: the next value may be referenced (or cycle back to itself)
      if (length !== 4) throw malformed('an id without its 4 bytes')
      // An id wraps one object; a chain of ids would recurse without nesting.
      if (src[pos] === 0xd6 && src[pos + 1] === 0x69) throw malformed('an id of an id')
      charge(HEAP_COST.reference)
      return value(depth)
    case 0x73: return wrapped(depth, HEAP_COST.set, HEAP_COST.mapEntry)
    case 0x65: return wrapped(depth, HEAP_COST.error, 0)
    case 0x78: return wrapped(depth, HEAP_COST.regexp, 0)
    default: throw malformed(`unknown extension type 0x${type.toString(16)}`)
  }
}

/** The array a Set, Error or RegExp extension is built from: `cost` for the object, `perElement` for each entry. */
function wrapped(depth: number, cost: number, perElement: number): void {
  const t = src[pos]
  let n: number
  if (t !== undefined && t >= 0x90 && t < 0xa0) n = t - 0x90
  else if (t === 0xdc && pos + 3 <= end) n = ((src[pos + 1] as number) << 8) | (src[pos + 2] as number)
  else if (t === 0xdd && pos + 5 <= end) n = (((src[pos + 1] as number) << 24) | ((src[pos + 2] as number) << 16) | ((src[pos + 3] as number) << 8) | (src[pos + 4] as number)) >>> 0
  else throw malformed('an extension without its array')
  charge(cost + Math.min(n, end - pos) * perElement)
  value(depth)
}
