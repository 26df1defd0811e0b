import type { SharedState } from '../cache/context.js'
import { healthReport } from './health.js'
import type { HealthReport } from './health.js'

/**
 * `cache.health()`: measures what stats cannot tell — an L2 round trip (skipped
 * while the circuit is open) and, on a Cluster, CLUSTER INFO's state — and hands
 * them with the stats to `healthReport`, which judges.
 */
export async function probeHealth(s: SharedState, pingKey: string): Promise<HealthReport> {
  let l2Ping: number | undefined
  let l2PingError: string | undefined
  let clusterState: string | undefined
  const stats = s.stats()
  if (stats.l2.enabled && stats.circuit !== 'open') {
    const t = performance.now()
    const ok = await s.tier.get(pingKey, true).then(
      () => true,
      (err: unknown) => {
        l2PingError = err instanceof Error ? err.message : String(err)
        return false
      },
    )
    if (ok) l2Ping = Math.round((performance.now() - t) * 1000) / 1000
    clusterState = await s.clusterState?.().catch(() => 'unreachable')
  }
  const after = s.stats()
  return healthReport({
    stats: after,
    l2Ping,
    ...(l2PingError !== undefined ? { l2PingError } : {}),
    ...(clusterState !== undefined ? { clusterState } : {}),
    ...(after.l1.capacity > 0 ? { l1MaxBytes: after.l1.capacity } : {}),
  })
}
