// The L1 index: per shard, buckets of kSlotsPerBucket slots; a key may live in
// either of two buckets (two-choice hashing), so a bucket overflows (and evicts) only
// when both are full. Lookups look in the first bucket, then the second.
import * as K from './layout.js'

/**
 * Index placement: a new key stays in its first bucket while that has this many
 * free slots (of 8), else goes to the emptier of its two buckets. Measured on 64 MB
 * with 152-byte records (2026-12): 5 overflows no key at 50/80/95% of the data area
 * and keeps ~80% of keys where a lookup looks first (1: 0.12%/0.53% overflow at
 * 80/95%; always the emptier: 0 overflow but ~31% of hits pay a second bucket).
 */
const kKeepFirst = 5

/** The key's first bucket within its shard (the shard takes the hash's top 4 bits). */
export function firstBucket(h: number, buckets: number): number {
  return (h & 0x0fffffff) % buckets
}

/**
 * The key's second bucket: from a remix of the whole hash (murmur3's finalizer), so
 * keys that share a first bucket spread over different second ones. Never the first.
 */
export function secondBucket(h: number, buckets: number): number {
  let x = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35)
  const first = firstBucket(h, buckets)
  const second = ((x ^ (x >>> 16)) >>> 0) % buckets
  return second === first ? (second + 1) % buckets : second
}

/** A free slot for a new key: the first bucket while it is roomy (lookups look there first), else the emptier; -1 when both are full. */
export function pickFreeSlot(i32: Int32Array, indexBase: number, bases: readonly number[]): number {
  let best = -1
  let bestFree = 0
  for (const base of bases) {
    let free = 0
    let first = -1
    for (let j = 0; j < K.kSlotsPerBucket; j++) {
      if (i32[indexBase + (base + j) * K.kSlotInts + K.SL_TAG] !== 0) continue
      if (first < 0) first = base + j
      free++
    }
    if (free > bestFree) {
      best = first
      bestFree = free
    }
    if (bestFree >= kKeepFirst) break
  }
  return best
}

/** The least-used slot of the buckets (the first on a tie): the victim when both are full. */
export function leastUsedSlot(i32: Int32Array, indexBase: number, bases: readonly number[]): number {
  let victim = bases[0] as number
  let victimFreq = 99
  for (const base of bases) {
    for (let j = 0; j < K.kSlotsPerBucket; j++) {
      const f = i32[indexBase + (base + j) * K.kSlotInts + K.SL_FREQ] as number
      if (f < victimFreq) {
        victim = base + j
        victimFreq = f
      }
    }
  }
  return victim
}
