import { readHistogram } from './stats_histogram.js'
import { L1_BASE, L2_BASE, MAX_THREAD_ROWS, nsBase, OTHER_BLOCK, OTHER_NAMESPACE, PROC_BASE, ROW } from './stats_layout.js'
import { Field, NS_FIELDS, NS_L1_HISTOGRAM, NS_L2_HISTOGRAM, NsField, ProcField, TIER_COUNTERS } from './stats_meters.js'
import type { Meter } from './stats_meters.js'
import type { CacheStats, L1Usage, NamespaceStats, TierStats } from './stats_types.js'

// stats(): the rows of every thread summed into one, read out as CacheStats.

/** The sum of the first `used` rows, over the blocks in use: tiers, process, the first `nsCount` namespaces and the overflow block. */
export function sumRows(rows: Float64Array, used: number, nsCount: number): Float64Array {
  const sum = new Float64Array(ROW)
  const spans: [number, number][] = [
    [0, nsBase(nsCount)],
    [nsBase(OTHER_BLOCK), ROW],
  ]
  for (let r = 0; r < Math.min(used, MAX_THREAD_ROWS); r++) {
    const off = r * ROW
    for (const [from, to] of spans) for (let f = from; f < to; f++) sum[f]! += rows[off + f] as number
  }
  return sum
}

export interface SnapshotParts {
  sum: Float64Array
  /** The registered namespace names, in block order. */
  names: readonly string[]
  /** This thread's tier meters (enabled, and its own latency window). */
  l1: Meter
  l2: Meter
  l1Usage: L1Usage | undefined
  circuit: CacheStats['circuit']
}

export function readStats(p: SnapshotParts): CacheStats {
  const { sum } = p
  const namespaces: Record<string, NamespaceStats> = {}
  p.names.forEach((name, i) => (namespaces[name] = readNamespace(sum, i)))
  const other = nsBase(OTHER_BLOCK)
  if (p.names.length >= OTHER_BLOCK || sum.subarray(other, other + NS_FIELDS).some((v) => v !== 0)) namespaces[OTHER_NAMESPACE] = readNamespace(sum, OTHER_BLOCK)
  const f = (x: ProcField) => sum[PROC_BASE + x] as number
  return {
    l1: readTier(sum, L1_BASE, p.l1, p.l1Usage),
    l2: readTier(sum, L2_BASE, p.l2, undefined),
    circuit: p.circuit,
    namespaces,
    process: {
      invalidationsSent: f(ProcField.InvalidationsSent),
      invalidationsReceived: f(ProcField.InvalidationsReceived),
      invalidationsRejected: f(ProcField.InvalidationsRejected),
      l1Flushes: f(ProcField.L1Flushes),
      writeBehindDepth: f(ProcField.WriteBehindDepth),
      valuesWritten: f(ProcField.ValuesWritten),
      valueBytes: f(ProcField.ValueBytes),
      storedBytes: f(ProcField.StoredBytes),
      walCorruptions: f(ProcField.WalCorruptions),
      deadLetters: f(ProcField.DeadLetters),
      deadLetterBytes: f(ProcField.DeadLetterBytes),
      auditDropped: f(ProcField.AuditDropped),
    },
  }
}

function readTier(sum: Float64Array, base: number, m: Meter, usage: L1Usage | undefined): TierStats {
  const f = (x: Field) => sum[base + x] as number
  return {
    enabled: m.enabled,
    hits: f(Field.Hits),
    misses: f(Field.Misses),
    sets: f(Field.Sets),
    deletes: f(Field.Deletes),
    errors: f(Field.Errors),
    evictions: f(Field.Evictions),
    entries: usage?.entries ?? 0,
    bytes: usage?.bytes ?? 0,
    capacity: usage?.capacity ?? 0,
    latency: m.latency(),
    histogram: readHistogram(sum, base + TIER_COUNTERS),
  }
}

function readNamespace(sum: Float64Array, block: number): NamespaceStats {
  const b = nsBase(block)
  const f = (x: NsField) => sum[b + x] as number
  return {
    hits: { l1: f(NsField.L1Hits), l2: f(NsField.L2Hits) },
    misses: { l1: f(NsField.L1Misses), l2: f(NsField.L2Misses) },
    sets: f(NsField.Sets),
    deletes: f(NsField.Deletes),
    expirations: f(NsField.Expirations),
    errors: f(NsField.Errors),
    loads: f(NsField.Loads),
    coalesced: f(NsField.Coalesced),
    invalidations: { tags: f(NsField.TagInvalidations), prefixes: f(NsField.PrefixInvalidations) },
    evictions: f(NsField.Evictions),
    latency: { l1: readHistogram(sum, b + NS_L1_HISTOGRAM), l2: readHistogram(sum, b + NS_L2_HISTOGRAM) },
  }
}
