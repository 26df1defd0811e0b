import type { CacheStats } from './stats.js'

/**
 * A plain-language health check over a stats snapshot: whether the cache is
 * working, and what to change when its figures look wrong. Pure: it reads only
 * its input, so it works on `cache.stats()` in process and on figures scraped
 * from another process (`nearcache stats --from`).
 */
export interface HealthInput {
  stats: CacheStats
  /** A round trip to Redis just measured, in ms. */
  l2Ping?: number
  /** Why the round trip failed, when it was tried and failed (a refusal such as NOPERM, a timeout). */
  l2PingError?: string
  /** CLUSTER INFO cluster_state ('ok', 'fail') when L2 is a Redis Cluster. */
  clusterState?: string
  /** l1.maxBytes, when known: L1 fill is then reported as a fraction of it. */
  l1MaxBytes?: number
  /** Sizes of values written, when known: uncompressed bytes and bytes stored after compression. */
  values?: { count: number; rawBytes: number; storedBytes: number }
}

export type HealthStatus = 'ok' | 'degraded' | 'down'

export interface HealthReport {
  status: HealthStatus
  l2: {
    enabled: boolean
    pingMs?: number
    clusterState?: string
    /** L2 hits / (hits + misses); undefined before the first lookup. */
    hitRatio?: number
    errors: number
    p50: number
    p99: number
  }
  circuit: CacheStats['circuit']
  l1: {
    enabled: boolean
    /** bytes / l1MaxBytes when the capacity is known (0..1), else the bytes held. */
    fill: number
    fillIsRatio: boolean
    entries: number
    bytes: number
    /** Evictions per set; undefined before the first set. */
    evictionRate?: number
  }
  /** Overall hit ratio (a hit in either tier) over all lookups; undefined before the first lookup. */
  hitRatio?: number
  lookups: number
  recommendations: string[]
}

/** Below this overall hit ratio, with enough lookups to judge, the cache is not earning its keep. */
export const LOW_HIT_RATIO = 0.5
export const MIN_LOOKUPS = 1000
/** L1 evicting more than this share of what it stores is thrashing. */
export const THRASH_EVICTION_RATE = 0.5
export const MIN_SETS = 100
/** L2 round trips slower than this (p99 or ping) point at Redis or the network. */
export const SLOW_L2_MS = 50
/** Values larger than this on average are slow to encode, compress and copy. */
export const LARGE_VALUE_BYTES = 64 * 1024
/** Stored/raw above this: compression is not paying for itself. */
export const POOR_COMPRESSION = 0.9

const pct = (r: number) => `${(r * 100).toFixed(1)}%`
const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`

export function healthReport(input: HealthInput): HealthReport {
  const { stats } = input
  const { l1, l2 } = stats
  const recs: string[] = []
  let status: HealthStatus = 'ok'
  const worse = (s: HealthStatus) => {
    if (s === 'down' || (s === 'degraded' && status === 'ok')) status = s
  }

  // The application's lookups, from the namespace counters; before any (figures from
  // the tiers alone): every lookup starts at the first enabled tier, and a hit anywhere counts.
  const nss = Object.values(stats.namespaces)
  const nsHits = nss.reduce((n, x) => n + x.hits.l1 + x.hits.l2, 0)
  const nsLookups = nss.reduce((n, x) => n + x.hits.l1 + x.hits.l2 + x.misses.l1 + x.misses.l2, 0)
  const lookups = nsLookups > 0 ? nsLookups : l1.enabled ? l1.hits + l1.misses : l2.enabled ? l2.hits + l2.misses : 0
  const hits = nsLookups > 0 ? nsHits : (l1.enabled ? l1.hits : 0) + (l2.enabled ? l2.hits : 0)
  const hitRatio = lookups > 0 ? Math.min(1, hits / lookups) : undefined
  if (hitRatio !== undefined && lookups > MIN_LOOKUPS && hitRatio < LOW_HIT_RATIO) {
    recs.push(
      `Hit ratio is ${pct(hitRatio)} over ${lookups} lookups: raise ttl or l1.maxBytes, check key cardinality (keys that embed ids, timestamps or user input are rarely read twice).`,
    )
    worse('degraded')
  }

  const evictionRate = l1.enabled && l1.sets > 0 ? l1.evictions / l1.sets : undefined
  if (evictionRate !== undefined && l1.sets >= MIN_SETS && evictionRate > THRASH_EVICTION_RATE) {
    recs.push(
      `L1 is thrashing: ${l1.evictions} evictions for ${l1.sets} sets (${pct(evictionRate)}); entries are pushed out before they are read again. Raise l1.maxBytes, or keep rarely read keys out of L1.`,
    )
    worse('degraded')
  }

  if (l2.enabled) {
    if (stats.circuit === 'open') {
      recs.push(
        'Redis unreachable: the circuit breaker is open and L2 calls fail fast. Check that Redis is up and reachable from this host (address, port, firewall, password/TLS, maxclients); L1 keeps serving what it holds.',
      )
      worse('down')
    } else if (stats.circuit === 'half-open') {
      recs.push('Redis is recovering: the circuit breaker is half-open and probing. If it keeps reopening, check Redis load and the network.')
      worse('degraded')
    }
    if (input.l2PingError !== undefined) {
      recs.push(`Redis did not answer this namespace's health read: ${input.l2PingError} Until it does, L2 reads and writes of this namespace fail.`)
      worse('down')
    }
    if (input.clusterState !== undefined && input.clusterState !== 'ok') {
      recs.push(
        `Redis Cluster state is '${input.clusterState}': some slots are not served. Check CLUSTER INFO and CLUSTER NODES for failed masters without a replica to promote.`,
      )
      worse('down')
    }
    if (l2.latency.samples > 0 && l2.latency.p99 > SLOW_L2_MS) {
      recs.push(
        `L2 p99 latency is ${l2.latency.p99} ms (over ${SLOW_L2_MS} ms): check Redis CPU and SLOWLOG (large values, KEYS/SCAN load), the network round trip, and event-loop stalls in this process.`,
      )
      worse('degraded')
    }
    if (input.l2Ping !== undefined && input.l2Ping > SLOW_L2_MS) {
      recs.push(`A Redis ping takes ${input.l2Ping} ms (over ${SLOW_L2_MS} ms): Redis is overloaded or far away; run the cache close to Redis.`)
      worse('degraded')
    }
  }

  // Value sizes: from the recorded writes (given, or the process's counters), else the L1's average entry.
  const p = stats.process
  const v = input.values ?? (p.valuesWritten > 0 ? { count: p.valuesWritten, rawBytes: p.valueBytes, storedBytes: p.storedBytes } : undefined)
  if (v && v.count > 0 && v.rawBytes > 0) {
    const avg = v.rawBytes / v.count
    const ratio = v.storedBytes / v.rawBytes
    if (avg > LARGE_VALUE_BYTES && ratio > POOR_COMPRESSION) {
      recs.push(
        `Values average ${kib(avg)} and compress poorly (stored ${pct(ratio)} of their size): compression costs CPU for little gain. Store smaller values (split them, or cache ids and fetch the rest), or store already-compressed data as is.`,
      )
    } else if (avg > LARGE_VALUE_BYTES) {
      recs.push(`Values average ${kib(avg)}: large values are slow to encode and copy on every L2 round trip. Split them, or cache smaller projections.`)
    }
  } else if (l1.enabled && l1.entries > 0 && l1.bytes / l1.entries > LARGE_VALUE_BYTES) {
    recs.push(
      `L1 entries average ${kib(l1.bytes / l1.entries)}: large values are slow to encode and compress, and few fit in L1. Split them, or cache smaller projections.`,
    )
  }

  const fillIsRatio = input.l1MaxBytes !== undefined && input.l1MaxBytes > 0
  return {
    status,
    l2: {
      enabled: l2.enabled,
      ...(input.l2Ping !== undefined ? { pingMs: input.l2Ping } : {}),
      ...(input.clusterState !== undefined ? { clusterState: input.clusterState } : {}),
      ...(l2.hits + l2.misses > 0 ? { hitRatio: l2.hits / (l2.hits + l2.misses) } : {}),
      errors: l2.errors,
      p50: l2.latency.p50,
      p99: l2.latency.p99,
    },
    circuit: stats.circuit,
    l1: {
      enabled: l1.enabled,
      fill: fillIsRatio ? l1.bytes / (input.l1MaxBytes as number) : l1.bytes,
      fillIsRatio,
      entries: l1.entries,
      bytes: l1.bytes,
      ...(evictionRate !== undefined ? { evictionRate } : {}),
    },
    ...(hitRatio !== undefined ? { hitRatio } : {}),
    lookups,
    recommendations: recs,
  }
}
