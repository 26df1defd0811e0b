import { emptyHistogram } from './stats_histogram.js'
import type { HistogramSnapshot } from './stats_histogram.js'

// What stats() returns: the figures of each tier, each namespace and the process.

export interface TierStats {
  enabled: boolean
  hits: number
  misses: number
  sets: number
  deletes: number
  errors: number
  evictions: number
  /** L1 only: live entries (values and negative entries) and bytes held, over all threads. */
  entries: number
  bytes: number
  /** L1 only: the bytes the table may hold (l1.maxBytes); 0 for L2. */
  capacity: number
  /** Round-trip latency in ms over this thread's most recent 4096 samples. */
  latency: { p50: number; p99: number; samples: number }
  /** Round-trip latency over all threads since start (L1: one lookup in 16 is timed and counted 16 times). */
  histogram: HistogramSnapshot
}

/** One namespace's figures, over all threads. A lookup is a get, has, getMany key or getOrSet. */
export interface NamespaceStats {
  /** Lookups answered with a live value, by the tier that answered. */
  hits: { l1: number; l2: number }
  /** Lookups answered "missing", by the tier that answered (an L1 negative entry counts as L1). */
  misses: { l1: number; l2: number }
  sets: number
  /** Live entries removed by delete/deleteMany. */
  deletes: number
  /** Entries found past their expiry when read (Redis drops most expired keys itself; this counts the ones seen). */
  expirations: number
  /** Corrupt entries and failed commands of this namespace. */
  errors: number
  /** getOrSet loader calls made in this process. */
  loads: number
  /** getOrSet calls answered by another call's in-flight load instead of their own loader. */
  coalesced: number
  /** Tags invalidated (invalidateTags) and prefixes removed (invalidatePrefix, clear). */
  invalidations: { tags: number; prefixes: number }
  /** L1 entries of this namespace evicted to make room (by the longest registered namespace that prefixes the key). */
  evictions: number
  /** Lookup latency of get and getOrSet (not the loader), by the tier that answered (L1 answers: one in 16 is timed and counted 16 times). */
  latency: { l1: HistogramSnapshot; l2: HistogramSnapshot }
}

/** Figures of the process rather than of a tier or namespace. */
export interface ProcessStats {
  /** Invalidation announcements published to / received from other processes (Redis pub/sub). */
  invalidationsSent: number
  invalidationsReceived: number
  /** Invalidation messages dropped because they failed validation (E_BAD_MESSAGE). */
  invalidationsRejected: number
  /** Times the whole L1 was emptied because announcements may have been lost (disconnect, gap). */
  l1Flushes: number
  /** Writes waiting in the write-behind queue (0 without writeBehind). */
  writeBehindDepth: number
  /** Values written by this process, their encoded (msgpack) bytes and the bytes stored after compression. */
  valuesWritten: number
  valueBytes: number
  storedBytes: number
  /** Corrupt or foreign write-behind log records found when the log was opened or replayed. */
  walCorruptions: number
  /** Records moved to the write-behind dead-letter file (Redis refused them for good), and that file's size in bytes. */
  deadLetters: number
  deadLetterBytes: number
  /** Audit records dropped: the audit sink fell behind (over audit.maxQueue waiting) or failed (E_AUDIT_DROPPED). */
  auditDropped: number
}

export interface CacheStats {
  l1: TierStats
  l2: TierStats
  /** The L2 circuit breaker: 'closed' (normal), 'open' (failing fast), 'half-open' (probing). */
  circuit: 'closed' | 'open' | 'half-open'
  /** Every namespace any thread of this process has used, by full name. */
  namespaces: Record<string, NamespaceStats>
  process: ProcessStats
}

/** The breaker states, in the order their index is stored in the buffer's header. */
export const CIRCUIT_STATES: readonly CacheStats['circuit'][] = ['closed', 'open', 'half-open']

/** L1 figures the table reports itself (not counted in the stats rows). */
export interface L1Usage {
  entries: number
  bytes: number
  capacity: number
}

/** A namespace's figures, all zero. */
export function emptyNamespaceStats(): NamespaceStats {
  return {
    hits: { l1: 0, l2: 0 },
    misses: { l1: 0, l2: 0 },
    sets: 0,
    deletes: 0,
    expirations: 0,
    errors: 0,
    loads: 0,
    coalesced: 0,
    invalidations: { tags: 0, prefixes: 0 },
    evictions: 0,
    latency: { l1: emptyHistogram(), l2: emptyHistogram() },
  }
}

/** A snapshot with every figure zero and both tiers disabled (what a parse of no series starts from). */
export function emptyStats(): CacheStats {
  const tier = (): TierStats => ({
    enabled: false,
    hits: 0,
    misses: 0,
    sets: 0,
    deletes: 0,
    errors: 0,
    evictions: 0,
    entries: 0,
    bytes: 0,
    capacity: 0,
    latency: { p50: 0, p99: 0, samples: 0 },
    histogram: emptyHistogram(),
  })
  const process: ProcessStats = { invalidationsSent: 0, invalidationsReceived: 0, invalidationsRejected: 0, l1Flushes: 0, writeBehindDepth: 0, valuesWritten: 0, valueBytes: 0, storedBytes: 0, walCorruptions: 0, deadLetters: 0, deadLetterBytes: 0, auditDropped: 0 }
  return { l1: tier(), l2: tier(), circuit: 'closed', namespaces: {}, process }
}
