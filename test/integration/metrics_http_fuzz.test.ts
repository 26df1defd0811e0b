import { EventEmitter } from 'node:events'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventStream } from '../../src/observability/event_stream.js'
import { serveMetrics } from '../../src/observability/http_endpoint.js'
import type { MetricsServer } from '../../src/observability/http_endpoint.js'
import { emptyStats } from '../../src/observability/stats.js'
import { rawRequest } from '../helpers/raw_http.js'
import type { RawOutcome } from '../helpers/raw_http.js'

/**
 * 10,000 generated requests to a real serveMetrics server (with a token) over raw
 * sockets: methods, paths, query strings, Host and Authorization headers, header
 * sizes, bodies. Each ends in an HTTP response or a closed connection; the server
 * stays up; without the token, /metrics and /events never answer 2xx, and /health
 * tells nothing but its status.
 */

const TOKEN = 'Zk3v9Qw7Lp2Xr8Tn5Ym4Hd6Gc1Bs0Ja'
let server: MetricsServer
let port = 0
const emitter = new EventEmitter()
beforeAll(async () => {
  server = await serveMetrics({ prefix: 'app', stats: () => emptyStats(), events: (o) => eventStream(emitter, o) }, { token: TOKEN, allowedHosts: ['metrics.internal'] })
  port = Number(new URL(server.url).port)
})
afterAll(() => server.close())

const method = fc.oneof({ arbitrary: fc.constantFrom('GET', 'GET', 'GET', 'HEAD'), weight: 6 }, fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT', 'PATCH', 'get', 'G ET', 'GET\t', ''), fc.stringMatching(/^[A-Z]{1,10}$/))
const path = fc.oneof(
  { arbitrary: fc.constantFrom('/metrics', '/events', '/health'), weight: 6 },
  fc.constantFrom('/metrics', '/events', '/health', '/', '//metrics', '/metrics/', '/METRICS', '/events/../metrics', '/%6detrics', '/metrics%00', '*',
    'http://127.0.0.1/metrics', '/health?full=1', '/events?types=eviction', '/events?types=bogus', '/events?types=', '/metrics#x', '/\u00e9'),
  fc.stringMatching(/^\/[a-zA-Z0-9%._~?=&\/-]{0,40}$/),
  fc.integer({ min: 2000, max: 3000 }).map((n) => `/metrics?${'q'.repeat(n)}`),
)
const query = fc.oneof(fc.constant(''), fc.constantFrom('?types=eviction,invalidation', '?token=' + TOKEN, '?a=1&a=2', '?%zz', '?types=error&types=circuit'))
const host = fc.oneof(
  { arbitrary: fc.constant('LOOP'), weight: 6 },
  fc.constantFrom('LOOP', 'localhost:PORT', '[::1]:PORT', 'metrics.internal', 'evil.example', 'localhost', '127.0.0.1:1', '', ' ', 'a b', 'localhost:PORT, evil', 'localhost:PORT\r\nHost: evil'),
  fc.domain(),
)
const auth = fc.oneof(
  { arbitrary: fc.constantFrom(undefined, 'GOOD'), weight: 3 },
  fc.constantFrom(undefined, 'GOOD', `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Bearer  ${TOKEN.toLowerCase()}`, `Basic ${TOKEN}`, `${TOKEN}`, 'Bearer', 'Bearer ',
    `Bearer ${TOKEN} ${TOKEN}`, `Bearer\t${TOKEN}`, `Bearer ${'a'.repeat(5000)}`),
  fc.string({ maxLength: 60 }).map((s) => `Bearer ${s}`),
)
const extra = fc.oneof({ arbitrary: fc.constant([] as string[]), weight: 3 }, fc.array(fc.oneof(
  fc.constantFrom('Connection: close', 'Content-Length: 0', 'Content-Length: 5', 'Transfer-Encoding: chunked', 'Expect: 100-continue', 'Authorization: Basic x', 'X-Forwarded-Host: evil'),
  fc.integer({ min: 0, max: 10_000 }).map((n) => `X-Pad: ${'p'.repeat(n)}`),
  fc.tuple(fc.stringMatching(/^[A-Za-z-]{1,12}$/), fc.string({ maxLength: 30 })).map(([k, v]) => `${k}: ${v}`),
), { maxLength: 3 }))
const version = fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1x')

interface Generated { method: string; path: string; query: string; host: string | undefined; auth: string | undefined; extra: string[]; version: string; dupAuth: boolean }
const request = fc.record({ method, path, query, host: fc.option(host, { nil: undefined, freq: 10 }), auth, extra, version, dupAuth: fc.boolean() })

function bytes(g: Generated): { text: string; good: boolean } {
  const h = g.host?.replace('LOOP', `127.0.0.1:${port}`).replace('PORT', String(port))
  const a = g.auth === 'GOOD' ? `Bearer ${TOKEN}` : g.auth
  const lines = [`${g.method} ${g.path}${g.query} ${g.version}`]
  if (h !== undefined) lines.push(`Host: ${h}`)
  if (a !== undefined) lines.push(`Authorization: ${a}`)
  if (a !== undefined && g.dupAuth) lines.push('Authorization: Bearer nope')
  lines.push(...g.extra, 'Connection: close')
  return { text: `${lines.join('\r\n')}\r\n\r\n`, good: g.auth === 'GOOD' }
}

/** The route the server would see (what it serves on). */
function route(g: Generated): string {
  return g.path.split('?', 1)[0] as string
}

describe('HTTP requests to serveMetrics (fuzz)', () => {
  it('10,000 generated requests: a response or a closed connection; never 2xx on /metrics or /events without the token', async () => {
    const seen = { responses: 0, closed: 0, ok: 0, unauthorized: 0, misdirected: 0 }
    const bad: string[] = []
    const check = (g: Generated, sent: { text: string; good: boolean }, o: RawOutcome) => {
      if (o.kind === 'closed') return void seen.closed++
      seen.responses++
      if (o.status === 401) seen.unauthorized++
      if (o.status === 421) seen.misdirected++
      if (o.status >= 200 && o.status < 300) {
        seen.ok++
        const r = route(g)
        if (r !== '/health' && !sent.good) bad.push(`${o.status} without the token for ${JSON.stringify(sent.text.slice(0, 300))}`)
        if (r === '/health' && !sent.good && o.body !== '' && o.body !== '{"status":"ok"}\n') bad.push(`/health told more than its status: ${o.body.slice(0, 100)}`)
      }
    }
    const samples = fc.sample(request, { numRuns: 10_000, seed: 20261210 })
    // 16 connections at a time.
    let next = 0
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < samples.length) {
        const g = samples[next++] as Generated
        const sent = bytes(g)
        check(g, sent, await rawRequest(port, sent.text, g.method !== 'GET'))
      }
    }))
    expect(bad).toEqual([])
    expect(seen.responses + seen.closed).toBe(10_000)
    // The generators reach every gate.
    expect(seen.ok).toBeGreaterThan(200)
    expect(seen.unauthorized).toBeGreaterThan(200)
    expect(seen.misdirected).toBeGreaterThan(200)
    // Still up, and every /events stream the fuzz opened is gone.
    const r = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })
    expect(r.status).toBe(200)
    const deadline = Date.now() + 10_000
    while (emitter.listenerCount('eviction') > 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20))
    expect(emitter.listenerCount('eviction')).toBe(0)
  }, 120_000)

  it('500 more as a fast-check property, which would shrink a failure to its smallest request', async () => {
    await fc.assert(
      fc.asyncProperty(request, async (g) => {
        const sent = bytes(g)
        const o = await rawRequest(port, sent.text, g.method !== 'GET')
        if (o.kind === 'response' && o.status < 300 && o.status >= 200 && route(g) !== '/health') expect(sent.good).toBe(true)
      }),
      { numRuns: 500 },
    )
  }, 60_000)
})
