// Where records go and when they leave, all under the shard's lock: each shard's
// data is two rings of records (S3-FIFO: a small probationary FIFO and a main FIFO
// with reinsertion for records used since they were queued) and a ghost of hashes
// recently dropped (ghosts.ts). Admission (which ring and which slot a new record takes),
// eviction, and the repair of a shard whose writer died.
//
// A used record whose copy only expired is not dropped when a ring's tail reaches
// it: it is requeued at main's head as a stub (header and key, no value, a deadline
// of -Infinity so every reader misses it), its slot and frequency kept, one use
// spent per pass. A refill of the key then finds its slot and goes back to main
// with its frequency, instead of re-entering the small FIFO as a stranger (a ghost
// is one hash per ghost slot, and the churn of cold strangers overwrites it).
import { beginWrite, endWrite, withLock } from '../threads/atomics.js'
import { ghostPut, ghostTake } from './ghosts.js'
import { leastUsedSlot, pickFreeSlot } from './index_probe.js'
import type { KeyRef } from './key_ref.js'
import { rootOf, secondOf } from './key_ref.js'
import * as K from './layout.js'
import { recDeadline, recFlags, recGen, recKeyAt, recKeyLen, recLength, recordSize, recSlot, recTag, setRecProbation, setRecSlot, writeFiller, writeHeader } from './records.js'
import { TableIndex } from './table_index.js'

const LOCK_STALE_MS = 5000
/** The deadline of a stub (a used record whose copy expired, kept for its slot and frequency): expired for every clock. */
export const STUB_DEADLINE = -Infinity

export class TableRings extends TableIndex {
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
    return Buffer.from(this.sab, recKeyAt(at), recKeyLen(this.i32, at)).toString('utf8')
  }

  /** Runs `fn` under the shard's lock; a lock stolen from a thread that died mid-write first empties the shard. */
  protected lockedShard<T>(shard: number, fn: (shard: number) => T): T {
    const lockTime = this.layout.lockTimeOff / 8 + shard
    return withLock(this.i32, this.ctl(shard) + K.S_LOCK, this.f64, lockTime, LOCK_STALE_MS, () => this.resetShard(shard), () => fn(shard))
  }

  // ── admission ───────────────────────────────────────────────────────────

  /** Writes a record for the key (in generation `gen`) and points its slot at it. */
  protected insert(k: KeyRef, shard: number, value: Uint8Array | null, deadline: number, now: number, gen: number): boolean {
    const vlen = value === null ? 0 : value.length
    const size = recordSize(k.len, vlen)
    const L = this.layout
    if (size > L.shardDataBytes - L.smallBytes) {
      this.unlinkKey(k, shard)
      return false
    }
    const existing = this.findSlot(k, shard)
    const esi = this.slotAt(existing)
    const eref = existing >= 0 ? (this.i32[esi + K.SL_REF] as number) : -1
    const efreq = existing >= 0 ? (this.i32[esi + K.SL_FREQ] as number) : 0
    // A refill of a copy that expired (or of its stub) keeps the key's frequency; a rewrite of a live one keeps at most one use.
    const edeadline = existing >= 0 ? recDeadline(this.f64, this.dataBase(shard) + eref) : 0
    const refill = edeadline !== 0 && edeadline <= now
    // A key already in main, or used since it was queued (even if its copy expired since), goes to main.
    const known = existing >= 0 && (eref >= L.smallBytes || efreq > 0)
    // An unused probationary record rewritten stays probationary.
    const probation = existing >= 0 && efreq === 0 && (recFlags(this.i32, this.dataBase(shard) + eref) & K.F_PROBATION) !== 0
    // A ghost: the key was dropped lately; a used one (a stub that spent its uses) comes back with one use.
    const ghost = known ? 0 : ghostTake(this.i32, this.ghostBase, L.ghostSlots, shard, k.tag)
    const toMain = known || size > L.smallBytes || ghost > 0
    const off = this.alloc(shard, toMain ? 1 : 0, size, now)
    const at = this.dataBase(shard) + off
    const root = rootOf(k)
    const flags = (value === null ? K.F_NEGATIVE : 0) | (toMain && probation ? K.F_PROBATION : 0) | (root << K.ROOT_SHIFT)
    writeHeader(this.i32, this.f64, at, { tag: k.tag, slot: -1, keyLen: k.len, valLen: vlen, deadline, flags, gen })
    if (toMain && probation) this.i32[this.ctl(shard) + K.S_PROBATION]! += size
    this.u8.set(k.bytes.length === k.len ? k.bytes : k.bytes.subarray(0, k.len), recKeyAt(at))
    if (value !== null) this.u8.set(value, recKeyAt(at) + k.len)
    // The slot is looked up again: the allocation above may have evicted the key's old record.
    let s = this.findSlot(k, shard)
    let freq = ghost === 2 ? 1 : 0
    if (s >= 0) {
      const f = this.i32[this.slotAt(s) + K.SL_FREQ] as number
      freq = refill ? Math.max(1, f) : Math.min(1, f)
    }
    else s = this.freeSlot(k, shard)
    setRecSlot(this.i32, at, s)
    const si = this.slotAt(s)
    const isNew = this.i32[si + K.SL_TAG] === 0
    this.link(si, k.tag, off, freq)
    if (isNew) this.i32[this.ctl(shard) + K.S_ENTRIES]!++
    return true
  }

  /** An empty slot in the key's first bucket, else its second; when both are full, evicts the least-used of either. */
  protected freeSlot(k: KeyRef, shard: number): number {
    const second = secondOf(k)
    const bases = second >= 0 ? [k.first, second] : [k.first]
    const free = pickFreeSlot(this.i32, this.indexBase, bases)
    if (free >= 0) return free
    const victim = leastUsedSlot(this.i32, this.indexBase, bases)
    const at = this.dataBase(shard) + (this.i32[this.slotAt(victim) + K.SL_REF] as number)
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

  /** Int32 index of a ring's words (RING_*): 0 small, 1 main. */
  private ring(shard: number, ring: 0 | 1): number {
    return this.ctl(shard) + (ring === 0 ? K.S_SMALL_HEAD : K.S_MAIN_HEAD)
  }

  /** Allocates `size` bytes at the head of a ring (0 small, 1 main), evicting from its tail. */
  protected alloc(shard: number, ring: 0 | 1, size: number, now: number): number {
    const c = this.ring(shard, ring)
    const start = ring === 0 ? 0 : this.layout.smallBytes
    const end = ring === 0 ? this.layout.smallBytes : this.layout.shardDataBytes
    const i = this.i32
    for (;;) {
      if (i[c + K.RING_USED] === 0) i[c + K.RING_HEAD] = i[c + K.RING_TAIL] = start
      const head = i[c + K.RING_HEAD] as number
      const tail = i[c + K.RING_TAIL] as number
      const full = head === tail && (i[c + K.RING_USED] as number) > 0
      if (head >= tail && !full) {
        if (end - head >= size) {
          i[c + K.RING_HEAD] = head + size
          i[c + K.RING_USED]! += size
          return head
        }
        // Not enough room before the end: waste the rest and wrap.
        if (end - head >= K.kRecordHeader) writeFiller(i, this.dataBase(shard) + head, end - head)
        i[c + K.RING_USED]! += end - head
        i[c + K.RING_HEAD] = start
        continue
      }
      if (!full && tail - head >= size) {
        i[c + K.RING_HEAD] = head + size
        i[c + K.RING_USED]! += size
        return head
      }
      this.evictOne(shard, ring, now)
    }
  }

  /** Whether the slot `s` still points at the record at ring offset `off` (else the record is dead space). */
  private linked(s: number, off: number, at: number): boolean {
    const si = this.slotAt(s)
    return s >= 0 && this.i32[si + K.SL_REF] === off && this.i32[si + K.SL_TAG] === recTag(this.i32, at)
  }

  /** Frees the record at a ring's tail: dropped, promoted to main, or reinserted. */
  private evictOne(shard: number, ring: 0 | 1, now: number): void {
    const c = this.ring(shard, ring)
    const start = ring === 0 ? 0 : this.layout.smallBytes
    const end = ring === 0 ? this.layout.smallBytes : this.layout.shardDataBytes
    const i = this.i32
    const tail = i[c + K.RING_TAIL] as number
    if (end - tail < K.kRecordHeader) {
      i[c + K.RING_USED]! -= end - tail
      i[c + K.RING_TAIL] = start
      return
    }
    const at = this.dataBase(shard) + tail
    const flags = recFlags(i, at)
    const len = recLength(i, at)
    const probation = ring === 0 || (flags & K.F_PROBATION) !== 0
    const advance = (len: number) => {
      if (ring === 1 && probation) i[this.ctl(shard) + K.S_PROBATION]! -= len
      i[c + K.RING_USED]! -= len
      i[c + K.RING_TAIL] = tail + len === end ? start : tail + len
    }
    if (flags & K.F_FILLER) return advance(len)
    const s = recSlot(i, at)
    const si = this.slotAt(s)
    // An odd sequence under our own lock is the record this thread is moving right now.
    if (!this.linked(s, tail, at) || (i[si + K.SL_SEQ] as number) & 1) return advance(len)
    const deadline = recDeadline(this.f64, at)
    const freq = i[si + K.SL_FREQ] as number
    const gone = !this.current(at)
    const expired = deadline !== 0 && deadline <= now
    if (ring === 0 && !expired && !gone) {
      // While the shard has room, the small FIFO is only a target share: its tail
      // moves on to main as a probationary record, frequency kept, instead of being
      // dropped (S3-FIFO evicts nothing until the cache is full).
      if (this.mainFits(shard, len)) return this.moveToMain(shard, si, at, len, freq, true, advance, now)
      // Full: the oldest of the small FIFO (probationary records at main's tail) and
      // dead or expired records there go first; else the usual S3-FIFO step below.
      if (this.mainTailReclaimable(shard, now)) return this.evictOne(shard, 1, now)
    }
    // A used record whose copy only expired stays linked, as a stub at main's head, one use spent.
    if (expired && !gone && freq > 0) return this.moveToMain(shard, si, at, len, freq - 1, false, advance, now, true)
    if (expired || freq === 0 || gone) {
      // Ghosts: a stranger dropped from the small FIFO, or a stub that spent its uses, comes back into main.
      const stub = deadline === STUB_DEADLINE
      if (!gone && ((probation && freq === 0) || stub)) ghostPut(i, this.ghostBase, this.layout.ghostSlots, shard, recTag(i, at), stub)
      this.unlinkSlot(s)
      this.evicted(at)
      return advance(len)
    }
    // Hit since queued: small → main (promoted), or main → main again (a probationary record is promoted so), with one use spent.
    this.moveToMain(shard, si, at, len, ring === 0 ? 0 : freq - 1, false, advance, now)
  }

  /** Whether main's tail holds nothing the main FIFO owns: wasted end, a dead, expired or voided record, or a probationary one. */
  private mainTailReclaimable(shard: number, now: number): boolean {
    const c = this.ring(shard, 1)
    const i = this.i32
    if (i[c + K.RING_USED] === 0) return false
    const tail = i[c + K.RING_TAIL] as number
    if (this.layout.shardDataBytes - tail < K.kRecordHeader) return true
    const at = this.dataBase(shard) + tail
    if (recFlags(i, at) & (K.F_FILLER | K.F_PROBATION)) return true
    const s = recSlot(i, at)
    if (!this.linked(s, tail, at)) return true
    const deadline = recDeadline(this.f64, at)
    if ((deadline !== 0 && deadline <= now) || !this.current(at)) return true
    // An unused main record (the main FIFO's next victim anyway) goes when the small
    // FIFO's oldest records wait behind it; a used one stays (scan resistance).
    return i[this.slotAt(s) + K.SL_FREQ] === 0 && (i[this.ctl(shard) + K.S_PROBATION] as number) > 0
  }

  /**
   * Copies the record at a ring's tail to main's head and repoints its slot. The
   * slot's sequence stays odd from before the tail passes the old bytes until the
   * slot points at the new ones, so a reader of either retries. The bytes are
   * copied out first: the allocation below may evict, and may reuse the old space.
   * `stub`: only the header and key are kept, with no value and STUB_DEADLINE.
   */
  private moveToMain(shard: number, si: number, at: number, len: number, freq: number, probation: boolean, advance: (len: number) => void, now: number, stub = false): void {
    const i = this.i32
    beginWrite(i, si + K.SL_SEQ)
    const keyLen = recKeyLen(i, at)
    const size = stub ? recordSize(keyLen, 0) : len
    const copy = this.u8.slice(at, at + (stub ? K.kRecordHeader + keyLen : len))
    const header = stub ? { tag: recTag(i, at), slot: recSlot(i, at), keyLen, valLen: 0, deadline: STUB_DEADLINE, flags: recFlags(i, at), gen: recGen(i, at) } : undefined
    advance(len)
    const off = this.alloc(shard, 1, size, now)
    const to = this.dataBase(shard) + off
    this.u8.set(copy, to)
    if (header) writeHeader(i, this.f64, to, header)
    setRecProbation(i, to, probation)
    if (probation) i[this.ctl(shard) + K.S_PROBATION]! += size
    Atomics.store(i, si + K.SL_REF, off)
    Atomics.store(i, si + K.SL_FREQ, freq)
    endWrite(i, si + K.SL_SEQ)
  }

  /** Whether main can take `size` bytes at its head without evicting (counting the end it wastes when it wraps). */
  protected mainFits(shard: number, size: number): boolean {
    const c = this.ring(shard, 1)
    const start = this.layout.smallBytes
    const end = this.layout.shardDataBytes
    const i = this.i32
    if (i[c + K.RING_USED] === 0) return end - start >= size
    const head = i[c + K.RING_HEAD] as number
    const tail = i[c + K.RING_TAIL] as number
    if (head === tail) return false
    if (head > tail) return end - head >= size || tail - start >= size
    return tail - head >= size
  }

  // ── reset ───────────────────────────────────────────────────────────────

  /** Empties a shard: when a lock is stolen from a thread that died mid-write (what it left cannot be trusted). */
  private resetShard(shard: number): void {
    const first = shard * this.layout.buckets * K.kSlotsPerBucket
    for (let s = first; s < first + this.layout.buckets * K.kSlotsPerBucket; s++) {
      const si = this.slotAt(s)
      if ((this.i32[si + K.SL_SEQ] as number) & 1) Atomics.add(this.i32, si + K.SL_SEQ, 1)
      if (this.i32[si + K.SL_TAG] !== 0) this.link(si, 0, -1, 0)
    }
    this.resetRings(shard)
    this.i32.fill(0, this.ghostBase + shard * this.layout.ghostSlots, this.ghostBase + (shard + 1) * this.layout.ghostSlots)
  }

  /** Empty rings (at creation, and in resetShard). */
  protected resetRings(shard: number): void {
    const c = this.ctl(shard)
    this.i32[c + K.S_SMALL_HEAD] = this.i32[c + K.S_SMALL_TAIL] = this.i32[c + K.S_SMALL_USED] = 0
    this.i32[c + K.S_MAIN_HEAD] = this.i32[c + K.S_MAIN_TAIL] = this.layout.smallBytes
    this.i32[c + K.S_MAIN_USED] = 0
    this.i32[c + K.S_ENTRIES] = 0
    this.i32[c + K.S_PROBATION] = 0
  }
}
