/**
 * Reading nearcache's Prometheus text back: the text parser, and the inverse of
 * `metricFamilies` (a `CacheStats` rebuilt from a scrape). `nearcache stats
 * --from` and the demo print their figures through it, so what they show is
 * exactly what a Prometheus server would store.
 */
import { emptyNamespaceStats, emptyStats } from './stats.js'
import type { CacheStats, HistogramSnapshot, NamespaceStats } from './stats.js'
import { histogramQuantile } from './stats_histogram.js'
import { BadMessageError } from '../errors.js'

/** One sample of Prometheus text: name, labels, value. */
export interface Sample {
  name: string
  /** A null-prototype object: label names such as `__proto__` are plain keys. */
  labels: Record<string, string>
  value: number
}

/** Longest line parsePrometheus reads (nearcache's longest is a few hundred bytes). */
export const MAX_METRICS_LINE = 64 * 1024

const NAME = /[a-zA-Z_:][a-zA-Z0-9_:]*/y
const LABEL_NAME = /[a-zA-Z_][a-zA-Z0-9_]*/y
const VALUE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/
const TIMESTAMP = /^-?\d{1,20}$/

/**
 * Prometheus text exposition format 0.0.4 (comments and blank lines skipped;
 * timestamps ignored). The text is treated as hostile: the work is linear in its
 * length, and a line that is not a valid sample (bad name, labels, value, a
 * repeated label, a line over MAX_METRICS_LINE) is a BadMessageError (E_BAD_MESSAGE)
 * naming the line.
 */
export function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = []
  let no = 0
  for (let start = 0; start <= text.length; ) {
    let end = text.indexOf('\n', start)
    if (end < 0) end = text.length
    no++
    if (end - start > MAX_METRICS_LINE) throw bad(no, `is longer than ${MAX_METRICS_LINE} characters`)
    const line = text.slice(start, end).trim()
    start = end + 1
    if (line === '' || line.startsWith('#')) continue
    samples.push(parseSample(line, no))
  }
  return samples
}

function bad(no: number, why: string): BadMessageError {
  return new BadMessageError(`Metrics text line ${no} ${why}.`)
}

function parseSample(line: string, no: number): Sample {
  NAME.lastIndex = 0
  const name = NAME.exec(line)?.[0]
  if (name === undefined) throw bad(no, 'does not start with a metric name')
  let i = name.length
  const labels: Record<string, string> = Object.create(null) as Record<string, string>
  if (line[i] === '{') {
    i++
    for (;;) {
      while (line[i] === ' ' || line[i] === '\t') i++
      if (line[i] === '}') break
      LABEL_NAME.lastIndex = i
      const label = LABEL_NAME.exec(line)?.[0]
      if (label === undefined) throw bad(no, `has a bad label name at column ${i + 1}`)
      i += label.length
      const named = label.length > 40 ? `${label.slice(0, 40)}...` : label
      while (line[i] === ' ' || line[i] === '\t') i++
      if (line[i] !== '=') throw bad(no, `has no '=' after label ${named}`)
      i++
      while (line[i] === ' ' || line[i] === '\t') i++
      if (line[i] !== '"') throw bad(no, `has an unquoted value for label ${named}`)
      i++
      let value = ''
      let from = i
      for (;;) {
        const c = line[i]
        if (c === undefined) throw bad(no, `has an unterminated value for label ${named}`)
        if (c === '"') break
        if (c === '\\') {
          const e = line[i + 1]
          if (e !== '\\' && e !== '"' && e !== 'n') throw bad(no, `has a bad escape in label ${named}`)
          value += line.slice(from, i) + (e === 'n' ? '\n' : e)
          i += 2
          from = i
        } else i++
      }
      value += line.slice(from, i)
      i++
      if (Object.hasOwn(labels, label)) throw bad(no, `repeats label ${named}`)
      labels[label] = value
      while (line[i] === ' ' || line[i] === '\t') i++
      if (line[i] === ',') i++
      else if (line[i] !== '}') throw bad(no, `has no ',' or '}' after label ${named}`)
    }
    i++
  }
  const rest = line.slice(i)
  if (!/^[ \t]/.test(rest)) throw bad(no, 'has no value')
  const [v = '', timestamp, ...extra] = rest.trim().split(/[ \t]+/)
  if (extra.length > 0 || (timestamp !== undefined && !TIMESTAMP.test(timestamp))) throw bad(no, 'has text after the value and timestamp')
  let value: number
  if (v === '+Inf' || v === 'Inf') value = Infinity
  else if (v === '-Inf') value = -Infinity
  else if (v === 'NaN') value = NaN
  else if (VALUE.test(v)) value = Number(v)
  else throw bad(no, `has a value that is not a number (${JSON.stringify(v.slice(0, 40))})`)
  return { name, labels, value }
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
  // Namespace names come from the text: '__proto__' or 'constructor' must be plain keys.
  const ns = (name: string): NamespaceStats => {
    if (!Object.hasOwn(stats.namespaces, name)) {
      Object.defineProperty(stats.namespaces, name, { value: emptyNamespaceStats(), enumerable: true, writable: true, configurable: true })
    }
    return stats.namespaces[name] as NamespaceStats
  }
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
    else if (base === 'audit_dropped_records_total') stats.process.auditDropped += s.value
    else if (base === 'write_behind_dead_letter_bytes') stats.process.deadLetterBytes += s.value
    else if (base === 'values_written_total') stats.process.valuesWritten += s.value
    else if (base === 'value_bytes_total') {
      if (l.form === 'encoded') stats.process.valueBytes += s.value
      else if (l.form === 'stored') stats.process.storedBytes += s.value
    }
    else if (Object.hasOwn(NS_COUNTERS, base) && l.namespace !== undefined) NS_COUNTERS[base]!(ns(l.namespace), s.value, l)
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
