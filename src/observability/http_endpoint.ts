/**
 * A small node:http server exposing a cache's metrics and health:
 *   GET /metrics  Prometheus text format 0.0.4
 *   GET /health   JSON HealthReport (the source's health() when it has one, else the check over its stats); 503 when 'down'
 *   GET /events   the cache's events as NDJSON, one eventToJSON object per line,
 *                 until the client goes away (?types=eviction,invalidation to choose)
 * Anything else is 404 (405 for a method other than GET and HEAD; /events is 404
 * when the source has no events()).
 *
 * With a `token`, /metrics and /events answer 401 without `Authorization: Bearer
 * <token>`, and /health gives only `{ status }` (its code stays 200/503).
 * The checks themselves live in ./http_guard.ts.
 */
import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { eventToJSON, validateEventTypes } from './event_stream.js'
import type { CacheEvent, CacheEventType } from './event_stream.js'
import type { CacheStats } from './stats.js'
import { renderPrometheus } from './prometheus.js'
import type { StatsSource } from './prometheus.js'
import { healthReport } from './health.js'
import type { HealthReport } from './health.js'
import { authorized, hostAllowed, resolveGuard, HEADERS_TIMEOUT_MS, MAX_CONNECTIONS, MAX_HEADER_BYTES, MAX_URL_LENGTH, REQUEST_TIMEOUT_MS } from './http_guard.js'
import type { Guard } from './http_guard.js'

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
export const EVENTS_CONTENT_TYPE = 'application/x-ndjson'

/** Options of a source's events(): what /events passes (`types` from ?types=). */
export interface EventsOptions {
  maxBuffer?: number
  types?: readonly CacheEventType[]
}

/** An open event subscription: iterated by /events, ended with return(). */
export type EventsIterable = AsyncIterable<CacheEvent> & { return(): Promise<unknown> }

/**
 * What serveMetrics serves: stats() for /metrics and /health, and optionally
 * events() for /events (a NearCache has both).
 */
export type MetricsSource = StatsSource & {
  events?(options?: EventsOptions): EventsIterable
  /** The live check (a NearCache has it): /health then includes the Redis ping and Cluster state. */
  health?(): Promise<HealthReport>
}

/** Longest /health waits for the source's live check before answering from the figures alone. */
const HEALTH_TIMEOUT_MS = 3000

export interface ServeMetricsOptions {
  /** 0 (the default) picks a free port; read it from `url`. */
  port?: number
  /**
   * Defaults to loopback only. Another address ('0.0.0.0', '::', a LAN address)
   * needs a `token`, or `allowUnauthenticated: true`.
   */
  host?: string
  /**
   * Bearer token (16 to 4096 visible ASCII characters, e.g. `openssl rand -hex 32`).
   * When set, /metrics and /events need `Authorization: Bearer <token>` (else 401
   * with `WWW-Authenticate: Bearer`), and /health without it answers only `{ status }`.
   * @default undefined (no authentication; only allowed on loopback unless allowUnauthenticated)
   */
  token?: string
  /**
   * Lets the endpoint listen on a non-loopback address without a token. /metrics
   * carries namespace names and /events full key names: only for trusted networks.
   * @default false
   */
  allowUnauthenticated?: boolean
  /**
   * Most /events streams open at once; the next one gets 503 with `Retry-After`.
   * @default 8
   */
  maxEventStreams?: number
  /**
   * Host names (without port) accepted in the `Host` header besides `localhost`,
   * `127.0.0.1` and `[::1]` with the server's port; e.g. the name a reverse proxy
   * forwards. On loopback (and off it when given) any other Host is 421, which
   * stops DNS-rebinding pages from reading the endpoint through a browser.
   * @default []
   */
  allowedHosts?: string[]
}

export interface MetricsServer {
  /** `http://host:port` (no trailing slash). */
  url: string
  close(): Promise<void>
}

/**
 * Starts the server and resolves once it listens. `/health` answers 200 for 'ok'
 * and 'degraded' and 503 for 'down', so a load balancer can act on the code alone.
 */
export function serveMetrics(cache: MetricsSource, options: ServeMetricsOptions = {}): Promise<MetricsServer> {
  const { port = 0, host = '127.0.0.1' } = options
  let guard: Guard
  try {
    guard = resolveGuard({ ...options, host })
  } catch (err) {
    return Promise.reject(err)
  }
  /** Open /events subscriptions, returned when the server closes. */
  const streams = new Set<EventsIterable>()
  let listening = 0
  const server = createServer(
    { maxHeaderSize: MAX_HEADER_BYTES, headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS },
    (req, res) => {
      const refusal = refuse(guard, req, listening)
      if (refusal) return send(res, refusal.code, TEXT, refusal.body, false, refusal.headers)
      const path = (req.url ?? '/').split('?', 1)[0]
      const known = path === '/metrics' || path === '/health' || path === '/events'
      if (!known) return send(res, 404, TEXT, 'Not found\n')
      const authed = authorized(guard, req)
      if (path !== '/health' && !authed) {
        const wrong = req.headers.authorization !== undefined ? ', error="invalid_token"' : ''
        return send(res, 401, TEXT, 'Unauthorized: send Authorization: Bearer <token>\n', false, { 'WWW-Authenticate': `Bearer realm="nearcache"${wrong}` })
      }
      if (path === '/events') {
        if (streams.size >= guard.maxEventStreams) {
          return send(res, 503, TEXT, `Too many /events streams (at most ${guard.maxEventStreams})\n`, false, { 'Retry-After': '5' })
        }
        return serveEvents(cache, req, res, streams)
      }
      let stats: CacheStats
      try {
        stats = cache.stats()
      } catch (err) {
        return send(res, 500, TEXT, `stats() failed: ${err instanceof Error ? err.message : String(err)}\n`)
      }
      if (path === '/metrics') return send(res, 200, PROMETHEUS_CONTENT_TYPE, renderPrometheus(stats), req.method === 'HEAD')
      void liveHealth(cache, stats).then((health) => {
        // Without the token, a load balancer still gets the code and the status, nothing else.
        const body = authed ? health : { status: health.status }
        send(res, health.status === 'down' ? 503 : 200, 'application/json; charset=utf-8', JSON.stringify(body) + '\n', req.method === 'HEAD')
      })
    },
  )
  server.maxConnections = MAX_CONNECTIONS

  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      const addr = server.address() as AddressInfo
      listening = addr.port
      const h = addr.family === 'IPv6' || addr.address.includes(':') ? `[${addr.address}]` : addr.address
      let closing: Promise<void> | undefined
      resolve({
        url: `http://${h}:${addr.port}`,
        // Idempotent: later calls get the first call's promise.
        close: () =>
          (closing ??= new Promise<void>((done, fail) => {
            server.close((err) => (err ? fail(err) : done()))
            // Open /events streams never end by themselves: unsubscribe them.
            for (const s of streams) void s.return().catch(() => {})
            streams.clear()
            // Keep-alive connections (and /events responses) would hold close() open until they time out.
            server.closeAllConnections()
          })),
      })
    })
  })
}

/**
 * GET /events: subscribes through `cache.events()` and writes each event as one
 * JSON line, as it comes (chunked, no Content-Length). A slow client is waited
 * for (the subscription's bounded buffer drops the oldest meanwhile); a client
 * that goes away unsubscribes.
 */
function serveEvents(cache: MetricsSource, req: IncomingMessage, res: ServerResponse, streams: Set<EventsIterable>): void {
  if (typeof cache.events !== 'function') return send(res, 404, TEXT, 'Not found: this source has no events\n')
  let types: CacheEventType[] | undefined
  const query = new URLSearchParams((req.url ?? '').split('?').slice(1).join('?'))
  const asked = query.getAll('types').flatMap((v) => v.split(',')).map((t) => t.trim()).filter((t) => t !== '')
  if (query.has('types')) {
    try {
      types = validateEventTypes(asked)
    } catch (err) {
      return send(res, 400, 'text/plain; charset=utf-8', `${(err as Error).message}\n`)
    }
  }
  const headers = { 'Content-Type': EVENTS_CONTENT_TYPE, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' }
  if (req.method === 'HEAD') {
    res.writeHead(200, headers)
    return void res.end()
  }
  let stream: EventsIterable
  try {
    stream = cache.events(types ? { types } : {})
  } catch (err) {
    const bad = err instanceof RangeError
    return send(res, bad ? 400 : 500, 'text/plain; charset=utf-8', `events() failed: ${err instanceof Error ? err.message : String(err)}\n`)
  }
  streams.add(stream)
  let ended = false
  const end = () => {
    if (ended) return
    ended = true
    streams.delete(stream)
    void stream.return().catch(() => {})
  }
  // The client went away (or the server closed the connection): unsubscribe.
  res.once('close', end)
  res.writeHead(200, headers)
  // Headers now, so a client sees a live stream before the first event.
  res.flushHeaders()
  void (async () => {
    try {
      for await (const e of stream) {
        if (ended || res.destroyed) break
        if (!res.write(`${JSON.stringify(eventToJSON(e))}\n`)) await drained(res)
      }
    } catch {
      // A failing iterator or a broken connection ends this response only.
    } finally {
      end()
      if (!res.writableEnded && !res.destroyed) res.end()
    }
  })()
}

/** Resolves when `res` can take more, or has closed. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done)
      res.off('close', done)
      resolve()
    }
    res.once('drain', done)
    res.once('close', done)
  })
}

/**
 * The source's live check when it has one (answered within HEALTH_TIMEOUT_MS),
 * else the check over its figures alone. Either way a HealthReport: status,
 * circuit, L1 fill, hit ratio and recommendations.
 */
async function liveHealth(cache: MetricsSource, stats: CacheStats): Promise<HealthReport> {
  const fromStats = () => healthReport({ stats, ...(stats.l1.capacity > 0 ? { l1MaxBytes: stats.l1.capacity } : {}) })
  if (typeof cache.health !== 'function') return fromStats()
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), HEALTH_TIMEOUT_MS)))
  try {
    return (await Promise.race([cache.health().catch(() => undefined), timeout])) ?? fromStats()
  } finally {
    clearTimeout(timer)
  }
}

const TEXT = 'text/plain; charset=utf-8'

/**
 * Why the request is not served, before its path is even looked at: a Host that
 * is not this server (421), a method other than GET/HEAD (405), a long target
 * (414), a request body (400, and the connection closes so it is not read).
 */
function refuse(guard: Guard, req: IncomingMessage, port: number): { code: number; body: string; headers?: Record<string, string> } | undefined {
  if (!hostAllowed(guard, req, port)) return { code: 421, body: 'Misdirected request: unknown Host\n' }
  if (req.method !== 'GET' && req.method !== 'HEAD') return { code: 405, body: 'Method not allowed\n', headers: { Allow: 'GET, HEAD' } }
  if ((req.url ?? '').length > MAX_URL_LENGTH) return { code: 414, body: 'URI too long\n' }
  const length = req.headers['content-length']
  if ((length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined) {
    return { code: 400, body: 'A request body is not accepted\n', headers: { Connection: 'close' } }
  }
  return undefined
}

function send(res: ServerResponse, code: number, type: string, body: string, head = false, headers: Record<string, string> = {}): void {
  res.writeHead(code, { ...headers, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' })
  res.end(head ? undefined : body)
}
