// Records: the entries in a shard's rings, and the one place that knows where a
// record header keeps each field (the R_* offsets of layout.ts are used nowhere else).
//
// A record is header | key bytes | value bytes, its size rounded up to 8
// (recordSize). The data area and every size are multiples of 8, so every record
// starts 8-aligned and its header is read and written through the table's
// Int32Array/Float64Array views at word indices: native byte order, the same for
// every thread sharing the buffer. These are small functions over the same views,
// which V8 inlines into the read loop.
//
// A linked record (one an index slot points at) is never changed in place: a
// rewrite or a move writes a new record first, then repoints the slot (see
// SharedTable's invariants).
import * as K from './layout.js'

/** Answer of a lookup that found a negative ("known missing") entry. */
export const NEGATIVE = new Uint8Array(0)

/** A record's whole size: header, key and value, rounded up to 8. */
export function recordSize(keyLen: number, valLen: number): number {
  return (K.kRecordHeader + keyLen + valLen + 7) & ~7
}

/** The key's tag (hash | 1): which slot tag the record belongs to. */
export function recTag(i32: Int32Array, at: number): number {
  return i32[(at + K.R_TAG) >> 2] as number
}

/** The index slot that points (or pointed) at the record: how a ring's tail tells a live record from a dead one. */
export function recSlot(i32: Int32Array, at: number): number {
  return i32[(at + K.R_SLOT) >> 2] as number
}

export function recKeyLen(i32: Int32Array, at: number): number {
  return i32[(at + K.R_KEYLEN) >> 2] as number
}

/** The value's length (a filler's whole length). */
export function recValLen(i32: Int32Array, at: number): number {
  return i32[(at + K.R_VALLEN) >> 2] as number
}

/** Expiry time (ms), 0 = none. */
export function recDeadline(f64: Float64Array, at: number): number {
  return f64[(at + K.R_DEADLINE) >> 3] as number
}

/** F_* flags, with the root generation index above ROOT_SHIFT. */
export function recFlags(i32: Int32Array, at: number): number {
  return i32[(at + K.R_FLAGS) >> 2] as number
}

/** The generation (root word + table word) the record was written in. */
export function recGen(i32: Int32Array, at: number): number {
  return i32[(at + K.R_GEN) >> 2] as number
}

/** Index of the record's root generation word. */
export function recRoot(i32: Int32Array, at: number): number {
  return (recFlags(i32, at) >>> K.ROOT_SHIFT) & (K.kRootGens - 1)
}

/** Byte offset of the record's key. */
export function recKeyAt(at: number): number {
  return at + K.kRecordHeader
}

/** Byte offset of the record's value. */
export function recValueAt(at: number, keyLen: number): number {
  return at + K.kRecordHeader + keyLen
}

/** Bytes the record takes in its ring (a filler's own length). */
export function recLength(i32: Int32Array, at: number): number {
  return recFlags(i32, at) & K.F_FILLER ? recValLen(i32, at) : recordSize(recKeyLen(i32, at), recValLen(i32, at))
}

/** Writes a new (not yet linked) record's header; the key and value bytes follow it. */
export function writeHeader(
  i32: Int32Array,
  f64: Float64Array,
  at: number,
  h: { tag: number; slot: number; keyLen: number; valLen: number; deadline: number; flags: number; gen: number },
): void {
  i32[(at + K.R_TAG) >> 2] = h.tag
  i32[(at + K.R_SLOT) >> 2] = h.slot
  i32[(at + K.R_KEYLEN) >> 2] = h.keyLen
  i32[(at + K.R_VALLEN) >> 2] = h.valLen
  f64[(at + K.R_DEADLINE) >> 3] = h.deadline
  i32[(at + K.R_FLAGS) >> 2] = h.flags
  i32[(at + K.R_GEN) >> 2] = h.gen
}

/** Sets the slot of a record that is not linked yet. */
export function setRecSlot(i32: Int32Array, at: number, slot: number): void {
  i32[(at + K.R_SLOT) >> 2] = slot
}

/** Sets or clears F_PROBATION on a record that is not linked yet (a moved copy). */
export function setRecProbation(i32: Int32Array, at: number, probation: boolean): void {
  const w = (at + K.R_FLAGS) >> 2
  i32[w] = ((i32[w] as number) & ~K.F_PROBATION) | (probation ? K.F_PROBATION : 0)
}

/** Marks `len` wasted bytes at the end of a ring (at least a header's worth) as a filler record. */
export function writeFiller(i32: Int32Array, at: number, len: number): void {
  i32[(at + K.R_FLAGS) >> 2] = K.F_FILLER
  i32[(at + K.R_VALLEN) >> 2] = len
}
