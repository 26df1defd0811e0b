/**
 * Layout of the shared L1 table: one SharedArrayBuffer, laid out once by the
 * owning thread and read by every attached thread from its header. All `k`
 * constants are shared by every thread; change kLayoutVersion when any changes.
 *
 *   header       Int32[kHeaderInts]
 *   shard ctl    Int32[nShards * kShardInts]     lock, ring heads/tails/used, entries
 *   lock times   Float64[nShards]
 *   epochs       Int32[kEpochs]                  bumped by every write/delete (fill guard)
 *   generations  Int32[kRootGens + 1]            per root namespace (hashed), then one for the whole table:
 *                                                bumping one voids every record of that root at once (O(1) flush)
 *   ghosts       Int32[nShards * ghostSlots]     S3-FIFO ghost hashes (direct-mapped)
 *   index        Int32[nShards * buckets * kSlotsPerBucket * kSlotInts]   two-choice: a key's slot is in one of two buckets
 *   data         bytes[nShards * shardDataBytes] small ring | main ring, per shard
 */
export const kMagic = 0x4e434c31 // 'NCL1'
export const kLayoutVersion = 4
export const kHeaderInts = 16
export const kShardInts = 16
export const kSlotsPerBucket = 8
export const kSlotInts = 4
export const kEpochs = 4096
/** Generation words for root namespaces (hashed; a power of two), plus one more for the whole table. */
export const kRootGens = 64
export const kRecordHeader = 32
/** Share of each shard's data bytes given to the small (probationary) FIFO. */
export const kSmallShare = 0.1

// header fields
export const H_MAGIC = 0
export const H_VERSION = 1
export const H_SHARDS = 2
export const H_BUCKETS = 3
export const H_SHARD_DATA = 4
export const H_SMALL = 5
export const H_GHOSTS = 6
export const H_TOTAL_BYTES = 7
/** 1 while L1 cannot be trusted (the invalidation bus is down): no fills in any thread. */
export const H_UNTRUSTED = 10
/** Bumped whenever trust is lost or regained: fills that started before are dropped. */
export const H_TRUST_EPOCH = 11
/** Float64 index (bytes 32–39) of the budget the layout was computed from. */
export const H_F64_MAX_BYTES = 4

// shard control fields
export const S_LOCK = 0
export const S_SMALL_HEAD = 1
export const S_SMALL_TAIL = 2
export const S_SMALL_USED = 3
export const S_MAIN_HEAD = 4
export const S_MAIN_TAIL = 5
export const S_MAIN_USED = 6
export const S_ENTRIES = 7
/** Bytes of probationary records (F_PROBATION) in the main ring, dead or alive, until its tail passes them. */
export const S_PROBATION = 8
/** A ring's three words, from its first (S_SMALL_HEAD or S_MAIN_HEAD): next free byte, oldest record, bytes in use. */
export const RING_HEAD = 0
export const RING_TAIL = 1
export const RING_USED = 2

// slot fields
export const SL_SEQ = 0
export const SL_TAG = 1
export const SL_REF = 2
export const SL_FREQ = 3

// record fields (byte offsets; read and written only through records.ts)
export const R_TAG = 0
export const R_SLOT = 4
export const R_KEYLEN = 8
export const R_VALLEN = 12
export const R_DEADLINE = 16
export const R_FLAGS = 24
/**
 * The record's generation: its root's word plus the table's word when it was
 * written. (A record's total size is not stored: it is ALIGN(header + key + value);
 * a filler keeps its length in R_VALLEN.)
 */
export const R_GEN = 28
/** Bits of R_FLAGS above the flags: the index of the record's root generation word (0 … kRootGens-1). */
export const ROOT_SHIFT = 8
export const F_NEGATIVE = 1
export const F_FILLER = 2
/**
 * A record moved from the small ring to main only because main had room: still
 * probationary (logically part of the small FIFO, which may exceed its target
 * share while the shard has room). Once the shard is full, such records at main's
 * tail are the oldest of the small FIFO: evicted first, or promoted if used.
 */
export const F_PROBATION = 4

export interface Layout {
  nShards: number
  buckets: number
  shardDataBytes: number
  smallBytes: number
  ghostSlots: number
  totalBytes: number
  shardCtlOff: number
  lockTimeOff: number
  epochsOff: number
  gensOff: number
  ghostsOff: number
  indexOff: number
  dataOff: number
}

const align8 = (n: number) => (n + 7) & ~7
const pow2Floor = (n: number) => 2 ** Math.floor(Math.log2(Math.max(1, n)))

/** The smallest budget that still gives every shard room for a few records. */
export const kMinBytes = 256 * 1024

/** Splits a byte budget: ~6% index, the rest data, nothing above `maxBytes`. */
export function computeLayout(maxBytes: number): Layout {
  const nShards = maxBytes >= 16 * 1024 * 1024 ? 16 : 8
  // One index slot per 128 budget bytes (a record holds at least 32 header bytes plus
  // key and envelope, so small entries cost ~150 bytes): the index is 1/8 of the budget.
  const buckets = Math.max(1, Math.floor(maxBytes / 128 / nShards / kSlotsPerBucket))
  const ghostSlots = pow2Floor(maxBytes / 512 / nShards)
  const shardCtlOff = kHeaderInts * 4
  const lockTimeOff = align8(shardCtlOff + nShards * kShardInts * 4)
  const epochsOff = lockTimeOff + nShards * 8
  const gensOff = epochsOff + kEpochs * 4
  const ghostsOff = gensOff + (kRootGens + 2) * 4
  const indexOff = ghostsOff + nShards * ghostSlots * 4
  const dataOff = align8(indexOff + nShards * buckets * kSlotsPerBucket * kSlotInts * 4)
  const shardDataBytes = Math.floor((maxBytes - dataOff) / nShards / 8) * 8
  const smallBytes = Math.max(kRecordHeader * 4, Math.floor((shardDataBytes * kSmallShare) / 8) * 8)
  return {
    nShards,
    buckets,
    shardDataBytes,
    smallBytes,
    ghostSlots,
    totalBytes: dataOff + nShards * shardDataBytes,
    shardCtlOff,
    lockTimeOff,
    epochsOff,
    gensOff,
    ghostsOff,
    indexOff,
    dataOff,
  }
}
