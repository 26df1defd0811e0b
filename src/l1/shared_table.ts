import { murmur3_32 } from '../../wasm/hash.js'
import { beginWrite, endWrite, withLock } from '../threads/atomics.js'
import * as K from './layout.js'
import type { Layout } from './layout.js'
import { InvalidOptionError } from '../errors.js'
import { firstBucket, leastUsedSlot, pickFreeSlot, secondBucket } from './index_probe.js'
import { rootEnd, rootIndexOf } from './root_namespace.js'

export { rootIndexOf }

/** The table's memory; a size the process cannot get is the user's l1.maxBytes, not a crash. */
function allocate(bytes: number, maxBytes: number): SharedArrayBuffer {
  try {
    return new SharedArrayBuffer(bytes)
  } catch (err) {
    if (!(err instanceof RangeError)) throw err
    throw new InvalidOptionError(`l1.maxBytes is ${maxBytes} bytes, more shared memory than this process can allocate (${err.message}); choose a smaller L1.`)
  }
}

/** Answer of a lookup that found a negative ("known missing") entry. */
export const NEGATIVE = new Uint8Array(0)
/** probe(): the key is not in this bucket / a slot changed while it read, read again. */
const ABSENT = new Uint8Array(0)
const RETRY = new Uint8Array(0)

const ALIGN = (n: number) => (n + 7) & ~7
/** Record headers are read through Int32/Float64 views too, so all access uses the platform's byte order. */
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1
const LOCK_STALE_MS = 5000
const READ_ATTEMPTS = 256

export interface TableCounters {
  evictions: number
}

/**
 * The shared L1 table. Every thread holding the same SharedArrayBuffer sees the
 * same entries. Keys and values live in the buffer, in per-shard rings of
 * immutable records (S3-FIFO: a small probationary FIFO, a main FIFO with
 * reinsertion for entries hit since they were queued, a ghost of hashes recently
 * evicted from the small FIFO so they come back straight into main).
 *
 * Concurrency. Writers take their shard's lock (owner + timeout, see sync/atomics).
 * Readers take no lock: for each candidate slot they load its sequence word
 * (odd = being written: retry), match the tag and the full key in the record,
 * copy the value out, then re-load the sequence; any change means the slot was
 * repointed or its record's space reclaimed while they read, and they retry.
 * Space is reused only after every slot pointing into it has been unlinked or
 * repointed under a sequence bump, so a reader can never return torn bytes.
 */
export class SharedTable {
  readonly sab: SharedArrayBuffer
  readonly layout: Layout
  private readonly i32: Int32Array
  private readonly f64: Float64Array
  private readonly u8: Uint8Array
  private readonly dv: DataView
  private readonly shardShift: number
  private readonly ctlBase: number
  private readonly indexBase: number
  private readonly ghostBase: number
  private readonly epochBase: number
  private readonly gensBase: number
  private readonly enc = new TextEncoder()
  private kbuf = new Uint8Array(1024)
  private klen = 0
  /**
   * Called once per entry this thread evicts to make room, expired or not (not
   * for deletes, invalidations or overwrites). `readKey()` decodes the evicted
   * entry's key (UTF-8) from its record, so a callback that does not need the key
   * pays nothing; it is valid only during the callback (afterwards it throws), as
   * the record's space is reused right after. The callback runs under the shard's
   * lock in the middle of a write: it must not call into the table, and anything
   * it throws is ignored (the table must finish the write it is in).
   */
  onEvict: (readKey: () => string) => void = () => {}
  /** Byte offset of the record being reported to onEvict, -1 outside the callback. */
  private evictedAt = -1
  private readonly readEvictedKey = (): string => {
    const at = this.evictedAt
    if (at < 0) throw new Error('nearcache: the key of an evicted entry can only be read during the onEvict callback')
    return Buffer.from(this.sab, at + K.kRecordHeader, this.dv.getUint32(at + K.R_KEYLEN, LE)).toString('utf8')
  }

  private constructor(sab: SharedArrayBuffer, layout: Layout) {
    this.sab = sab
    this.layout = layout
    this.i32 = new Int32Array(sab)
    this.f64 = new Float64Array(sab)
    this.u8 = new Uint8Array(sab)
    this.dv = new DataView(sab)
    this.shardShift = 32 - Math.log2(layout.nShards)
    this.ctlBase = layout.shardCtlOff / 4
    this.indexBase = layout.indexOff / 4
    this.ghostBase = layout.ghostsOff / 4
    this.epochBase = layout.epochsOff / 4
    this.gensBase = layout.gensOff / 4
  }

  /** Lays out a new table of at most `maxBytes`. */
  static create(maxBytes: number): SharedTable {
    const layout = K.computeLayout(maxBytes)
    const sab = allocate(layout.totalBytes, maxBytes)
    const t = new SharedTable(sab, layout)
    const i = t.i32
    i[K.H_MAGIC] = K.kMagic
    i[K.H_VERSION] = K.kLayoutVersion
    i[K.H_SHARDS] = layout.nShards
    i[K.H_BUCKETS] = layout.buckets
    i[K.H_SHARD_DATA] = layout.shardDataBytes
    i[K.H_SMALL] = layout.smallBytes
    i[K.H_GHOSTS] = layout.ghostSlots
    i[K.H_TOTAL_BYTES] = layout.totalBytes
    t.f64[K.H_F64_MAX_BYTES] = maxBytes
    // A new SharedArrayBuffer is all zeroes, which is an empty index: only the ring
    // heads need writing, so untouched index and data pages never become resident.
    for (let s = 0; s < layout.nShards; s++) t.resetRings(s)
    return t
  }

  /** Opens a table laid out by another thread. */
  static attach(sab: SharedArrayBuffer): SharedTable {
    const i = new Int32Array(sab, 0, K.kHeaderInts)
    if (i[K.H_MAGIC] !== K.kMagic || i[K.H_VERSION] !== K.kLayoutVersion) {
      throw new Error('nearcache: this SharedArrayBuffer is not an L1 table of this nearcache version')
    }
    const layout = K.computeLayout(new Float64Array(sab, 0, K.kHeaderInts / 2)[K.H_F64_MAX_BYTES] as number)
    if (layout.totalBytes !== sab.byteLength) throw new Error('nearcache: L1 table size mismatch')
    return new SharedTable(sab, layout)
  }

  // ── keys and hashing ────────────────────────────────────────────────────

  /** Encodes `key` into the scratch key buffer and answers its hash. */
  private prepare(key: string): number {
    if (key.length * 3 > this.kbuf.length) this.kbuf = new Uint8Array(key.length * 3)
    this.klen = this.enc.encodeInto(key, this.kbuf).written as number
    return murmur3_32(this.kbuf, this.klen) | 0
  }

  private shardOf(h: number): number {
    return h >>> this.shardShift
  }

  /** First slot of the key's first bucket (the shard takes the hash's top bits, see index_probe). */
  private slotBase(h: number): number {
    return (this.shardOf(h) * this.layout.buckets + firstBucket(h, this.layout.buckets)) * K.kSlotsPerBucket
  }

  /** First slot of the key's second bucket. */
  private altBase(h: number): number {
    return (this.shardOf(h) * this.layout.buckets + secondBucket(h, this.layout.buckets)) * K.kSlotsPerBucket
  }

  private dataBase(shard: number): number {
    return this.layout.dataOff + shard * this.layout.shardDataBytes
  }

  /** Whether L1 entries can be trusted (false while the invalidation bus is down). */
  get trusted(): boolean {
    return Atomics.load(this.i32, K.H_UNTRUSTED) === 0
  }

  setTrusted(on: boolean): void {
    Atomics.store(this.i32, K.H_UNTRUSTED, on ? 0 : 1)
    Atomics.add(this.i32, K.H_TRUST_EPOCH, 1)
  }

  /** Changes whenever trust is lost or regained. */
  trustEpoch(): number {
    return Atomics.load(this.i32, K.H_TRUST_EPOCH)
  }

  /**
   * The fill/write guard of a key: its epoch word (bumped by every write or delete
   * of a key that maps to it) plus its root's generation (bumped by invalidateRoots).
   * Both only grow, so the sum changes whenever either does.
   */
  epochOf(key: string): number {
    const h = this.prepare(key)
    return this.guardOf(h, this.rootIndex())
  }

  private guardOf(h: number, root: number): number {
    return (Atomics.load(this.i32, this.epochBase + (h & (K.kEpochs - 1))) + this.generation(root)) | 0
  }

  /** The current generation of a root: its word plus the whole table's. */
  private generation(root: number): number {
    return (Atomics.load(this.i32, this.gensBase + root) + Atomics.load(this.i32, this.gensBase + K.kRootGens)) | 0
  }

  /**
   * The generation word of the prepared key's root namespace: the bytes before the
   * first ':' or '|' (after '__nc|t|' for tag epochs, which belong to the namespace
   * they name). Hashed (FNV-1a) onto kRootGens words; a collision only makes an
   * invalidation drop more than it must.
   */
  private rootIndex(): number {
    return rootIndexOf(this.kbuf, this.klen)
  }

  /**
   * Drops, in O(1) per root, every entry of the root namespaces the prefixes fall
   * in (a prefix whose root cannot be told, such as '', drops the whole table).
   * Coarser than deletePrefixes (every key of the root goes, not only the
   * prefix's), but its cost does not depend on the table's size: a record is seen
   * as gone when its generation is not its root's current one, and its space is
   * reclaimed when the ring reaches it.
   */
  invalidateRoots(prefixes: readonly string[]): void {
    const roots = new Set<number>()
    for (const p of prefixes) {
      const bytes = this.enc.encode(p)
      roots.add(rootEnd(bytes, bytes.length) < 0 ? K.kRootGens : rootIndexOf(bytes, bytes.length))
    }
    // The table's own word voids every root at once.
    const bump = roots.has(K.kRootGens) ? [K.kRootGens] : roots
    for (const r of bump) Atomics.add(this.i32, this.gensBase + r, 1)
  }

  /** Whether the record at `at` was written in its root's current generation. */
  private current(at: number): boolean {
    const w = at >> 2
    return this.i32[w + (K.R_GEN >> 2)] === this.generation(((this.i32[w + (K.R_FLAGS >> 2)] as number) >>> K.ROOT_SHIFT) & (K.kRootGens - 1))
  }

  // ── lock-free read ─────────────────────────────────────────────────────

  /** The value bytes (a private copy), NEGATIVE, or null when absent or expired. */
  lookup(key: string, now: number): Uint8Array | null {
    const h = this.prepare(key)
    const data = this.dataBase(this.shardOf(h))
    for (let attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
      // Most keys sit in their first bucket; only a miss there pays for the second.
      let got = this.probe(this.slotBase(h), h | 1, data, now)
      if (got === ABSENT && this.layout.buckets > 1) got = this.probe(this.altBase(h), h | 1, data, now)
      if (got !== RETRY) return got === ABSENT ? null : got
    }
    return null
  }

  /** Looks for the prepared key in one bucket: its bytes, null (expired or voided), ABSENT, or RETRY (a slot changed under us). */
  private probe(base: number, tag: number, data: number, now: number): Uint8Array | null {
    const i32 = this.i32
    const limit = this.layout.shardDataBytes
    const n = this.klen
    for (let j = 0; j < K.kSlotsPerBucket; j++) {
      const si = this.indexBase + (base + j) * K.kSlotInts
      const s1 = Atomics.load(i32, si + K.SL_SEQ)
      if (s1 & 1) return RETRY
      if (Atomics.load(i32, si + K.SL_TAG) !== tag) continue
      const ref = Atomics.load(i32, si + K.SL_REF)
      let out: Uint8Array | undefined
      let deadline = 0
      if (ref >= 0 && ref + K.kRecordHeader <= limit) {
        // Records are 8-aligned: read their header through the Int32/Float64 views.
        const at = data + ref
        const w = at >> 2
        const keyLen = i32[w + 2] as number
        const valLen = i32[w + 3] as number
        if (keyLen === n && valLen >= 0 && ref + K.kRecordHeader + keyLen + valLen <= limit && this.keyEquals(at + K.kRecordHeader, n)) {
          deadline = this.f64[(at >> 3) + 2] as number
          const from = at + K.kRecordHeader + n
          if (!this.current(at)) deadline = -1
          if ((i32[w + 6] as number) & K.F_NEGATIVE) out = NEGATIVE
          else {
            out = Buffer.allocUnsafe(valLen)
            out.set(this.u8.subarray(from, from + valLen))
          }
        }
      }
      if (Atomics.load(i32, si + K.SL_SEQ) !== s1) return RETRY
      if (out === undefined) continue
      if (deadline !== 0 && deadline <= now) return null
      const f = Atomics.load(i32, si + K.SL_FREQ)
      if (f < 3) Atomics.compareExchange(i32, si + K.SL_FREQ, f, f + 1)
      return out
    }
    return ABSENT
  }

  private keyEquals(at: number, n: number): boolean {
    const u8 = this.u8
    const k = this.kbuf
    for (let i = 0; i < n; i++) if (u8[at + i] !== k[i]) return false
    return true
  }

  // ── writes (under the shard lock) ───────────────────────────────────────

  private locked<T>(h: number, fn: (shard: number) => T): T {
    return this.lockedShard(this.shardOf(h), fn)
  }

  private lockedShard<T>(shard: number, fn: (shard: number) => T): T {
    return withLock(
      this.i32,
      this.ctlBase + shard * K.kShardInts + K.S_LOCK,
      this.f64,
      this.layout.lockTimeOff / 8 + shard,
      LOCK_STALE_MS,
      () => this.resetShard(shard),
      () => fn(shard),
    )
  }

  /**
   * Stores `value` (or a negative entry when `value` is null) under `key`, unless
   * `guardEpoch` is given and a write or delete of a key sharing its epoch word
   * happened since it was read (then the key is removed instead when `removeOnRace`,
   * else left alone). Answers whether the value was stored.
   */
  put(key: string, value: Uint8Array | null, deadline: number, now: number, guard?: { epoch: number; removeOnRace: boolean; bump: boolean }): boolean {
    const h = this.prepare(key)
    const epochIdx = this.epochBase + (h & (K.kEpochs - 1))
    const root = this.rootIndex()
    return this.locked(h, (shard) => {
      if (guard && this.guardOf(h, root) !== guard.epoch) {
        if (guard.removeOnRace) {
          this.unlinkKey(h, shard)
          Atomics.add(this.i32, epochIdx, 1)
        }
        return false
      }
      const stored = this.insert(h, shard, value, deadline, now)
      if (!guard || guard.bump) Atomics.add(this.i32, epochIdx, 1)
      return stored
    })
  }

  /** Removes `key`; answers the bytes it held (NEGATIVE for a negative entry, null if absent). */
  take(key: string, now: number): Uint8Array | null {
    const h = this.prepare(key)
    const epochIdx = this.epochBase + (h & (K.kEpochs - 1))
    return this.locked(h, (shard) => {
      const found = this.readLocked(h, shard, now)
      this.unlinkKey(h, shard)
      Atomics.add(this.i32, epochIdx, 1)
      return found
    })
  }

  /** Runs `fn(current bytes or null)` under the key's lock; stores what it returns (undefined = leave as is). */
  update(key: string, now: number, fn: (current: Uint8Array | null) => { value: Uint8Array; deadline: number } | undefined): boolean {
    const h = this.prepare(key)
    const epochIdx = this.epochBase + (h & (K.kEpochs - 1))
    const keyCopy = this.kbuf.slice(0, this.klen)
    return this.locked(h, (shard) => {
      const next = fn(this.readLocked(h, shard, now))
      if (next === undefined) return false
      // fn may have used the table's key buffer; restore this key's bytes.
      this.kbuf.set(keyCopy)
      this.klen = keyCopy.length
      const ok = this.insert(h, shard, next.value, next.deadline, now)
      Atomics.add(this.i32, epochIdx, 1)
      return ok
    })
  }

  /** Removes every entry whose key starts with one of `prefixes`; answers how many. */
  deletePrefixes(prefixes: string[]): number {
    const pre = prefixes.map((p) => this.enc.encode(p))
    let removed = 0
    for (let shard = 0; shard < this.layout.nShards; shard++) removed += this.lockedShard(shard, (s) => this.sweepShard(s, pre))
    return removed
  }

  private sweepShard(shard: number, prefixes: Uint8Array[]): number {
    const data = this.dataBase(shard)
    const first = shard * this.layout.buckets * K.kSlotsPerBucket
    const count = this.layout.buckets * K.kSlotsPerBucket
    let removed = 0
    for (let s = first; s < first + count; s++) {
      const si = this.indexBase + s * K.kSlotInts
      if (this.i32[si + K.SL_TAG] === 0) continue
      const at = data + (this.i32[si + K.SL_REF] as number)
      const keyLen = this.dv.getUint32(at + K.R_KEYLEN, LE)
      const keyAt = at + K.kRecordHeader
      if (!prefixes.some((p) => p.length <= keyLen && p.every((b, i) => this.u8[keyAt + i] === b))) continue
      const tag = this.i32[si + K.SL_TAG] as number
      this.unlinkSlot(s)
      Atomics.add(this.i32, this.epochBase + (tag & (K.kEpochs - 1)), 1)
      if (!(this.dv.getUint32(at + K.R_FLAGS, LE) & K.F_NEGATIVE)) removed++
    }
    return removed
  }

  /** Reads the current bytes of the prepared key under the lock (no frequency bump). */
  private readLocked(h: number, shard: number, now: number): Uint8Array | null {
    const s = this.findSlot(h, shard)
    if (s < 0) return null
    const at = this.dataBase(shard) + (this.i32[this.indexBase + s * K.kSlotInts + K.SL_REF] as number)
    const deadline = this.dv.getFloat64(at + K.R_DEADLINE, LE)
    if ((deadline !== 0 && deadline <= now) || !this.current(at)) return null
    if (this.dv.getUint32(at + K.R_FLAGS, LE) & K.F_NEGATIVE) return NEGATIVE
    const from = at + K.kRecordHeader + this.klen
    return this.u8.slice(from, from + this.dv.getUint32(at + K.R_VALLEN, LE))
  }

  /** Slot index holding the prepared key (in either of its buckets), or -1. */
  private findSlot(h: number, shard: number): number {
    const s = this.findIn(this.slotBase(h), h, shard)
    return s >= 0 || this.layout.buckets === 1 ? s : this.findIn(this.altBase(h), h, shard)
  }

  private findIn(base: number, h: number, shard: number): number {
    const tag = h | 1
    const data = this.dataBase(shard)
    for (let j = 0; j < K.kSlotsPerBucket; j++) {
      const si = this.indexBase + (base + j) * K.kSlotInts
      if (this.i32[si + K.SL_TAG] !== tag) continue
      const at = data + (this.i32[si + K.SL_REF] as number)
      if (this.dv.getUint32(at + K.R_KEYLEN, LE) === this.klen && this.keyEquals(at + K.kRecordHeader, this.klen)) return base + j
    }
    return -1
  }

  private unlinkKey(h: number, shard: number): void {
    const s = this.findSlot(h, shard)
    if (s >= 0) this.unlinkSlot(s)
  }

  private unlinkSlot(s: number): void {
    const si = this.indexBase + s * K.kSlotInts
    const shard = Math.floor(s / (this.layout.buckets * K.kSlotsPerBucket))
    beginWrite(this.i32, si + K.SL_SEQ)
    Atomics.store(this.i32, si + K.SL_TAG, 0)
    Atomics.store(this.i32, si + K.SL_REF, -1)
    Atomics.store(this.i32, si + K.SL_FREQ, 0)
    endWrite(this.i32, si + K.SL_SEQ)
    this.i32[this.ctlBase + shard * K.kShardInts + K.S_ENTRIES]!--
  }

  /** Writes a record for the prepared key and points a slot at it. */
  private insert(h: number, shard: number, value: Uint8Array | null, deadline: number, now: number): boolean {
    const n = this.klen
    const vlen = value === null ? 0 : value.length
    const size = ALIGN(K.kRecordHeader + n + vlen)
    const L = this.layout
    if (size > L.shardDataBytes - L.smallBytes) {
      this.unlinkKey(h, shard)
      return false
    }
    const existing = this.findSlot(h, shard)
    const esi = this.indexBase + existing * K.kSlotInts
    // A key already in main, or used since it was queued (even if its copy expired since), goes to main.
    const known = existing >= 0 && ((this.i32[esi + K.SL_REF] as number) >= L.smallBytes || (this.i32[esi + K.SL_FREQ] as number) > 0)
    // An unused probationary record rewritten stays probationary.
    const probation =
      existing >= 0 && this.i32[esi + K.SL_FREQ] === 0 && this.dv.getUint32(this.dataBase(shard) + (this.i32[esi + K.SL_REF] as number) + K.R_FLAGS, LE) & K.F_PROBATION
    // A ghost: the key was dropped lately; if it had been used (it only expired), it comes back with one use.
    const ghost = known ? 0 : this.ghostTake(h, shard)
    const toMain = known || size > L.smallBytes || ghost > 0
    const root = this.rootIndex()
    // The key's bytes must survive evictions below (they may move records through scratch).
    const keyCopy = this.kbuf.slice(0, n)
    const off = this.alloc(shard, toMain ? 1 : 0, size, now)
    this.kbuf.set(keyCopy)
    this.klen = n
    const at = this.dataBase(shard) + off
    const dv = this.dv
    dv.setInt32(at + K.R_TAG, h | 1, LE)
    dv.setUint32(at + K.R_KEYLEN, n, LE)
    dv.setUint32(at + K.R_VALLEN, vlen, LE)
    dv.setFloat64(at + K.R_DEADLINE, deadline, LE)
    dv.setUint32(at + K.R_FLAGS, (value === null ? K.F_NEGATIVE : 0) | (toMain && probation ? K.F_PROBATION : 0) | (root << K.ROOT_SHIFT), LE)
    if (toMain && probation) this.i32[this.ctlBase + shard * K.kShardInts + K.S_PROBATION]! += size
    dv.setInt32(at + K.R_GEN, this.generation(root), LE)
    this.u8.set(keyCopy, at + K.kRecordHeader)
    if (value !== null) this.u8.set(value, at + K.kRecordHeader + n)
    let s = this.findSlot(h, shard)
    let freq = ghost === 2 ? 1 : 0
    if (s >= 0) freq = Math.min(1, this.i32[this.indexBase + s * K.kSlotInts + K.SL_FREQ] as number)
    else s = this.freeSlot(h, shard)
    dv.setInt32(at + K.R_SLOT, s, LE)
    const si = this.indexBase + s * K.kSlotInts
    const isNew = this.i32[si + K.SL_TAG] === 0
    beginWrite(this.i32, si + K.SL_SEQ)
    Atomics.store(this.i32, si + K.SL_TAG, h | 1)
    Atomics.store(this.i32, si + K.SL_REF, off)
    Atomics.store(this.i32, si + K.SL_FREQ, freq)
    endWrite(this.i32, si + K.SL_SEQ)
    if (isNew) this.i32[this.ctlBase + shard * K.kShardInts + K.S_ENTRIES]!++
    return true
  }

  /** An empty slot in the key's first bucket, else its second; when both are full, evicts the least-used of either. */
  private freeSlot(h: number, shard: number): number {
    const bases = this.layout.buckets > 1 ? [this.slotBase(h), this.altBase(h)] : [this.slotBase(h)]
    const free = pickFreeSlot(this.i32, this.indexBase, bases)
    if (free >= 0) return free
    const victim = leastUsedSlot(this.i32, this.indexBase, bases)
    const at = this.dataBase(shard) + (this.i32[this.indexBase + victim * K.kSlotInts + K.SL_REF] as number)
    this.unlinkSlot(victim)
    this.evicted(at)
    return victim
  }

  /** Reports the eviction of the record at `at` (still intact: its space is reused only after this). */
  private evicted(at: number): void {
    const outer = this.evictedAt
    this.evictedAt = at
    try {
      this.onEvict(this.readEvictedKey)
    } catch {
      // An observer's failure must not leave the shard half-updated.
    } finally {
      this.evictedAt = outer
    }
  }

  // ── rings ───────────────────────────────────────────────────────────────

  /** Allocates `size` bytes at the head of a ring (0 small, 1 main), evicting from its tail. */
  private alloc(shard: number, ring: 0 | 1, size: number, now: number): number {
    const c = this.ctlBase + shard * K.kShardInts + (ring === 0 ? K.S_SMALL_HEAD : K.S_MAIN_HEAD)
    const start = ring === 0 ? 0 : this.layout.smallBytes
    const end = ring === 0 ? this.layout.smallBytes : this.layout.shardDataBytes
    const i = this.i32
    for (;;) {
      if (i[c + 2] === 0) i[c] = i[c + 1] = start
      const head = i[c] as number
      const tail = i[c + 1] as number
      const full = head === tail && (i[c + 2] as number) > 0
      if (head >= tail && !full) {
        if (end - head >= size) {
          i[c] = head + size
          i[c + 2]! += size
          return head
        }
        // Not enough room before the end: waste the rest and wrap.
        if (end - head >= K.kRecordHeader) this.writeFiller(shard, head, end - head)
        i[c + 2]! += end - head
        i[c] = start
        continue
      }
      if (!full && tail - head >= size) {
        i[c] = head + size
        i[c + 2]! += size
        return head
      }
      this.evictOne(shard, ring, now)
    }
  }

  /** A record's whole size: header, key and value, 8-aligned (a filler's own length). */
  private recordBytes(at: number, flags: number): number {
    const valLen = this.dv.getUint32(at + K.R_VALLEN, LE)
    return flags & K.F_FILLER ? valLen : ALIGN(K.kRecordHeader + this.dv.getUint32(at + K.R_KEYLEN, LE) + valLen)
  }

  private writeFiller(shard: number, off: number, len: number): void {
    const at = this.dataBase(shard) + off
    this.dv.setUint32(at + K.R_FLAGS, K.F_FILLER, LE)
    this.dv.setUint32(at + K.R_VALLEN, len, LE)
  }

  /** Frees the record at a ring's tail: dropped, promoted to main, or reinserted. */
  private evictOne(shard: number, ring: 0 | 1, now: number): void {
    const c = this.ctlBase + shard * K.kShardInts + (ring === 0 ? K.S_SMALL_HEAD : K.S_MAIN_HEAD)
    const start = ring === 0 ? 0 : this.layout.smallBytes
    const end = ring === 0 ? this.layout.smallBytes : this.layout.shardDataBytes
    const i = this.i32
    const tail = i[c + 1] as number
    if (end - tail < K.kRecordHeader) {
      i[c + 2]! -= end - tail
      i[c + 1] = start
      return
    }
    const at = this.dataBase(shard) + tail
    const flags = this.dv.getUint32(at + K.R_FLAGS, LE)
    const len = this.recordBytes(at, flags)
    const probation = ring === 0 || (flags & K.F_PROBATION) !== 0
    const advance = (len: number) => {
      if (ring === 1 && probation) i[this.ctlBase + shard * K.kShardInts + K.S_PROBATION]! -= len
      i[c + 2]! -= len
      i[c + 1] = tail + len === end ? start : tail + len
    }
    if (flags & K.F_FILLER) return advance(len)
    const s = this.dv.getInt32(at + K.R_SLOT, LE)
    const si = this.indexBase + s * K.kSlotInts
    const live = s >= 0 && i[si + K.SL_REF] === tail && i[si + K.SL_TAG] === this.dv.getInt32(at + K.R_TAG, LE)
    // An odd sequence under our own lock is the record this thread is moving right now.
    if (!live || (i[si + K.SL_SEQ] as number) & 1) return advance(len)
    const deadline = this.dv.getFloat64(at + K.R_DEADLINE, LE)
    const freq = i[si + K.SL_FREQ] as number
    const gone = !this.current(at)
    const expired = deadline !== 0 && deadline <= now
    if (ring === 0 && !expired && !gone) {
      // While the shard has room, the small FIFO is only a target share: its tail
      // moves on to main as a probationary record, frequency kept, instead of being
      // dropped (S3-FIFO evicts nothing until the cache is full).
      if (this.mainFits(shard, len)) return this.moveToMain(shard, si, at, len, freq, K.F_PROBATION, advance, now)
      // Full: the oldest of the small FIFO (probationary records at main's tail) and
      // dead or expired records there go first; else the usual S3-FIFO step below.
      if (this.mainTailReclaimable(shard, now)) return this.evictOne(shard, 1, now)
    }
    if (expired || freq === 0 || gone) {
      // Ghosts: a stranger dropped from the small FIFO, or a used entry that only expired, comes back into main.
      if (!gone && ((probation && freq === 0) || (expired && freq > 0))) this.ghostPut(this.dv.getInt32(at + K.R_TAG, LE), shard, freq > 0)
      this.unlinkSlot(s)
      this.evicted(at)
      return advance(len)
    }
    // Hit since queued: small → main (promoted), or main → main again (a probationary record is promoted so), with one use spent.
    this.moveToMain(shard, si, at, len, ring === 0 ? 0 : freq - 1, 0, advance, now)
  }

  /** Whether main's tail holds nothing the main FIFO owns: wasted end, a dead, expired or voided record, or a probationary one. */
  private mainTailReclaimable(shard: number, now: number): boolean {
    const c = this.ctlBase + shard * K.kShardInts + K.S_MAIN_HEAD
    const i = this.i32
    if (i[c + 2] === 0) return false
    const tail = i[c + 1] as number
    if (this.layout.shardDataBytes - tail < K.kRecordHeader) return true
    const at = this.dataBase(shard) + tail
    const flags = this.dv.getUint32(at + K.R_FLAGS, LE)
    if (flags & (K.F_FILLER | K.F_PROBATION)) return true
    const s = this.dv.getInt32(at + K.R_SLOT, LE)
    const si = this.indexBase + s * K.kSlotInts
    if (s < 0 || i[si + K.SL_REF] !== tail || i[si + K.SL_TAG] !== this.dv.getInt32(at + K.R_TAG, LE)) return true
    const deadline = this.dv.getFloat64(at + K.R_DEADLINE, LE)
    if ((deadline !== 0 && deadline <= now) || !this.current(at)) return true
    // An unused main record (the main FIFO's next victim anyway) goes when the small
    // FIFO's oldest records wait behind it; a used one stays (scan resistance).
    return i[si + K.SL_FREQ] === 0 && (i[this.ctlBase + shard * K.kShardInts + K.S_PROBATION] as number) > 0
  }

  /**
   * Copies the record at a ring's tail to main's head and repoints its slot (under
   * a sequence bump, so a reader of the old bytes retries). The copy is private to
   * this move: the allocation below may move other records.
   */
  private moveToMain(shard: number, si: number, at: number, len: number, freq: number, probation: number, advance: (len: number) => void, now: number): void {
    const i = this.i32
    beginWrite(i, si + K.SL_SEQ)
    const copy = this.u8.slice(at, at + len)
    advance(len)
    const off = this.alloc(shard, 1, len, now)
    const to = this.dataBase(shard) + off
    this.u8.set(copy, to)
    this.dv.setUint32(to + K.R_FLAGS, (this.dv.getUint32(to + K.R_FLAGS, LE) & ~K.F_PROBATION) | probation, LE)
    if (probation) i[this.ctlBase + shard * K.kShardInts + K.S_PROBATION]! += len
    Atomics.store(i, si + K.SL_REF, off)
    Atomics.store(i, si + K.SL_FREQ, freq)
    endWrite(i, si + K.SL_SEQ)
  }

  /** Whether main can take `size` bytes at its head without evicting (counting the end it wastes when it wraps). */
  private mainFits(shard: number, size: number): boolean {
    const c = this.ctlBase + shard * K.kShardInts + K.S_MAIN_HEAD
    const start = this.layout.smallBytes
    const end = this.layout.shardDataBytes
    const i = this.i32
    if (i[c + 2] === 0) return end - start >= size
    const head = i[c] as number
    const tail = i[c + 1] as number
    if (head === tail) return false
    if (head > tail) return end - head >= size || tail - start >= size
    return tail - head >= size
  }

  /** Remembers a dropped key's hash; a used one is stored with its low bit cleared (a tag's is always set). */
  private ghostPut(tag: number, shard: number, used: boolean): void {
    const g = this.layout.ghostSlots
    this.i32[this.ghostBase + shard * g + ((tag >>> 1) & (g - 1))] = used ? tag ^ 1 : tag
  }

  /** Takes the key's ghost: 0 none, 1 dropped unused, 2 dropped after use. */
  private ghostTake(h: number, shard: number): 0 | 1 | 2 {
    const g = this.layout.ghostSlots
    const idx = this.ghostBase + shard * g + (((h | 1) >>> 1) & (g - 1))
    const v = this.i32[idx] as number
    if (v !== (h | 1) && v !== ((h | 1) ^ 1)) return 0
    this.i32[idx] = 0
    return v === (h | 1) ? 1 : 2
  }

  /** Empties a shard: at creation, and when a lock is stolen from a thread that died mid-write. */
  private resetShard(shard: number): void {
    const first = shard * this.layout.buckets * K.kSlotsPerBucket
    for (let s = first; s < first + this.layout.buckets * K.kSlotsPerBucket; s++) {
      const si = this.indexBase + s * K.kSlotInts
      if ((this.i32[si + K.SL_SEQ] as number) & 1) Atomics.add(this.i32, si + K.SL_SEQ, 1)
      if (this.i32[si + K.SL_TAG] !== 0) {
        beginWrite(this.i32, si + K.SL_SEQ)
        Atomics.store(this.i32, si + K.SL_TAG, 0)
        Atomics.store(this.i32, si + K.SL_REF, -1)
        Atomics.store(this.i32, si + K.SL_FREQ, 0)
        endWrite(this.i32, si + K.SL_SEQ)
      }
    }
    this.resetRings(shard)
    this.i32.fill(0, this.ghostBase + shard * this.layout.ghostSlots, this.ghostBase + (shard + 1) * this.layout.ghostSlots)
  }

  private resetRings(shard: number): void {
    const c = this.ctlBase + shard * K.kShardInts
    this.i32[c + K.S_SMALL_HEAD] = this.i32[c + K.S_SMALL_TAIL] = this.i32[c + K.S_SMALL_USED] = 0
    this.i32[c + K.S_MAIN_HEAD] = this.i32[c + K.S_MAIN_TAIL] = this.layout.smallBytes
    this.i32[c + K.S_MAIN_USED] = 0
    this.i32[c + K.S_ENTRIES] = 0
    this.i32[c + K.S_PROBATION] = 0
  }

  // ── figures ─────────────────────────────────────────────────────────────

  /** Live entries (positive and negative) and bytes held in the rings. */
  usage(): { entries: number; bytes: number; capacity: number } {
    let entries = 0
    let bytes = 0
    for (let s = 0; s < this.layout.nShards; s++) {
      const c = this.ctlBase + s * K.kShardInts
      entries += Atomics.load(this.i32, c + K.S_ENTRIES)
      bytes += Atomics.load(this.i32, c + K.S_SMALL_USED) + Atomics.load(this.i32, c + K.S_MAIN_USED)
    }
    return { entries, bytes, capacity: this.layout.nShards * this.layout.shardDataBytes }
  }

  /** Checks the table's invariants (tests): every linked slot points at a record of its key in a used ring region. */
  checkInvariants(): string[] {
    const problems: string[] = []
    const L = this.layout
    for (let shard = 0; shard < L.nShards; shard++) {
      const c = this.ctlBase + shard * K.kShardInts
      if (this.i32[c + K.S_LOCK] !== 0) problems.push(`shard ${shard} still locked`)
      let linked = 0
      const first = shard * L.buckets * K.kSlotsPerBucket
      for (let s = first; s < first + L.buckets * K.kSlotsPerBucket; s++) {
        const si = this.indexBase + s * K.kSlotInts
        if ((this.i32[si + K.SL_SEQ] as number) & 1) problems.push(`slot ${s} left mid-write`)
        const tag = this.i32[si + K.SL_TAG] as number
        if (tag === 0) continue
        linked++
        const ref = this.i32[si + K.SL_REF] as number
        if (ref < 0 || ref + K.kRecordHeader > L.shardDataBytes) {
          problems.push(`slot ${s} points outside its shard`)
          continue
        }
        const at = this.dataBase(shard) + ref
        if (this.dv.getInt32(at + K.R_TAG, LE) !== tag) problems.push(`slot ${s}: record tag differs`)
        if (this.dv.getInt32(at + K.R_SLOT, LE) !== s) problems.push(`slot ${s}: record back-pointer differs`)
        if ((this.dv.getInt32(at + K.R_TAG, LE) >>> this.shardShift) !== shard) problems.push(`slot ${s}: key in the wrong shard`)
      }
      if (linked !== this.i32[c + K.S_ENTRIES]) problems.push(`shard ${shard}: ${linked} linked slots but entries = ${this.i32[c + K.S_ENTRIES]}`)
      const small = this.i32[c + K.S_SMALL_USED] as number
      const main = this.i32[c + K.S_MAIN_USED] as number
      if (small < 0 || small > L.smallBytes) problems.push(`shard ${shard}: small ring used ${small}`)
      if (main < 0 || main > L.shardDataBytes - L.smallBytes) problems.push(`shard ${shard}: main ring used ${main}`)
      const probation = this.i32[c + K.S_PROBATION] as number
      if (probation < 0 || probation > main) problems.push(`shard ${shard}: probationary bytes ${probation} of ${main} in main`)
    }
    return problems
  }
}
