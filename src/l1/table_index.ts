// The table's memory and its index: the views over the SharedArrayBuffer, where
// each region starts, and finding a key's slot (lock-free for readers, under the
// shard's lock for writers). The bucket choice itself is index_probe.ts.
import { beginWrite, endWrite } from '../threads/atomics.js'
import type { KeyRef } from './key_ref.js'
import { KeyCoder, secondOf } from './key_ref.js'
import * as K from './layout.js'
import type { Layout } from './layout.js'
import { NEGATIVE, recDeadline, recFlags, recGen, recKeyAt, recKeyLen, recRoot, recValLen, recValueAt } from './records.js'
import { generation } from './root_namespace.js'

/** probe(): the key is not in this bucket / a slot changed while it read, read again. */
export const ABSENT = new Uint8Array(0)
export const RETRY = new Uint8Array(0)
/** probe() with a `known` stamp: the live record is the very one `known` describes (nothing copied). */
export const SAME = new Uint8Array(0)

/**
 * Which version of a key's record a read saw, without its bytes: the slot, the
 * slot's sequence word (every link or relink of a slot moves it by 2, and it only
 * grows), and the record's ring offset, value length and deadline. A linked record
 * is never changed in place (invariant 4), so two reads with equal stamps saw the
 * same bytes. The offset, length and deadline are there only so that a sequence
 * word wrapping around 2^32 cannot make an old stamp match a new record. A move to
 * main changes the stamp too (that costs a memo miss, not a wrong answer).
 */
/** The time a read checks deadlines against: ms, or a clock read only when a record has a deadline. */
export type ReadTime = number | { now(): number }

export function timeOf(t: ReadTime): number {
  return typeof t === 'number' ? t : t.now()
}

export class RecordStamp {
  slot = -1
  seq = 0
  ref = 0
  len = 0
  deadline = 0

  copyFrom(o: RecordStamp): void {
    this.slot = o.slot
    this.seq = o.seq
    this.ref = o.ref
    this.len = o.len
    this.deadline = o.deadline
  }
}

export class TableIndex {
  readonly sab: SharedArrayBuffer
  readonly layout: Layout
  protected readonly i32: Int32Array
  protected readonly f64: Float64Array
  protected readonly u8: Uint8Array
  protected readonly ctlBase: number
  protected readonly indexBase: number
  protected readonly ghostBase: number
  protected readonly epochBase: number
  protected readonly gensBase: number
  protected readonly keys: KeyCoder
  /**
   * The stamp of the record the last lookup of this thread answered bytes (or SAME)
   * for: valid until the next call into the table.
   */
  readonly stamp = new RecordStamp()

  protected constructor(sab: SharedArrayBuffer, layout: Layout) {
    this.sab = sab
    this.layout = layout
    this.i32 = new Int32Array(sab)
    this.f64 = new Float64Array(sab)
    this.u8 = new Uint8Array(sab)
    this.ctlBase = layout.shardCtlOff / 4
    this.indexBase = layout.indexOff / 4
    this.ghostBase = layout.ghostsOff / 4
    this.epochBase = layout.epochsOff / 4
    this.gensBase = layout.gensOff / 4
    this.keys = new KeyCoder(layout)
  }

  /** Byte offset of a shard's data area (its small ring, then its main ring). */
  protected dataBase(shard: number): number {
    return this.layout.dataOff + shard * this.layout.shardDataBytes
  }

  /** Int32 index of a shard's control words (S_*). */
  protected ctl(shard: number): number {
    return this.ctlBase + shard * K.kShardInts
  }

  /** Int32 index of a slot's words (SL_*). */
  protected slotAt(s: number): number {
    return this.indexBase + s * K.kSlotInts
  }

  /** Int32 index of the epoch word of the key with this tag (its hash bits above the tag's always-set low bit). */
  protected epochWord(tag: number): number {
    return this.epochBase + ((tag >>> 1) & (K.kEpochs - 1))
  }

  /** The current generation of a root (root_namespace.generation). */
  protected generation(root: number): number {
    return generation(this.i32, this.gensBase, root)
  }

  /** Whether the record at `at` was written in its root's current generation. */
  protected current(at: number): boolean {
    return recGen(this.i32, at) === this.generation(recRoot(this.i32, at))
  }

  protected keyEquals(at: number, k: KeyRef): boolean {
    const u8 = this.u8
    const b = k.bytes
    for (let i = 0; i < k.len; i++) if (u8[at + i] !== b[i]) return false
    return true
  }

  // ── lock-free read ─────────────────────────────────────────────────────

  /**
   * Looks for the key in the bucket whose first slot is `base`, without a lock:
   * its bytes (a private copy) or NEGATIVE, null (expired or voided), ABSENT, or
   * RETRY (a slot changed while it read; every value read from the record is
   * checked against the shard's bounds first, so a torn read stays inside it).
   * When the live record's stamp equals `known`, answers SAME and copies nothing.
   * On bytes or SAME, `this.stamp` holds the record's stamp.
   */
  protected probe(base: number, k: KeyRef, data: number, now: ReadTime, known: RecordStamp | undefined): Uint8Array | null {
    const i32 = this.i32
    const limit = this.layout.shardDataBytes
    const n = k.len
    for (let j = 0; j < K.kSlotsPerBucket; j++) {
      const slot = base + j
      const si = this.slotAt(slot)
      const s1 = Atomics.load(i32, si + K.SL_SEQ)
      if (s1 & 1) return RETRY
      if (Atomics.load(i32, si + K.SL_TAG) !== k.tag) continue
      const ref = Atomics.load(i32, si + K.SL_REF)
      let out: Uint8Array | undefined
      let deadline = 0
      let valLen = 0
      if (ref >= 0 && ref + K.kRecordHeader <= limit) {
        const at = data + ref
        const keyLen = recKeyLen(i32, at)
        valLen = recValLen(i32, at)
        if (keyLen === n && valLen >= 0 && ref + K.kRecordHeader + keyLen + valLen <= limit && this.keyEquals(recKeyAt(at), k)) {
          const d = recDeadline(this.f64, at)
          deadline = this.current(at) ? d : -1
          if (recFlags(i32, at) & K.F_NEGATIVE) out = NEGATIVE
          else if (known !== undefined && known.slot === slot && known.seq === s1 && known.ref === ref && known.len === valLen && known.deadline === d) out = SAME
          else {
            const from = recValueAt(at, n)
            out = Buffer.allocUnsafe(valLen)
            out.set(this.u8.subarray(from, from + valLen))
          }
        }
      }
      if (Atomics.load(i32, si + K.SL_SEQ) !== s1) return RETRY
      if (out === undefined) continue
      if (deadline !== 0 && deadline <= timeOf(now)) return null
      const f = Atomics.load(i32, si + K.SL_FREQ)
      if (f < 3) Atomics.compareExchange(i32, si + K.SL_FREQ, f, f + 1)
      if (out !== NEGATIVE) {
        const st = this.stamp
        st.slot = slot
        st.seq = s1
        st.ref = ref
        st.len = valLen
        st.deadline = deadline
      }
      return out
    }
    return ABSENT
  }

  /**
   * The fast path of a read that knows a stamp of the key's record: looks at that
   * slot only. SAME when the slot still points, under the same even sequence word,
   * at the same record of the key (offset, length, deadline, whole key), written in
   * its root's current generation and not expired; null when that record expired
   * or was voided; RETRY when anything differs (then probe() decides). A slot's
   * sequence word moves on every link, so an unchanged word means the slot was not
   * relinked, and a linked record is never changed in place (invariant 4).
   */
  protected probeKnown(k: KeyRef, data: number, now: ReadTime, known: RecordStamp): Uint8Array | null {
    const i32 = this.i32
    const ref = known.ref
    const n = k.len
    const si = this.slotAt(known.slot)
    // Only the two loads of the sequence word need to be atomic (ordered around the
    // others): what is read between them is discarded unless the word is unchanged.
    const s1 = Atomics.load(i32, si + K.SL_SEQ)
    if (s1 !== known.seq || i32[si + K.SL_TAG] !== k.tag || i32[si + K.SL_REF] !== ref) return RETRY
    // The stamp's offset and length were checked against the shard when it was taken.
    const at = data + ref
    if (ref + K.kRecordHeader + n + known.len > this.layout.shardDataBytes) return RETRY
    const flags = recFlags(i32, at)
    if (recKeyLen(i32, at) !== n || recValLen(i32, at) !== known.len || flags & K.F_NEGATIVE) return RETRY
    const d = recDeadline(this.f64, at)
    if (d !== known.deadline || !this.keyEquals(recKeyAt(at), k)) return RETRY
    // The record's root generation (root_namespace.generation), read plainly: an
    // invalidation racing this read may be seen or not, as with any read it races.
    const root = (flags >>> K.ROOT_SHIFT) & (K.kRootGens - 1)
    const live = recGen(i32, at) === (((i32[this.gensBase + root] as number) + (i32[this.gensBase + K.kRootGens] as number)) | 0)
    if (Atomics.load(i32, si + K.SL_SEQ) !== s1) return RETRY
    if (!live || (d !== 0 && d <= timeOf(now))) return null
    const f = i32[si + K.SL_FREQ] as number
    if (f < 3) Atomics.compareExchange(i32, si + K.SL_FREQ, f, f + 1)
    return SAME
  }

  // ── under the shard's lock ─────────────────────────────────────────────

  /** The slot holding the key (in either of its buckets), or -1. */
  protected findSlot(k: KeyRef, shard: number): number {
    const s = this.findIn(k.first, k, shard)
    if (s >= 0) return s
    const second = secondOf(k)
    return second < 0 ? -1 : this.findIn(second, k, shard)
  }

  private findIn(base: number, k: KeyRef, shard: number): number {
    const data = this.dataBase(shard)
    for (let j = 0; j < K.kSlotsPerBucket; j++) {
      const si = this.slotAt(base + j)
      if (this.i32[si + K.SL_TAG] !== k.tag) continue
      const at = data + (this.i32[si + K.SL_REF] as number)
      if (recKeyLen(this.i32, at) === k.len && this.keyEquals(recKeyAt(at), k)) return base + j
    }
    return -1
  }

  /** The key's current bytes (no frequency bump): NEGATIVE, or null when absent, expired or voided. */
  protected readLocked(k: KeyRef, shard: number, now: number): Uint8Array | null {
    const s = this.findSlot(k, shard)
    if (s < 0) return null
    const at = this.dataBase(shard) + (this.i32[this.slotAt(s) + K.SL_REF] as number)
    const deadline = recDeadline(this.f64, at)
    if ((deadline !== 0 && deadline <= now) || !this.current(at)) return null
    if (recFlags(this.i32, at) & K.F_NEGATIVE) return NEGATIVE
    const from = recValueAt(at, k.len)
    return this.u8.slice(from, from + recValLen(this.i32, at))
  }

  protected unlinkKey(k: KeyRef, shard: number): void {
    const s = this.findSlot(k, shard)
    if (s >= 0) this.unlinkSlot(s)
  }

  /** Points the slot whose words start at `si` at a record (tag 0, ref -1: empty), under a sequence bump. */
  protected link(si: number, tag: number, ref: number, freq: number): void {
    beginWrite(this.i32, si + K.SL_SEQ)
    Atomics.store(this.i32, si + K.SL_TAG, tag)
    Atomics.store(this.i32, si + K.SL_REF, ref)
    Atomics.store(this.i32, si + K.SL_FREQ, freq)
    endWrite(this.i32, si + K.SL_SEQ)
  }

  /** Empties a slot: a reader of it retries, then misses. */
  protected unlinkSlot(s: number): void {
    this.link(this.slotAt(s), 0, -1, 0)
    this.i32[this.ctl(Math.floor(s / (this.layout.buckets * K.kSlotsPerBucket))) + K.S_ENTRIES]!--
  }
}
