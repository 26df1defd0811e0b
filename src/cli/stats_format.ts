/**
 * The plain-text view of a CacheStats (usually rebuilt from /metrics text): a
 * tier table, a namespace table, the process figures, and the health check.
 * Shared by `nearcache stats --from` and the demo.
 */
import type { HealthReport } from '../observability/health.js'
import type { CacheStats, HistogramSnapshot } from '../observability/stats.js'
import { histogramQuantile } from '../observability/stats_histogram.js'
import { table } from './output.js'

const ratio = (hits: number, lookups: number) => (lookups > 0 ? `${((hits / lookups) * 100).toFixed(1)}%` : '-')

function ms(v: number | undefined): string {
  if (v === undefined) return '-'
  return v < 1 ? `${(v * 1000).toFixed(1)} µs` : `${v.toFixed(2)} ms`
}

/** Merges two histograms with the same bounds (a namespace's L1 and L2 gets). */
function merged(a: HistogramSnapshot, b: HistogramSnapshot): HistogramSnapshot {
  if (a.count === 0) return b
  if (b.count === 0) return a
  return { bounds: a.bounds, counts: a.counts.map((c, i) => c + (b.counts[i] ?? 0)), count: a.count + b.count, sumMs: a.sumMs + b.sumMs }
}

export function formatCacheStats(s: CacheStats, health?: HealthReport): string {
  const lines: string[] = []
  lines.push(`Circuit     ${s.circuit}`)
  const l1Fill = s.l1.capacity > 0 ? ` of ${s.l1.capacity} (${((s.l1.bytes / s.l1.capacity) * 100).toFixed(1)}%)` : ''
  if (s.l1.enabled) lines.push(`L1          ${s.l1.entries} entries, ${s.l1.bytes} bytes${l1Fill}`)
  const tiers = [['TIER', 'HITS', 'MISSES', 'HIT RATIO', 'SETS', 'DELETES', 'ERRORS', 'EVICTIONS', 'P50', 'P99']]
  for (const name of ['l1', 'l2'] as const) {
    const t = s[name]
    if (!t.enabled) continue
    tiers.push([
      name,
      String(t.hits),
      String(t.misses),
      ratio(t.hits, t.hits + t.misses),
      String(t.sets),
      String(t.deletes),
      String(t.errors),
      String(t.evictions),
      ms(histogramQuantile(t.histogram, 0.5)),
      ms(histogramQuantile(t.histogram, 0.99)),
    ])
  }
  lines.push('Tiers (all namespaces, internal reads included)', table(tiers))
  const names = Object.keys(s.namespaces).sort()
  if (names.length > 0) {
    const rows = [['NAMESPACE', 'L1 HITS', 'L2 HITS', 'MISSES', 'HIT RATIO', 'SETS', 'DELETES', 'EXPIRED', 'EVICTED', 'LOADS', 'COALESCED', 'LOOKUP P50', 'LOOKUP P99']]
    for (const name of names) {
      const n = s.namespaces[name]!
      const hits = n.hits.l1 + n.hits.l2
      const misses = n.misses.l1 + n.misses.l2
      const h = merged(n.latency.l1, n.latency.l2)
      rows.push([
        name,
        String(n.hits.l1),
        String(n.hits.l2),
        String(misses),
        ratio(hits, hits + misses),
        String(n.sets),
        String(n.deletes),
        String(n.expirations),
        String(n.evictions),
        String(n.loads),
        String(n.coalesced),
        ms(histogramQuantile(h, 0.5)),
        ms(histogramQuantile(h, 0.99)),
      ])
    }
    lines.push('Namespaces', table(rows))
  }
  const p = s.process
  lines.push(`Invalidations sent ${p.invalidationsSent}, received ${p.invalidationsReceived}, rejected ${p.invalidationsRejected}, L1 flushes ${p.l1Flushes}`)
  const dead = p.deadLetters > 0 || p.walCorruptions > 0 ? `, ${p.deadLetters} dead letters (${p.deadLetterBytes} bytes), ${p.walCorruptions} damaged log records` : ''
  lines.push(`Write-behind  ${p.writeBehindDepth} queued${dead}`)
  if (p.valuesWritten > 0) {
    const avg = p.valueBytes / p.valuesWritten / 1024
    lines.push(`Values      ${p.valuesWritten} written, ${avg.toFixed(1)} KiB on average encoded, stored at ${((p.storedBytes / Math.max(1, p.valueBytes)) * 100).toFixed(1)}% of that`)
  }
  if (health) {
    lines.push(`Health      ${health.status}${health.hitRatio !== undefined ? `, overall hit ratio ${ratio(health.hitRatio, 1)} over ${health.lookups} lookups` : ''}`)
    for (const r of health.recommendations) lines.push(`  - ${r}`)
  }
  return lines.join('\n')
}
