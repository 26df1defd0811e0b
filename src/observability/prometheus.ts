/**
 * Prometheus exposition of `cache.stats()`: a text renderer (format 0.0.4) and an
 * adapter for a user's prom-client Registry. Both are built from one list of
 * metric families, so they always carry the same series.
 *
 * prom-client is an optional peer: this module imports its types only; the
 * adapter registers collect-on-scrape metric objects in the user's registry, so
 * nearcache has no runtime dependency on it.
 */
import type * as PromClient from 'prom-client'
import { emptyStats } from './stats.js'
import type { CacheStats, HistogramSnapshot, NamespaceStats } from './stats.js'

/** What the exporters need from a cache: its stats (a NearCache fits). */
export interface StatsSource {
  stats(): CacheStats
  readonly prefix: string
}

export interface Sample {
  /** The family name, or family name + '_bucket' / '_sum' / '_count' for histograms. */
  name: string
  labels: Record<string, string>
  value: number
}

export interface MetricFamily {
  name: string
  help: string
  type: 'counter' | 'gauge' | 'histogram'
  samples: Sample[]
}

type Tier = 'l1' | 'l2'
const TIERS: readonly Tier[] = ['l1', 'l2']

/** The numeric value of `stats().circuit` in `nearcache_circuit_state`. */
export const CIRCUIT_STATE_VALUE: Readonly<Record<CacheStats['circuit'], number>> = { closed: 0, open: 1, 'half-open': 2 }

const TIER_COUNTERS: readonly { field: 'hits' | 'misses' | 'sets' | 'deletes' | 'errors' | 'evictions'; help: string }[] = [
  { field: 'hits', help: 'Lookups the tier answered with an entry (all namespaces, internal reads included).' },
  { field: 'misses', help: 'Lookups the tier could not answer.' },
  { field: 'sets', help: 'Entries written to the tier.' },
  { field: 'deletes', help: 'Entries removed from the tier.' },
  { field: 'errors', help: 'Errors seen in the tier (corrupt entries, failed commands).' },
  { field: 'evictions', help: 'Entries the tier evicted to make room.' },
]

/** Label value escaping of the text format: backslash, double quote and line feed. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

/** HELP text escaping: backslash and line feed. */
function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
}

function formatValue(n: number): string {
  if (Number.isNaN(n)) return 'NaN'
  if (n === Infinity) return '+Inf'
  if (n === -Infinity) return '-Inf'
  return String(n)
}

function labelSet(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`)
  return parts.length === 0 ? '' : `{${parts.join(',')}}`
}

/** A histogram's samples in seconds: cumulative buckets with `le`, then _sum and _count. */
function histogramSamples(name: string, labels: Record<string, string>, h: HistogramSnapshot): Sample[] {
  const out: Sample[] = []
  let cumulative = 0
  h.counts.forEach((c, i) => {
    cumulative += c
    const le = i < h.bounds.length ? String((h.bounds[i] as number) / 1000) : '+Inf'
    out.push({ name: `${name}_bucket`, labels: { ...labels, le }, value: cumulative })
  })
  out.push({ name: `${name}_sum`, labels, value: h.sumMs / 1000 }, { name: `${name}_count`, labels, value: h.count })
  return out
}

/**
 * Every metric family of a stats snapshot. Series per namespace carry a
 * `namespace` label (the full namespace, e.g. `app:users`); tier series a `tier`
 * label. Both tiers are always present (a disabled tier reports zeros and
 * `nearcache_tier_enabled 0`), so series do not appear and vanish with config.
 */
export function metricFamilies(stats: CacheStats): MetricFamily[] {
  const families: MetricFamily[] = []
  const family = (name: string, help: string, type: MetricFamily['type'], samples: Sample[]) => families.push({ name, help, type, samples })
  /** A family of one series (no labels). */
  const one = (name: string, help: string, type: MetricFamily['type'], value: number) => family(name, help, type, [{ name, labels: {}, value }])
  const nss = Object.entries(stats.namespaces)
  const perNs = (name: string, help: string, pick: (n: NamespaceStats) => number) =>
    family(name, help, 'counter', nss.map(([namespace, n]) => ({ name, labels: { namespace }, value: pick(n) })))
  const perNsTier = (name: string, help: string, pick: (n: NamespaceStats, t: Tier) => number) =>
    family(name, help, 'counter', nss.flatMap(([namespace, n]) => TIERS.map((tier) => ({ name, labels: { namespace, tier }, value: pick(n, tier) }))))

  // Per namespace: what the application sees.
  perNsTier('nearcache_hits_total', 'Lookups (get, has, getMany keys, getOrSet) answered with a live value, by the tier that answered.', (n, t) => n.hits[t])
  perNsTier('nearcache_misses_total', 'Lookups answered "missing", by the tier that answered (an L1 negative entry counts as L1).', (n, t) => n.misses[t])
  perNs('nearcache_sets_total', 'Entries written (set, setMany, getOrSet loads).', (n) => n.sets)
  perNs('nearcache_deletes_total', 'Live entries removed by delete and deleteMany.', (n) => n.deletes)
  perNs('nearcache_expirations_total', 'Entries a read found past their expiry (Redis drops most expired keys before they are read).', (n) => n.expirations)
  perNs('nearcache_evictions_total', "L1 entries of the namespace evicted to make room (all threads' writes).", (n) => n.evictions)
  perNs('nearcache_errors_total', 'Corrupt entries and failed Redis commands of the namespace.', (n) => n.errors)
  perNs('nearcache_loader_calls_total', 'getOrSet loader calls made by this process.', (n) => n.loads)
  perNs('nearcache_coalesced_loads_total', "getOrSet calls answered by another call's in-flight load instead of calling their own loader.", (n) => n.coalesced)
  family(
    'nearcache_invalidations_total',
    'Tags invalidated (kind="tag") and prefixes removed by invalidatePrefix or clear (kind="prefix").',
    'counter',
    nss.flatMap(([namespace, n]) => [
      { name: 'nearcache_invalidations_total', labels: { namespace, kind: 'tag' }, value: n.invalidations.tags },
      { name: 'nearcache_invalidations_total', labels: { namespace, kind: 'prefix' }, value: n.invalidations.prefixes },
    ]),
  )
  family(
    'nearcache_lookup_duration_seconds',
    'Lookup latency of get and getOrSet (the cache part, not the loader), by the tier that answered, over all threads (L1 answers: one in 16 is timed and counted 16 times).',
    'histogram',
    nss.flatMap(([namespace, n]) => TIERS.flatMap((tier) => histogramSamples('nearcache_lookup_duration_seconds', { namespace, tier }, n.latency[tier]))),
  )

  // Per tier: what the tiers do, all namespaces together.
  for (const c of TIER_COUNTERS) {
    const name = `nearcache_tier_${c.field}_total`
    family(name, c.help, 'counter', TIERS.map((tier) => ({ name, labels: { tier }, value: stats[tier][c.field] })))
  }
  family(
    'nearcache_tier_enabled',
    'Whether the tier is configured (1) or not (0).',
    'gauge',
    TIERS.map((tier) => ({ name: 'nearcache_tier_enabled', labels: { tier }, value: stats[tier].enabled ? 1 : 0 })),
  )
  family(
    'nearcache_tier_latency_seconds',
    'Round trips of the tier over all threads (L1 lookups: one in 16 is timed and counted 16 times; L2: every Redis round trip).',
    'histogram',
    TIERS.flatMap((tier) => histogramSamples('nearcache_tier_latency_seconds', { tier }, stats[tier].histogram)),
  )
  one('nearcache_l1_entries', 'Live entries held by the shared L1 (values and negative entries), over all threads.', 'gauge', stats.l1.entries)
  one('nearcache_l1_bytes', 'Bytes held by the shared L1, over all threads.', 'gauge', stats.l1.bytes)
  one('nearcache_l1_capacity_bytes', 'Bytes the shared L1 may hold (l1.maxBytes; 0 without an L1).', 'gauge', stats.l1.capacity)

  // Per process.
  one('nearcache_circuit_state', 'L2 circuit breaker: 0 closed, 1 open, 2 half-open.', 'gauge', CIRCUIT_STATE_VALUE[stats.circuit])
  family('nearcache_invalidation_messages_total', 'Invalidation announcements published to (direction="sent") and received from (direction="received") other processes, and messages dropped because they failed validation (direction="rejected").', 'counter', [
    { name: 'nearcache_invalidation_messages_total', labels: { direction: 'sent' }, value: stats.process.invalidationsSent },
    { name: 'nearcache_invalidation_messages_total', labels: { direction: 'received' }, value: stats.process.invalidationsReceived },
    { name: 'nearcache_invalidation_messages_total', labels: { direction: 'rejected' }, value: stats.process.invalidationsRejected },
  ])
  one('nearcache_l1_flushes_total', 'Times the whole L1 was emptied because invalidations may have been lost (Redis disconnect, sequence gap).', 'counter', stats.process.l1Flushes)
  one('nearcache_values_written_total', 'Values encoded for writing by this process (set, setMany, getOrSet loads, conditional writes).', 'counter', stats.process.valuesWritten)
  family('nearcache_value_bytes_total', 'Bytes of the values written: encoded (form="encoded", msgpack) and as stored after compression (form="stored").', 'counter', [
    { name: 'nearcache_value_bytes_total', labels: { form: 'encoded' }, value: stats.process.valueBytes },
    { name: 'nearcache_value_bytes_total', labels: { form: 'stored' }, value: stats.process.storedBytes },
  ])
  one('nearcache_write_behind_corrupt_records_total', 'Corrupt or foreign write-behind log records found when the log was opened or replayed.', 'counter', stats.process.walCorruptions)
  one('nearcache_audit_dropped_records_total', 'Audit records dropped because the sink fell behind (maxQueue) or failed.', 'counter', stats.process.auditDropped)
  one('nearcache_write_behind_dead_letters_total', 'Write-behind records Redis refused for good, moved to the dead-letter file.', 'counter', stats.process.deadLetters)
  one('nearcache_write_behind_dead_letter_bytes', 'Size of the write-behind dead-letter file in bytes.', 'gauge', stats.process.deadLetterBytes)
  one('nearcache_write_behind_queue_depth', 'Writes acknowledged and waiting in the write-behind queue (0 without writeBehind).', 'gauge', stats.process.writeBehindDepth)
  return families
}

/**
 * Renders stats in the Prometheus text exposition format 0.0.4 (serve it as
 * `text/plain; version=0.0.4; charset=utf-8`). Every family has `# HELP` and `# TYPE`.
 */
export function renderPrometheus(stats: CacheStats): string {
  const out: string[] = []
  for (const f of metricFamilies(stats)) {
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`)
    for (const s of f.samples) out.push(`${s.name}${labelSet(s.labels)} ${formatValue(s.value)}`)
  }
  return out.join('\n') + '\n'
}

// ── prom-client adapter ────────────────────────────────────────────────────

export interface PromClientRegistration {
  /** Stops reporting this cache; the metrics leave the registry with the last registered cache. */
  unregister(): void
}

/** Per registry: the caches reported and the metric names registered for them. */
const sourcesByRegistry = new WeakMap<PromClient.Registry, { sources: Set<StatsSource>; names: string[] }>()

/**
 * Registers collect-on-scrape metrics, the same families as `renderPrometheus`, in
 * a prom-client Registry: each scrape reads `stats()` of the caches registered
 * with that registry. A cache's stats cover every namespace of its process, so
 * register the root cache once; when several caches are registered, a series two
 * of them report (same name and labels) is reported once, from the first.
 *
 * ```ts
 * import { register } from 'prom-client'
 * registerPromClient(cache, register)
 * ```
 */
export function registerPromClient(
  cache: StatsSource,
  registry: PromClient.Registry,
  /** Ignored: earlier versions needed the prom-client module; the adapter no longer does. */
  _client?: unknown,
): PromClientRegistration {
  let entry = sourcesByRegistry.get(registry)
  if (!entry) {
    entry = { sources: new Set(), names: [] }
    sourcesByRegistry.set(registry, entry)
    const { sources, names } = entry
    // prom-client calls every metric's get() in one synchronous pass per scrape:
    // one snapshot per cache serves the whole pass.
    let pass: Map<string, MetricFamily>[] | undefined
    const familiesOfSources = (): Map<string, MetricFamily>[] => {
      if (!pass) {
        pass = [...sources].map((s) => new Map(metricFamilies(s.stats()).map((f) => [f.name, f])))
        queueMicrotask(() => (pass = undefined))
      }
      return pass
    }
    // The family list does not depend on the figures: take names, help and types from an empty snapshot.
    for (const f of metricFamilies(emptyStats())) {
      const metric = {
        name: f.name,
        help: f.help,
        type: f.type,
        aggregator: 'sum' as const,
        get: () => {
          const seen = new Set<string>()
          // Counters and gauges leave metricName out: prom-client then uses the metric's
          // name, which it rewrites for OpenMetrics (counters lose '_total' there and get it back per sample).
          const values: { metricName?: string; labels: Record<string, string>; value: number }[] = []
          for (const byName of familiesOfSources()) {
            const fam = byName.get(f.name)
            for (const sample of fam?.samples ?? []) {
              const id = `${sample.name}${labelSet(sample.labels)}`
              if (seen.has(id)) continue
              seen.add(id)
              values.push(f.type === 'histogram' ? { metricName: sample.name, labels: sample.labels, value: sample.value } : { labels: sample.labels, value: sample.value })
            }
          }
          return { name: metric.name, help: f.help, type: f.type, aggregator: 'sum', values }
        },
        reset: () => {},
      }
      registry.registerMetric(metric as unknown as PromClient.Metric)
      names.push(f.name)
    }
  }
  const e = entry
  e.sources.add(cache)
  let done = false
  return {
    unregister() {
      if (done) return
      done = true
      e.sources.delete(cache)
      if (e.sources.size > 0) return
      for (const name of e.names) registry.removeSingleMetric(name)
      sourcesByRegistry.delete(registry)
    },
  }
}
