/**
 * A tier stores envelope bytes under full keys (`<namespace>:<key>`). The cache
 * (src/cache/) owns everything above bytes: validation, encoding, TTL, tags. The
 * Redis tier, the L1-only tier and the layers in front of them (L1 in front of L2,
 * announcements, write-behind, a worker thread's link to its owner) implement this
 * one contract; src/tiers/compose.ts stacks them.
 */
import type { KeyRef, RecordStamp } from '../l1/shared_table.js'

/** `peekKnown`'s answer when the key's L1 record is still the one the caller knows (nothing was copied). */
export const UNCHANGED: unique symbol = Symbol('nearcache.unchanged')

/** What a thread knows of a key's L1 record (its decode memo): see `Tier.peekKnown`. */
export interface KnownRecord {
  /** The key prepared for the table; the tier makes it on first use and keeps it here. */
  ref: KeyRef | undefined
  /** The record the caller's value was made from (slot -1: none). */
  readonly stamp: RecordStamp
}
export interface TierWrite {
  key: string
  bytes: Buffer
  /** Time to live in ms; undefined = no expiry. */
  px: number | undefined
}

/** What `counters` does: read, read and create a missing one (random start), or increment. */
export type CounterOp = 'read' | 'init' | 'bump'

export interface Tier {
  /**
   * A synchronous answer from memory (L1, or a queued write-behind copy): bytes,
   * null (known missing), or undefined when only `get` can tell. The L1 hit path
   * never awaits.
   */
  peek(key: string): Buffer | null | undefined
  /**
   * L1 tiers only: `peek`, told what the caller knows of the key's record: UNCHANGED
   * when the key's live L1 record is still `known.stamp`'s (no bytes are copied),
   * else what `peek` answers. After bytes from L1, `stamp` holds the record's
   * stamp, until the next call into the tier.
   */
  peekKnown?(key: string, known: KnownRecord | undefined): Buffer | null | undefined | typeof UNCHANGED
  /**
   * L1 tiers only: `counters(keys, 'read')` answered from L1 alone, or undefined
   * when L1 does not hold every one of them (then only `counters` can tell).
   */
  peekCounters?(keys: string[]): (number | null)[] | undefined
  /** L1 tiers only: the stamp of the record `peek`/`peekKnown` last answered from L1 (see peekKnown). */
  readonly stamp?: RecordStamp
  /**
   * One key, for a caller whose `peek` answered undefined; reads issued in one tick
   * may be coalesced, and an L1 in front fills from the answer. `fresh`: from the
   * authoritative tier only (never an L1 or queued copy) — what conditional writes
   * and locks decide on.
   */
  get(key: string, fresh?: boolean): Promise<Buffer | null>
  /**
   * Many keys, answers in key order. Never fails with CROSSSLOT. A tier with an L1
   * sets `fromL1[i] = true` for the answers L1 gave (for the namespace counters).
   */
  mget(keys: string[], fromL1?: boolean[]): Promise<(Buffer | null)[]>
  set(writes: TierWrite[]): Promise<void>
  /**
   * Writes `w` only if the key still holds bytes whose SHA-1 is `expectSha1`
   * (or, when `expectSha1` is null, only if the key is absent). Atomic.
   */
  casSet(w: TierWrite, expectSha1: string | null): Promise<boolean>
  /** Removes the keys; answers what each held (null when absent). */
  take(keys: string[]): Promise<(Buffer | null)[]>
  /**
   * Integer counters (tag epochs). 'read': null where a counter does not exist.
   * 'init': a missing counter is first created, atomically, with a random value, so
   * a counter that was lost (evicted, deleted) never comes back with an old value.
   * 'bump': increments (a missing counter starts at a random value); answers null.
   */
  counters(keys: string[], op: CounterOp): Promise<(number | null)[]>
  /** Takes lock `key` for `px` ms if nobody holds it; answers whether we got it. */
  lock(key: string, token: string, px: number): Promise<boolean>
  /** Releases a lock we hold (only if it still carries our token). */
  unlock(key: string, token: string): Promise<void>
  /** Removes every key starting with one of the prefixes; answers how many. */
  deletePrefixes(prefixes: string[]): Promise<number>
  close(): Promise<void>
  /**
   * L2 only: spends `cost` tokens of the distributed rate limit at `key` (GCRA,
   * src/access/gcra.ts); answers 0, or the milliseconds to wait. Absent without Redis.
   */
  rateLimit?(key: string, intervalUs: number, toleranceUs: number, cost: number): Promise<number>
}
