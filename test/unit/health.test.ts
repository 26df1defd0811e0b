import { describe, expect, it } from 'vitest'
import { healthReport } from '../../src/observability/health.js'
import type { CacheStats, TierStats } from '../../src/observability/stats.js'

function tier(o: Partial<TierStats> = {}): TierStats {
  const histogram = { bounds: [], counts: [0], count: 0, sumMs: 0 }
  return { enabled: true, hits: 0, misses: 0, sets: 0, deletes: 0, errors: 0, evictions: 0, entries: 0, bytes: 0, capacity: 0, latency: { p50: 0, p99: 0, samples: 0 }, histogram, ...o }
}
function stats(l1: Partial<TierStats> = {}, l2: Partial<TierStats> = {}, circuit: CacheStats['circuit'] = 'closed'): CacheStats {
  return { l1: tier(l1), l2: tier(l2), circuit, namespaces: {}, process: { invalidationsSent: 0, invalidationsReceived: 0, invalidationsRejected: 0, l1Flushes: 0, writeBehindDepth: 0, valuesWritten: 0, valueBytes: 0, storedBytes: 0, walCorruptions: 0, deadLetters: 0, deadLetterBytes: 0, auditDropped: 0 } }
}

describe('healthReport', () => {
  it('healthy figures: ok, no recommendations, fill as a ratio when l1MaxBytes is known', () => {
    const r = healthReport({
      stats: stats({ hits: 900, misses: 100, sets: 100, evictions: 5, entries: 100, bytes: 25_000 }, { hits: 80, misses: 20, latency: { p50: 0.4, p99: 2, samples: 100 } }),
      l2Ping: 0.3,
      l1MaxBytes: 100_000,
    })
    expect(r.status).toBe('ok')
    expect(r.recommendations).toEqual([])
    expect(r.l1).toEqual({ enabled: true, fill: 0.25, fillIsRatio: true, entries: 100, bytes: 25_000, evictionRate: 0.05 })
    expect(r.hitRatio).toBeCloseTo(0.98)
    expect(r.l2.hitRatio).toBeCloseTo(0.8)
    expect(r.l2.pingMs).toBe(0.3)
    expect(r.circuit).toBe('closed')
  })

  it('without l1MaxBytes, fill is the bytes held; no lookups: no hit ratio', () => {
    const r = healthReport({ stats: stats({ bytes: 1234, entries: 3 }) })
    expect(r.l1.fill).toBe(1234)
    expect(r.l1.fillIsRatio).toBe(false)
    expect(r.hitRatio).toBeUndefined()
    expect(r.l1.evictionRate).toBeUndefined()
    expect(r.status).toBe('ok')
  })

  it('low hit ratio with > 1000 lookups: raise ttl or l1.maxBytes, check key cardinality', () => {
    const r = healthReport({ stats: stats({ hits: 200, misses: 1800 }, { hits: 100, misses: 1700 }) })
    expect(r.hitRatio).toBeCloseTo(0.15)
    expect(r.status).toBe('degraded')
    expect(r.recommendations).toHaveLength(1)
    expect(r.recommendations[0]).toMatch(/Hit ratio is 15\.0% over 2000 lookups: raise ttl or l1\.maxBytes, check key cardinality/)
  })

  it('a low hit ratio over few lookups is not judged', () => {
    expect(healthReport({ stats: stats({ hits: 1, misses: 999 }) }).recommendations).toEqual([])
  })

  it('L2 only (no L1): the hit ratio is L2 hits over L2 lookups', () => {
    const r = healthReport({ stats: stats({ enabled: false }, { hits: 100, misses: 1900 }) })
    expect(r.hitRatio).toBeCloseTo(0.05)
    expect(r.recommendations[0]).toMatch(/Hit ratio is 5\.0%/)
  })

  it('L1 thrashing: evictions over 50% of sets', () => {
    const r = healthReport({ stats: stats({ hits: 10, misses: 10, sets: 1000, evictions: 700 }) })
    expect(r.l1.evictionRate).toBeCloseTo(0.7)
    expect(r.status).toBe('degraded')
    expect(r.recommendations).toEqual([expect.stringMatching(/L1 is thrashing: 700 evictions for 1000 sets \(70\.0%\).*l1\.maxBytes/)])
    // At or under half: fine.
    expect(healthReport({ stats: stats({ sets: 1000, evictions: 500 }) }).recommendations).toEqual([])
  })

  it('circuit open: down, Redis unreachable with what to check; half-open: degraded', () => {
    const open = healthReport({ stats: stats({}, {}, 'open') })
    expect(open.status).toBe('down')
    expect(open.circuit).toBe('open')
    expect(open.recommendations).toEqual([expect.stringMatching(/^Redis unreachable: .*Check that Redis is up and reachable/)])
    const half = healthReport({ stats: stats({}, {}, 'half-open') })
    expect(half.status).toBe('degraded')
    expect(half.recommendations[0]).toMatch(/recovering/)
    // No L2, no circuit to judge.
    expect(healthReport({ stats: stats({}, { enabled: false }, 'open') }).status).toBe('ok')
  })

  it('a Redis Cluster that is not ok: down', () => {
    const r = healthReport({ stats: stats(), clusterState: 'fail' })
    expect(r.status).toBe('down')
    expect(r.l2.clusterState).toBe('fail')
    expect(r.recommendations[0]).toMatch(/Redis Cluster state is 'fail'.*CLUSTER INFO/)
  })

  it('a health read Redis refuses (NOPERM, a timeout): down, with the cause', () => {
    const r = healthReport({ stats: stats(), l2PingError: "Redis refused get: the user lacks access to the key '__nc|ping|x'." })
    expect(r.status).toBe('down')
    expect(r.recommendations).toEqual([expect.stringMatching(/^Redis did not answer this namespace's health read: Redis refused get: .*__nc\|ping\|x.* Until it does/)])
  })

  it('high L2 p99 (> 50 ms) and a slow ping', () => {
    const r = healthReport({ stats: stats({}, { latency: { p50: 3, p99: 120, samples: 500 } }), l2Ping: 80 })
    expect(r.status).toBe('degraded')
    expect(r.recommendations).toEqual([
      expect.stringMatching(/^L2 p99 latency is 120 ms \(over 50 ms\): check Redis CPU and SLOWLOG/),
      expect.stringMatching(/^A Redis ping takes 80 ms/),
    ])
    expect(healthReport({ stats: stats({}, { latency: { p50: 3, p99: 50, samples: 500 } }) }).recommendations).toEqual([])
  })

  it('large values that compress poorly; large values from L1 averages; no data: nothing said', () => {
    const poor = healthReport({ stats: stats(), values: { count: 10, rawBytes: 10 * 200_000, storedBytes: 10 * 195_000 } })
    expect(poor.recommendations).toEqual([expect.stringMatching(/^Values average 195\.3 KiB and compress poorly \(stored 97\.5%/)])
    const big = healthReport({ stats: stats(), values: { count: 10, rawBytes: 10 * 200_000, storedBytes: 10 * 20_000 } })
    expect(big.recommendations).toEqual([expect.stringMatching(/^Values average 195\.3 KiB: large values/)])
    const l1 = healthReport({ stats: stats({ entries: 4, bytes: 4 * 100 * 1024 }) })
    expect(l1.recommendations).toEqual([expect.stringMatching(/^L1 entries average 100\.0 KiB/)])
    expect(healthReport({ stats: stats(), values: { count: 0, rawBytes: 0, storedBytes: 0 } }).recommendations).toEqual([])
    // Value size alone does not change the status.
    expect(l1.status).toBe('ok')
  })

  it('several problems at once: every recommendation, the worst status', () => {
    const r = healthReport({ stats: stats({ hits: 100, misses: 1900, sets: 1900, evictions: 1500 }, { latency: { p50: 1, p99: 90, samples: 10 } }, 'open') })
    expect(r.status).toBe('down')
    expect(r.recommendations).toHaveLength(4)
  })

  it('uses the namespaces\' lookups (not internal tier reads) for the hit ratio when there are any', () => {
    const s = stats({ hits: 5000, misses: 100 }, { hits: 50, misses: 50 })
    const h = { bounds: [], counts: [0], count: 0, sumMs: 0 }
    const ns = (l1: number, l2: number, miss: number) => ({
      hits: { l1, l2 }, misses: { l1: 0, l2: miss }, sets: 0, deletes: 0, expirations: 0, errors: 0, loads: 0, coalesced: 0,
      invalidations: { tags: 0, prefixes: 0 }, evictions: 0, latency: { l1: h, l2: h },
    })
    s.namespaces = { a: ns(300, 100, 1200), b: ns(100, 0, 300) }
    const r = healthReport({ stats: s })
    expect(r.lookups).toBe(2000)
    expect(r.hitRatio).toBeCloseTo(0.25)
    expect(r.status).toBe('degraded')
  })

  it('a Redis Cluster whose state is not ok is down', () => {
    const r = healthReport({ stats: stats(), clusterState: 'fail' })
    expect(r.status).toBe('down')
    expect(r.l2.clusterState).toBe('fail')
    expect(r.recommendations).toEqual([expect.stringMatching(/^Redis Cluster state is 'fail'/)])
    expect(healthReport({ stats: stats(), clusterState: 'ok' }).status).toBe('ok')
  })
})
