import { NS_FIELDS, PROC_FIELDS, TIER_FIELDS } from './stats_meters.js'

/**
 * The stats SharedArrayBuffer, shared by every thread attached to a cache:
 *
 *   header   Int32[HEADER_WORDS] (see HeaderWord), then the Float64 time the
 *            name-table lock was taken                          HEADER_BYTES
 *   names    MAX_NAMESPACES slots of NAME_BYTES: a u16 LE length, then the
 *            namespace's UTF-8 name                             at NAMES_BASE
 *   rows     MAX_THREAD_ROWS rows of ROW Float64 counters, one per thread:
 *            L1 tier | L2 tier | process | MAX_NAMESPACES namespace blocks
 *                                                               at ROWS_BASE
 *
 * Namespace block i of every row belongs to name slot i; the last block collects
 * every namespace past the table's size (OTHER_NAMESPACE).
 */

/** The Int32 words of the header. */
export const enum HeaderWord {
  /** Rows handed out (Atomics.add); may pass MAX_THREAD_ROWS, threads past the last row share it. */
  RowsClaimed = 0,
  /** The breaker's state: its index in CIRCUIT_STATES (Atomics.store/load). */
  Circuit = 1,
  /** The name-table lock (threads/atomics withLock). */
  NamesLock = 2,
  /** Names registered so far; grows only, stored after the name it makes visible. */
  NamesCount = 3,
}
export const HEADER_WORDS = 4
/** Byte offset of the Float64 time the name-table lock was taken (a stale lock is stolen). */
export const NAMES_LOCK_TIME_BYTE = HEADER_WORDS * 4
/** How long the name-table lock may be held before another thread steals it, in ms. */
export const NAMES_LOCK_STALE_MS = 1000
export const HEADER_BYTES = NAMES_LOCK_TIME_BYTE + 8

/** Namespace blocks per row; the last one collects every namespace past the others. */
export const MAX_NAMESPACES = 32
export const OTHER_NAMESPACE = '(other)'
/** The block of OTHER_NAMESPACE. */
export const OTHER_BLOCK = MAX_NAMESPACES - 1
/** Bytes of one name slot: a u16 length and up to NAME_BYTES - 2 bytes of UTF-8. */
export const NAME_BYTES = 256
export const NAMES_BASE = HEADER_BYTES

/** Thread rows; threads past the last share it (their increments may then race). */
export const MAX_THREAD_ROWS = 64
/** Where each block starts in a row, in Float64 fields. */
export const L1_BASE = 0
export const L2_BASE = TIER_FIELDS
export const PROC_BASE = 2 * TIER_FIELDS
export const NS_BASE = PROC_BASE + PROC_FIELDS
/** Float64 fields per row. */
export const ROW = NS_BASE + MAX_NAMESPACES * NS_FIELDS
export const ROWS_BASE = NAMES_BASE + MAX_NAMESPACES * NAME_BYTES

/** Bytes of the SharedArrayBuffer behind a StatsBlock. */
export const STATS_BYTES = ROWS_BASE + MAX_THREAD_ROWS * ROW * 8

/** Where namespace block `i` starts in a row. */
export function nsBase(i: number): number {
  return NS_BASE + i * NS_FIELDS
}
