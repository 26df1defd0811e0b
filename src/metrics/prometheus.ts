/**
 * Prometheus exposition of `cache.stats()`: a text renderer (format 0.0.4) and an
 * adapter for a user's prom-client Registry. Both read the public stats only.
 *
 * prom-client is an optional peer: this module imports its types only, and the
 * caller hands in the module (`import * as client from 'prom-client'`), so nearcache
 * has no runtime dependency on it.
 */
import type * as PromClient from 'prom-client'
import type { CacheStats, TierStats } from '../stats.js'

/** What the exporters need from a cache: its stats and its namespace (a NearCache fits). */
export interface StatsSource {
  stats(): CacheStats
  readonly prefix: string
}

export type MetricLabels = { namespace: string }

type Tier = 'l1' | 'l2'
type CounterField = 'hits' | 'misses' | 'sets' | 'deletes' | 'errors' | 'evictions'

const TIERS: readonly Tier[] = ['l1', 'l2']

const COUNTERS: readonly { field: CounterField; name: string; help: string }[] = [
  { field: 'hits', name: 'nearcache_hits_total', help: 'Lookups answered by the tier.' },
  { field: 'misses', name: 'nearcache_misses_total', help: 'Lookups the tier could not answer.' },
  { field: 'sets', name: 'nearcache_sets_total', help: 'Entries written to the tier.' },
  { field: 'deletes', name: 'nearcache_deletes_total', help: 'Entries removed from the tier.' },
  { field: 'errors', name: 'nearcache_errors_total', help: 'Errors seen in the tier (corrupt entries, failed commands).' },
  { field: 'evictions', name: 'nearcache_evictions_total', help: 'Entries the tier evicted to make room.' },
]

const ENABLED = { name: 'nearcache_tier_enabled', help: 'Whether the tier is configured (1) or not (0).' }
const ENTRIES = { name: 'nearcache_entries', help: 'Live entries held by the shared L1 (values and negative entries), over all threads.' }
const BYTES = { name: 'nearcache_bytes', help: 'Bytes held by the shared L1, over all threads.' }
const LATENCY = {
  name: 'nearcache_latency_seconds',
  help: "Round-trip latency quantiles over this thread's most recent 4096 samples (L1: one lookup in 16 is timed).",
}
const CIRCUIT = { name: 'nearcache_circuit_state', help: 'L2 circuit breaker: 0 closed, 1 open, 2 half-open.' }

/** The numeric value of `stats().circuit` in `nearcache_circuit_state`. */
export const CIRCUIT_STATE_VALUE: Readonly<Record<CacheStats['circuit'], number>> = { closed: 0, open: 1, 'half-open': 2 }

const QUANTILES: readonly { q: string; pick: (l: TierStats['latency']) => number }[] = [
  { q: '0.5', pick: (l) => l.p50 },
  { q: '0.99', pick: (l) => l.p99 },
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

/**
 * Renders stats in the Prometheus text exposition format 0.0.4 (serve it as
 * `text/plain; version=0.0.4; charset=utf-8`). Every family has `# HELP` and
 * `# TYPE`; both tiers are always present (a disabled tier reports zeros and
 * `nearcache_tier_enabled 0`), so series do not appear and vanish with config.
 */
export function renderPrometheus(stats: CacheStats, labels: MetricLabels): string {
  const ns = String(labels.namespace)
  const out: string[] = []
  const family = (name: string, help: string, type: 'counter' | 'gauge') => {
    out.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`)
  }
  const sample = (name: string, l: Record<string, string>, v: number) => out.push(`${name}${labelSet(l)} ${formatValue(v)}`)

  for (const c of COUNTERS) {
    family(c.name, c.help, 'counter')
    for (const tier of TIERS) sample(c.name, { tier, namespace: ns }, stats[tier][c.field])
  }
  family(ENABLED.name, ENABLED.help, 'gauge')
  for (const tier of TIERS) sample(ENABLED.name, { tier, namespace: ns }, stats[tier].enabled ? 1 : 0)
  family(ENTRIES.name, ENTRIES.help, 'gauge')
  sample(ENTRIES.name, { tier: 'l1', namespace: ns }, stats.l1.entries)
  family(BYTES.name, BYTES.help, 'gauge')
  sample(BYTES.name, { tier: 'l1', namespace: ns }, stats.l1.bytes)
  // Summary-style quantiles exposed as a gauge: nearcache keeps no running sum/count.
  family(LATENCY.name, LATENCY.help, 'gauge')
  for (const tier of TIERS) {
    for (const { q, pick } of QUANTILES) sample(LATENCY.name, { tier, namespace: ns, quantile: q }, pick(stats[tier].latency) / 1000)
  }
  family(CIRCUIT.name, CIRCUIT.help, 'gauge')
  sample(CIRCUIT.name, { namespace: ns }, CIRCUIT_STATE_VALUE[stats.circuit])
  return out.join('\n') + '\n'
}

// ── prom-client adapter ────────────────────────────────────────────────────

/** The parts of the prom-client module the adapter uses (pass `import * as client from 'prom-client'`). */
export type PromClientModule = Pick<typeof PromClient, 'Counter' | 'Gauge'>

export interface PromClientRegistration {
  /** Stops reporting this cache; the metrics leave the registry with the last registered cache. */
  unregister(): void
}

/** Per registry: the caches reported and the metric names registered for them. */
const sourcesByRegistry = new WeakMap<PromClient.Registry, { sources: Set<StatsSource>; names: string[] }>()

/**
 * Registers collect-on-scrape metrics mirroring `renderPrometheus` in a prom-client
 * Registry: each scrape (`registry.metrics()`) reads `stats()` of every cache
 * registered with that registry (one series set per namespace). Several caches may
 * share a registry; registering one twice is a no-op.
 *
 * ```ts
 * import * as client from 'prom-client'
 * registerPromClient(cache, client.register, client)
 * ```
 */
export function registerPromClient(cache: StatsSource, registry: PromClient.Registry, client: PromClientModule): PromClientRegistration {
  let entry = sourcesByRegistry.get(registry)
  if (!entry) {
    entry = { sources: new Set(), names: [] }
    sourcesByRegistry.set(registry, entry)
    const { sources, names } = entry
    const snapshot = () => [...sources].map((s) => ({ ns: s.prefix, stats: s.stats() }))
    // One snapshot per scrape would be ideal, but prom-client collects per metric;
    // stats() is cheap (a sum over a small SharedArrayBuffer and two sorts of ≤4096).
    for (const c of COUNTERS) {
      new client.Counter({
        name: c.name,
        help: c.help,
        labelNames: ['tier', 'namespace'] as const,
        registers: [registry],
        collect() {
          this.reset()
          for (const { ns, stats } of snapshot()) for (const tier of TIERS) this.inc({ tier, namespace: ns }, stats[tier][c.field])
        },
      })
      names.push(c.name)
    }
    const gauge = (spec: { name: string; help: string }, labelNames: string[], fill: (g: PromClient.Gauge, ns: string, s: CacheStats) => void) => {
      new client.Gauge({
        name: spec.name,
        help: spec.help,
        labelNames,
        registers: [registry],
        collect() {
          this.reset()
          for (const { ns, stats } of snapshot()) fill(this, ns, stats)
        },
      })
      names.push(spec.name)
    }
    gauge(ENABLED, ['tier', 'namespace'], (g, ns, s) => {
      for (const tier of TIERS) g.set({ tier, namespace: ns }, s[tier].enabled ? 1 : 0)
    })
    gauge(ENTRIES, ['tier', 'namespace'], (g, ns, s) => g.set({ tier: 'l1', namespace: ns }, s.l1.entries))
    gauge(BYTES, ['tier', 'namespace'], (g, ns, s) => g.set({ tier: 'l1', namespace: ns }, s.l1.bytes))
    gauge(LATENCY, ['tier', 'namespace', 'quantile'], (g, ns, s) => {
      for (const tier of TIERS) for (const { q, pick } of QUANTILES) g.set({ tier, namespace: ns, quantile: q }, pick(s[tier].latency) / 1000)
    })
    gauge(CIRCUIT, ['namespace'], (g, ns, s) => g.set({ namespace: ns }, CIRCUIT_STATE_VALUE[s.circuit]))
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
