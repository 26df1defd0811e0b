import { EventEmitter } from 'node:events'
import { afterEach, describe, expect, it } from 'vitest'
import { eventStream } from '../../src/observability/event_stream.js'
import { serveMetrics } from '../../src/observability/http_endpoint.js'
import type { MetricsServer, MetricsSource } from '../../src/observability/http_endpoint.js'
import { emptyStats } from '../../src/observability/stats.js'
import { CacheError } from '../../src/index.js'
import { rawRequest } from '../helpers/raw_http.js'

/**
 * serveMetrics as an attacker meets it: the token, the Host check, the cap on
 * /events streams, and the bounds on requests. Real sockets on loopback.
 */

const TOKEN = 'f3b1c2d4e5a60718293a4b5c6d7e8f90'
const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function source(): { source: MetricsSource; emitter: EventEmitter } {
  const emitter = new EventEmitter()
  return { source: { prefix: 'app', stats: () => emptyStats(), events: (o) => eventStream(emitter, o) }, emitter }
}

async function serve(options: Parameters<typeof serveMetrics>[1] = {}): Promise<MetricsServer & { port: number; emitter: EventEmitter }> {
  const s = source()
  const server = await serveMetrics(s.source, options)
  cleanups.push(() => server.close())
  return Object.assign(server, { port: Number(new URL(server.url).port), emitter: s.emitter })
}

const get = (url: string, headers: Record<string, string> = {}) => fetch(url, { headers })

describe('serveMetrics token', () => {
  it('/metrics and /events answer 401 with WWW-Authenticate: Bearer without the token or with a wrong one', async () => {
    const s = await serve({ token: TOKEN })
    for (const path of ['/metrics', '/events']) {
      for (const auth of [undefined, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(1)}`, `Basic ${TOKEN}`, TOKEN, 'Bearer ']) {
        const r = await get(`${s.url}${path}`, auth === undefined ? {} : { authorization: auth })
        expect(r.status, `${path} with ${auth}`).toBe(401)
        expect(r.headers.get('www-authenticate')).toMatch(/^Bearer realm="nearcache"/)
        await r.text()
      }
    }
    const m = await get(`${s.url}/metrics`, { authorization: `Bearer ${TOKEN}` })
    expect(m.status).toBe(200)
    expect(await m.text()).toMatch(/^# HELP nearcache_/)
    // The scheme is case-insensitive (RFC 7235).
    expect((await get(`${s.url}/metrics`, { authorization: `bearer ${TOKEN}` })).status).toBe(200)
    const ac = new AbortController()
    const e = await fetch(`${s.url}/events`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: ac.signal })
    expect(e.status).toBe(200)
    ac.abort()
  })

  it('/health without the token answers only its code and { status }; with it, the full report', async () => {
    const s = await serve({ token: TOKEN })
    const bare = await get(`${s.url}/health`)
    expect(bare.status).toBe(200)
    expect(await bare.json()).toEqual({ status: 'ok' })
    const full = await get(`${s.url}/health`, { authorization: `Bearer ${TOKEN}` })
    expect(await full.json()).toMatchObject({ status: 'ok', circuit: 'closed', recommendations: [] })
  })

  it('binding off loopback without a token is E_INVALID_OPTION, unless allowUnauthenticated; a weak token is refused', async () => {
    for (const host of ['0.0.0.0', '::']) {
      const err = await serveMetrics(source().source, { host }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(CacheError)
      expect((err as CacheError).code).toBe('E_INVALID_OPTION')
      expect((err as Error).message).toMatch(/not loopback.*without a token/)
    }
    const open = await serve({ host: '0.0.0.0', allowUnauthenticated: true })
    expect((await get(`http://127.0.0.1:${open.port}/metrics`)).status).toBe(200)
    const withToken = await serve({ host: '0.0.0.0', token: TOKEN })
    expect((await get(`http://127.0.0.1:${withToken.port}/metrics`)).status).toBe(401)
    for (const token of ['short', 'has a space in it, sixteen+', 42, '']) {
      const e = await serveMetrics(source().source, { token: token as string }).catch((x: unknown) => x)
      expect((e as CacheError).code, String(token)).toBe('E_INVALID_OPTION')
    }
    expect(((await serveMetrics(source().source, { maxEventStreams: -1 }).catch((x: unknown) => x)) as CacheError).code).toBe('E_INVALID_OPTION')
  })
})

describe('serveMetrics /events cap', () => {
  it('past maxEventStreams (default 8) a stream gets 503 with Retry-After; a closed one frees its place', async () => {
    const s = await serve()
    const open: AbortController[] = []
    for (let i = 0; i < 8; i++) {
      const ac = new AbortController()
      const r = await fetch(`${s.url}/events`, { signal: ac.signal })
      expect(r.status).toBe(200)
      open.push(ac)
    }
    expect(s.emitter.listenerCount('eviction')).toBe(8)
    const ninth = await fetch(`${s.url}/events`)
    expect(ninth.status).toBe(503)
    expect(ninth.headers.get('retry-after')).toBe('5')
    await ninth.text()
    expect(s.emitter.listenerCount('eviction')).toBe(8)
    open.pop()!.abort()
    const deadline = Date.now() + 10_000
    while (s.emitter.listenerCount('eviction') > 7 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    const ac = new AbortController()
    expect((await fetch(`${s.url}/events`, { signal: ac.signal })).status).toBe(200)
    ac.abort()
    for (const a of open) a.abort()
    const small = await serve({ maxEventStreams: 1 })
    const a1 = new AbortController()
    expect((await fetch(`${small.url}/events`, { signal: a1.signal })).status).toBe(200)
    expect((await fetch(`${small.url}/events`)).status).toBe(503)
    a1.abort()
  })
})

describe('serveMetrics Host check and request bounds', () => {
  const req = (lines: string[]) => `${lines.join('\r\n')}\r\n\r\n`

  it('on loopback, only Host localhost / 127.0.0.1 / [::1] with its port, or allowedHosts, are served (421 otherwise)', async () => {
    const s = await serve({ allowedHosts: ['metrics.internal'] })
    const status = async (host: string | undefined) => {
      const o = await rawRequest(s.port, req(['GET /metrics HTTP/1.1', ...(host === undefined ? [] : [`Host: ${host}`]), 'Connection: close']), false)
      return o.kind === 'response' ? o.status : 'closed'
    }
    for (const ok of [`localhost:${s.port}`, `127.0.0.1:${s.port}`, `[::1]:${s.port}`, `LOCALHOST:${s.port}`, 'metrics.internal', 'metrics.internal:443']) {
      expect(await status(ok), ok).toBe(200)
    }
    for (const bad of ['evil.example', `evil.example:${s.port}`, 'localhost', `localhost:${s.port + 1}`, `127.0.0.2:${s.port}`, 'localhost:99999', 'a b', `localhost.:${s.port}`]) {
      expect(await status(bad), bad).toBe(421)
    }
    // HTTP/1.1 without Host: Node itself answers 400.
    expect(await status(undefined)).toBe(400)
  })

  it('methods other than GET/HEAD are 405, a long target 414, big headers 431, a body 400', async () => {
    const s = await serve()
    const host = `Host: 127.0.0.1:${s.port}`
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) {
      const o = await rawRequest(s.port, req([`${method} /metrics HTTP/1.1`, host, 'Content-Length: 0', 'Connection: close']), false)
      expect(o, method).toMatchObject({ kind: 'response', status: 405, headers: { allow: 'GET, HEAD' } })
    }
    expect(await rawRequest(s.port, req([`GET /metrics?${'x'.repeat(3000)} HTTP/1.1`, host, 'Connection: close']), false)).toMatchObject({ status: 414 })
    expect(await rawRequest(s.port, req(['GET /metrics HTTP/1.1', host, `X-Big: ${'y'.repeat(9000)}`]), false)).toMatchObject({ status: 431 })
    expect(await rawRequest(s.port, req(['GET /metrics HTTP/1.1', host, 'Content-Length: 5']) + 'hello', false)).toMatchObject({ status: 400, headers: { connection: 'close' } })
    expect(await rawRequest(s.port, req(['GET /metrics HTTP/1.1', host, 'Connection: close']), false)).toMatchObject({ status: 200 })
  })
})
