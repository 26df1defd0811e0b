/**
 * A small node:http server exposing a cache's metrics and health:
 *   GET /metrics  Prometheus text format 0.0.4
 *   GET /health   JSON { status, circuit, l1: { entries, bytes }, l2: { enabled } }
 * Anything else is 404 (405 for another method on those two paths).
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { CacheStats } from '../stats.js'
import { renderPrometheus } from './prometheus.js'
import type { StatsSource } from './prometheus.js'

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

export interface ServeMetricsOptions {
  /** 0 (the default) picks a free port; read it from `url`. */
  port?: number
  /** Defaults to loopback only; use '0.0.0.0' or '::' to expose it. */
  host?: string
}

export interface MetricsServer {
  /** `http://host:port` (no trailing slash). */
  url: string
  close(): Promise<void>
}

export type HealthStatus = 'ok' | 'degraded' | 'down'

export interface HealthReport {
  /** 'down' while the L2 circuit is open, 'degraded' while it is half-open (probing), else 'ok'. */
  status: HealthStatus
  circuit: CacheStats['circuit']
  l1: { entries: number; bytes: number }
  l2: { enabled: boolean }
}

export function healthOf(stats: CacheStats): HealthReport {
  const status: HealthStatus = stats.circuit === 'open' ? 'down' : stats.circuit === 'half-open' ? 'degraded' : 'ok'
  return { status, circuit: stats.circuit, l1: { entries: stats.l1.entries, bytes: stats.l1.bytes }, l2: { enabled: stats.l2.enabled } }
}

/**
 * Starts the server and resolves once it listens. `/health` answers 200 for 'ok'
 * and 'degraded' and 503 for 'down', so a load balancer can act on the code alone.
 */
export function serveMetrics(cache: StatsSource, options: ServeMetricsOptions = {}): Promise<MetricsServer> {
  const { port = 0, host = '127.0.0.1' } = options
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0]
    const known = path === '/metrics' || path === '/health'
    if (!known) return send(res, 404, 'text/plain; charset=utf-8', 'Not found\n')
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD')
      return send(res, 405, 'text/plain; charset=utf-8', 'Method not allowed\n')
    }
    let stats: CacheStats
    try {
      stats = cache.stats()
    } catch (err) {
      return send(res, 500, 'text/plain; charset=utf-8', `stats() failed: ${err instanceof Error ? err.message : String(err)}\n`)
    }
    if (path === '/metrics') return send(res, 200, PROMETHEUS_CONTENT_TYPE, renderPrometheus(stats, { namespace: cache.prefix }), req.method === 'HEAD')
    const health = healthOf(stats)
    return send(res, health.status === 'down' ? 503 : 200, 'application/json; charset=utf-8', JSON.stringify(health) + '\n', req.method === 'HEAD')
  })

  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      const addr = server.address() as AddressInfo
      const h = addr.family === 'IPv6' || addr.address.includes(':') ? `[${addr.address}]` : addr.address
      let closing: Promise<void> | undefined
      resolve({
        url: `http://${h}:${addr.port}`,
        // Idempotent: later calls get the first call's promise.
        close: () =>
          (closing ??= new Promise<void>((done, fail) => {
            server.close((err) => (err ? fail(err) : done()))
            // Keep-alive connections would hold close() open until they time out.
            server.closeAllConnections()
          })),
      })
    })
  })
}

function send(res: import('node:http').ServerResponse, code: number, type: string, body: string, head = false): void {
  res.writeHead(code, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' })
  res.end(head ? undefined : body)
}
