/**
 * The shared L1 table. Every thread holding the same SharedArrayBuffer sees the
 * same entries: keys and values live in the buffer, as records in per-shard rings,
 * found through an index of slots. Where each part lives:
 *
 *   layout.ts          where everything is in the buffer (constants, computeLayout)
 *   records.ts         a record's header fields (the only code that knows their offsets)
 *   key_ref.ts         a key encoded, hashed and placed once (KeyRef), passed explicitly
 *   index_probe.ts     a key's two buckets; which slot a new key takes
 *   table_index.ts     the views; finding a key's slot, lock-free and under the lock
 *   rings.ts           admission and eviction: S3-FIFO rings, ghosts, shard lock and repair
 *   root_namespace.ts  root generations: O(1) invalidation of a whole namespace
 *   check.ts           structural checks (tests)
 *   shared_table.ts    this file: the public table
 *
 * Invariants, and the race each one closes:
 *
 * 1. One writer per shard. Every change to a shard's slots, rings, ghosts and
 *    counters happens under the shard's lock (threads/atomics withLock: owner id
 *    and time taken). A lock held over 5 s belongs to a thread that died or hung
 *    mid-write: it is stolen and the shard emptied (rings.resetShard), since what
 *    that writer left half done cannot be trusted. Epoch and generation words are
 *    shared across shards and only ever changed with Atomics.add.
 * 2. A key is in at most one slot, in one of its two buckets. The slot's tag is
 *    the key's hash | 1 (0 = empty); the record it points at carries the same tag
 *    and, as its back-pointer, that slot. A write finds the key's slot before it
 *    takes a new one, so a rewrite repoints the same slot.
 * 3. Readers take no lock: a seqlock per slot (table_index.probe). A slot's
 *    sequence word is odd while its tag, ref or frequency change. A reader loads
 *    it (odd: retry), matches the tag and the whole key, copies the value, and
 *    loads it again: any change means the slot was emptied or repointed while it
 *    read, and it retries (256 times at most, then answers a miss). Every length
 *    and offset it reads is checked against its shard before use, so a torn read
 *    never leaves the shard, and the second load discards it.
 * 4. A linked record is never changed in place, and its bytes are reused only
 *    after its slot was emptied or repointed under a sequence bump. A write puts a
 *    whole new record in the ring before it points the slot at it; a move
 *    (rings.moveToMain) keeps the slot's sequence odd from before the old bytes
 *    are released until the slot points at the copy. So a reader that saw the same
 *    even sequence twice copied the bytes of one whole record. A ring's tail tells
 *    a live record from dead space by the back-pointer (the slot still points at
 *    it with the same tag).
 * 5. Epoch words close the fill race: an L2 answer landing in L1 after a newer
 *    write or delete of the key. A key maps to one of kEpochs words (by its tag);
 *    every write or delete of it bumps the word under its shard's lock (put,
 *    take, update, deletePrefixes, a refused put with removeOnRace). A fill reads
 *    epochOf(key) before asking L2 and stores with put(..., { epoch }), which
 *    compares under the lock and stores nothing if the word moved (the L2 answer
 *    may predate that write). A write reads the epoch before writing L2; when
 *    another write raced it, removeOnRace drops the key from L1 rather than guess
 *    which write L2 kept. Keys sharing a word only cost each other a skipped fill.
 * 6. Root generations (root_namespace.ts) drop a whole namespace in O(1):
 *    invalidateRoots bumps its root's word (or the table's word, for every root).
 *    A record keeps the generation it was written in and counts as gone once that
 *    is not its root's current one: lookups miss it, writes ignore it, the ring's
 *    tail reclaims it. epochOf includes the generation, so a fill that started
 *    before an invalidation is refused too. A write takes the generation once,
 *    under the lock, before it checks its guard, and writes that one in the
 *    record: an invalidation landing during the write voids the record too.
 *    Words only grow; sums are taken mod 2^32 (2^32 bumps during one fill would
 *    be needed to fool a guard).
 * 7. Trust (the trusted flag and trust epoch): while the invalidation bus is
 *    down, invalidations from other processes may be missed. The bus marks the
 *    table untrusted and then invalidates every root (l2/invalidation_bus.ts);
 *    the tier fills nothing while untrusted and drops a fill whose L2 read began
 *    before trust changed (tiers/tiered.ts). A fill that passed that check just
 *    before trust was lost is refused by its guard (the flush moved the
 *    generation), or lands before the flush, which voids it (6).
 * 8. onEvict runs under the shard's lock in the middle of a write: it must not
 *    call into the table; the record it reports stays intact until it returns.
 */
import { InvalidOptionError } from '../errors.js'
import type { KeyRef } from './key_ref.js'
import { rootOf, secondOf } from './key_ref.js'
import * as K from './layout.js'
import { NEGATIVE, recFlags, recKeyAt, recKeyLen } from './records.js'
import { TableRings } from './rings.js'
import { bumpRoots, rootIndexOf } from './root_namespace.js'
import { ABSENT, RETRY, SAME } from './table_index.js'
import type { ReadTime, RecordStamp } from './table_index.js'
import { tableProblems } from './check.js'

export { NEGATIVE, rootIndexOf, SAME }
export type { KeyRef, ReadTime, RecordStamp }

const READ_ATTEMPTS = 256
const enc = new TextEncoder()

/** The table's memory; a size the process cannot get is the user's l1.maxBytes, not a crash. */
function allocate(bytes: number, maxBytes: number): SharedArrayBuffer {
  try {
    return new SharedArrayBuffer(bytes)
  } catch (err) {
    if (!(err instanceof RangeError)) throw err
    throw new InvalidOptionError(`l1.maxBytes is ${maxBytes} bytes, more shared memory than this process can allocate (${err.message}); choose a smaller L1.`)
  }
}

/** A guarded put: see `SharedTable.put`. */
export interface PutGuard {
  epoch: number
  removeOnRace: boolean
  bump: boolean
}

export class SharedTable extends TableRings {
  /** Lays out a new table of at most `maxBytes`. */
  static create(maxBytes: number): SharedTable {
    const layout = K.computeLayout(maxBytes)
    const t = new SharedTable(allocate(layout.totalBytes, maxBytes), layout)
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

  // ── keys ────────────────────────────────────────────────────────────────

  /** `key` encoded, hashed and placed once, for any number of calls on this table (see KeyRef). */
  ref(key: string): KeyRef {
    return this.keys.make(key)
  }

  private own(k: KeyRef): KeyRef {
    if (k.owner !== this.keys) throw new Error('nearcache: a KeyRef can only be used with the table that made it')
    return k
  }

  /** The guard of a key: its epoch word plus its root's generation (invariants 5 and 6). */
  private guardOf(k: KeyRef): number {
    return (Atomics.load(this.i32, this.epochWord(k.tag)) + this.generation(rootOf(k))) | 0
  }

  // ── trust, epochs, generations ──────────────────────────────────────────

  /**
   * Which epoch word guards `key` (keys share words). Every write or delete of a
   * key bumps its word by one, so a batch of writes can tell its own bumps from a
   * racing writer's.
   */
  epochSlot(key: KeyRef): number {
    return this.epochWord(this.own(key).tag)
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

  /** The fill/write guard of a key: changes whenever the key is written or deleted, or its root invalidated. */
  epochOf(key: string | KeyRef): number {
    return this.guardOf(typeof key === 'string' ? this.keys.scratch(key) : this.own(key))
  }

  /**
   * Drops, in O(1) per root, every entry of the root namespaces the prefixes fall
   * in (a prefix whose root cannot be told, such as '', drops the whole table).
   * Coarser than deletePrefixes (every key of the root goes, not only the
   * prefix's), but its cost does not depend on the table's size.
   */
  invalidateRoots(prefixes: readonly string[]): void {
    bumpRoots(this.i32, this.gensBase, prefixes)
  }

  // ── lock-free read ─────────────────────────────────────────────────────

  /**
   * The value bytes (a private copy), NEGATIVE, or null when absent or expired.
   * With `known`: SAME (nothing copied) when the key's live record is still the
   * one `known` was taken from. After bytes, `stamp` is the record's.
   * `now` may be a clock, read only when a record has a deadline.
   */
  lookup(key: string | KeyRef, now: ReadTime, known?: RecordStamp): Uint8Array | null {
    const k = typeof key === 'string' ? this.keys.scratch(key) : this.own(key)
    const data = this.dataBase(k.shard)
    if (known !== undefined && known.slot >= 0) {
      // Most reads of a memoized key find its record where it was: one slot, no scan.
      const got = this.probeKnown(k, data, now, known)
      if (got !== RETRY) return got
    }
    for (let attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
      // Most keys sit in their first bucket; only a miss there pays for the second.
      let got = this.probe(k.first, k, data, now, known)
      if (got === ABSENT) {
        const second = secondOf(k)
        if (second >= 0) got = this.probe(second, k, data, now, known)
      }
      if (got !== RETRY) return got === ABSENT ? null : got
    }
    return null
  }

  // ── writes (under the shard's lock) ─────────────────────────────────────

  /**
   * Stores `value` (or a negative entry when `value` is null) under `key`, unless
   * `guard` is given and the key's guard (epochOf) moved since it was read (then
   * the key is removed instead when `removeOnRace`, else left alone). Answers
   * whether the value was stored.
   */
  put(key: string | KeyRef, value: Uint8Array | null, deadline: number, now: number, guard?: PutGuard): boolean {
    // onEvict runs during the write: the key needs a ref of its own.
    const k = typeof key === 'string' ? this.keys.make(key) : this.own(key)
    const word = this.epochWord(k.tag)
    return this.lockedShard(k.shard, (shard) => {
      const gen = this.generation(rootOf(k))
      if (guard && ((Atomics.load(this.i32, word) + gen) | 0) !== guard.epoch) {
        if (guard.removeOnRace) {
          this.unlinkKey(k, shard)
          Atomics.add(this.i32, word, 1)
        }
        return false
      }
      const stored = this.insert(k, shard, value, deadline, now, gen)
      if (!guard || guard.bump) Atomics.add(this.i32, word, 1)
      return stored
    })
  }

  /** Removes `key`; answers the bytes it held (NEGATIVE for a negative entry, null if absent). */
  take(key: string | KeyRef, now: number): Uint8Array | null {
    const k = typeof key === 'string' ? this.keys.scratch(key) : this.own(key)
    return this.lockedShard(k.shard, (shard) => {
      const found = this.readLocked(k, shard, now)
      this.unlinkKey(k, shard)
      Atomics.add(this.i32, this.epochWord(k.tag), 1)
      return found
    })
  }

  /** Runs `fn(current bytes or null)` under the key's lock; stores what it returns (undefined = leave as is). */
  update(key: string | KeyRef, now: number, fn: (current: Uint8Array | null) => { value: Uint8Array; deadline: number } | undefined): boolean {
    // fn is the caller's code: the key needs a ref of its own.
    const k = typeof key === 'string' ? this.keys.make(key) : this.own(key)
    return this.lockedShard(k.shard, (shard) => {
      const gen = this.generation(rootOf(k))
      const next = fn(this.readLocked(k, shard, now))
      if (next === undefined) return false
      const ok = this.insert(k, shard, next.value, next.deadline, now, gen)
      Atomics.add(this.i32, this.epochWord(k.tag), 1)
      return ok
    })
  }

  /** Removes every entry whose key starts with one of `prefixes`; answers how many. */
  deletePrefixes(prefixes: string[]): number {
    const pre = prefixes.map((p) => enc.encode(p))
    let removed = 0
    for (let shard = 0; shard < this.layout.nShards; shard++) removed += this.lockedShard(shard, (s) => this.sweepShard(s, pre))
    return removed
  }

  private sweepShard(shard: number, prefixes: Uint8Array[]): number {
    const data = this.dataBase(shard)
    const first = shard * this.layout.buckets * K.kSlotsPerBucket
    let removed = 0
    for (let s = first; s < first + this.layout.buckets * K.kSlotsPerBucket; s++) {
      const si = this.slotAt(s)
      const tag = this.i32[si + K.SL_TAG] as number
      if (tag === 0) continue
      const at = data + (this.i32[si + K.SL_REF] as number)
      const keyLen = recKeyLen(this.i32, at)
      const keyAt = recKeyAt(at)
      if (!prefixes.some((p) => p.length <= keyLen && p.every((b, i) => this.u8[keyAt + i] === b))) continue
      this.unlinkSlot(s)
      Atomics.add(this.i32, this.epochWord(tag), 1)
      if (!(recFlags(this.i32, at) & K.F_NEGATIVE)) removed++
    }
    return removed
  }

  // ── figures ─────────────────────────────────────────────────────────────

  /** Live entries (positive and negative) and bytes held in the rings. */
  usage(): { entries: number; bytes: number; capacity: number } {
    let entries = 0
    let bytes = 0
    for (let s = 0; s < this.layout.nShards; s++) {
      const c = this.ctl(s)
      entries += Atomics.load(this.i32, c + K.S_ENTRIES)
      bytes += Atomics.load(this.i32, c + K.S_SMALL_USED) + Atomics.load(this.i32, c + K.S_MAIN_USED)
    }
    return { entries, bytes, capacity: this.layout.nShards * this.layout.shardDataBytes }
  }

  /** Checks the table's invariants (tests): every linked slot points at a record of its key in a used ring region. */
  checkInvariants(): string[] {
    return tableProblems(this.sab, this.layout)
  }
}
