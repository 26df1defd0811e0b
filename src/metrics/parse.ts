/**
 * Reading nearcache's Prometheus text back: the text parser, and the inverse of
 * `metricFamilies` (a `CacheStats` rebuilt from a scrape). `nearcache stats
 * --from` and the demo print their figures through it, so what they show is
 * exactly what a Prometheus server would store.
 */
import { emptyNamespaceStats, emptyStats } from '../stats.js'
import type { CacheStats, HistogramSnapshot, NamespaceStats } from '../stats.js'
import { histogramQuantile } from '../stats_histogram.js'

/** One sample of Prometheus text: name, labels, value. */
export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** Prometheus text exposition format (comments and blank lines skipped; timestamps ignored). */
export function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = []
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)
    if (!m) continue
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
    }
    const v = m[3] as string
    const value = v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v)
    samples.push({ name: m[1] as string, labels, value })
  }
  return samples
}

const CIRCUIT = ['closed', 'open', 'half-open'] as const

/** Collects cumulative `_bucket` samples, `_sum` and `_count` into a HistogramSnapshot. */
class HistogramBuilder {
  private readonly buckets = new Map<number, number>()
  sumMs = 0

  bucket(le: string, cumulative: number): void {
    this.buckets.set(le === '+Inf' ? Infinity : Number(le) * 1000, cumulative)
  }

  build(): HistogramSnapshot {
    const les = [...this.buckets.keys()].sort((a, b) => a - b)
    const bounds = les.filter((b) => b !== Infinity).map((b) => Math.round(b * 1e6) / 1e6)
    const counts: number[] = []
    let prev = 0
    for (const le of les) {
      const c = this.buckets.get(le) as number
      counts.push(c - prev)
      prev = c
    }
    if (!les.includes(Infinity)) counts.push(0)
    return { bounds, counts, count: prev, sumMs: this.sumMs }
  }
}

const NS_COUNTERS: Record<string, (n: NamespaceStats, v: number, l: Record<string, string>) => void> = {
  hits_total: (n, v, l) => (l.tier === 'l1' || l.tier === 'l2' ? (n.hits[l.tier] += v) : 0),
  misses_total: (n, v, l) => (l.tier === 'l1' || l.tier === 'l2' ? (n.misses[l.tier] += v) : 0),
  sets_total: (n, v) => (n.sets += v),
  deletes_total: (n, v) => (n.deletes += v),
  expirations_total: (n, v) => (n.expirations += v),
  errors_total: (n, v) => (n.errors += v),
  evictions_total: (n, v) => (n.evictions += v),
  loader_calls_total: (n, v) => (n.loads += v),
  coalesced_loads_total: (n, v) => (n.coalesced += v),
  invalidations_total: (n, v, l) => (l.kind === 'tag' ? (n.invalidations.tags += v) : l.kind === 'prefix' ? (n.invalidations.prefixes += v) : 0),
}

const TIER_FIELDS = ['hits', 'misses', 'sets', 'deletes', 'errors', 'evictions'] as const

/**
 * A CacheStats rebuilt from nearcache's metrics; undefined when the samples hold
 * no nearcache_* series. Per-thread latency windows are not exported: `latency`
 * p50/p99 are estimated from the tier histograms.
 */
export function statsFromSamples(samples: Sample[]): CacheStats | undefined {
  const stats: CacheStats = emptyStats()
  const hists = new Map<string, HistogramBuilder>()
  const hist = (key: string) => {
    let h = hists.get(key)
    if (!h) hists.set(key, (h = new HistogramBuilder()))
    return h
  }
  const ns = (name: string) => (stats.namespaces[name] ??= emptyNamespaceStats())
  let found = false
  for (const s of samples) {
    if (!s.name.startsWith('nearcache_')) continue
    found = true
    const base = s.name.slice('nearcache_'.length)
    const l = s.labels
    const tier = l.tier === 'l1' || l.tier === 'l2' ? stats[l.tier] : undefined
    const histogram = /^(lookup_duration_seconds|tier_latency_seconds)_(bucket|sum|count)$/.exec(base)
    if (histogram) {
      const key = JSON.stringify(histogram[1] === 'lookup_duration_seconds' ? ['ns', l.namespace, l.tier] : ['tier', l.tier, ''])
      if (histogram[1] === 'lookup_duration_seconds' && l.namespace !== undefined) ns(l.namespace)
      if (histogram[2] === 'bucket' && l.le !== undefined) hist(key).bucket(l.le, s.value)
      else if (histogram[2] === 'sum') hist(key).sumMs = s.value * 1000
      continue
    }
    const tierField = TIER_FIELDS.find((f) => base === `tier_${f}_total`)
    if (tierField && tier) tier[tierField] += s.value
    else if (base === 'tier_enabled' && tier) tier.enabled = s.value === 1
    else if (base === 'l1_entries') stats.l1.entries = s.value
    else if (base === 'l1_bytes') stats.l1.bytes = s.value
    else if (base === 'l1_capacity_bytes') stats.l1.capacity = s.value
    else if (base === 'circuit_state') stats.circuit = CIRCUIT[s.value] ?? 'closed'
    else if (base === 'invalidation_messages_total') {
      if (l.direction === 'sent') stats.process.invalidationsSent += s.value
      else if (l.direction === 'received') stats.process.invalidationsReceived += s.value
      else if (l.direction === 'rejected') stats.process.invalidationsRejected += s.value
    } else if (base === 'l1_flushes_total') stats.process.l1Flushes += s.value
    else if (base === 'write_behind_queue_depth') stats.process.writeBehindDepth += s.value
    else if (base === 'write_behind_corrupt_records_total') stats.process.walCorruptions += s.value
    else if (base === 'write_behind_dead_letters_total') stats.process.deadLetters += s.value
    else if (base === 'write_behind_dead_letter_bytes') stats.process.deadLetterBytes += s.value
    else if (base === 'values_written_total') stats.process.valuesWritten += s.value
    else if (base === 'value_bytes_total') {
      if (l.form === 'encoded') stats.process.valueBytes += s.value
      else if (l.form === 'stored') stats.process.storedBytes += s.value
    }
    else if (NS_COUNTERS[base] && l.namespace !== undefined) NS_COUNTERS[base](ns(l.namespace), s.value, l)
  }
  if (!found) return undefined
  for (const [key, b] of hists) {
    const [kind, a, t] = JSON.parse(key) as [string, string, string]
    const h = b.build()
    if (kind === 'tier' && (a === 'l1' || a === 'l2')) {
      stats[a].histogram = h
      stats[a].latency = { p50: quantileMs(h, 0.5), p99: quantileMs(h, 0.99), samples: h.count }
    } else if (kind === 'ns' && (t === 'l1' || t === 'l2')) ns(a).latency[t] = h
  }
  return stats
}

function quantileMs(h: HistogramSnapshot, q: number): number {
  const v = histogramQuantile(h, q)
  return v === undefined ? 0 : Math.round(v * 1000) / 1000
}
