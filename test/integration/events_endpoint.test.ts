import { EventEmitter } from 'node:events'
import { request } from 'node:http'
import type { ClientRequest, IncomingMessage } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { CACHE_EVENT_TYPES, eventStream } from '../../src/observability/event_stream.js'
import type { InvalidationNotice } from '../../src/observability/event_stream.js'
import { serveMetrics } from '../../src/observability/http_endpoint.js'
import type { MetricsServer, MetricsSource } from '../../src/observability/http_endpoint.js'
import { CacheError } from '../../src/index.js'

/**
 * GET /events of serveMetrics over a fake source: an EventEmitter standing in for
 * the cache, with events() answered by eventStream over it. Read with node's own
 * http client, line by line, as events are emitted.
 */

const cleanups: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function fakeSource(withEvents = true): { source: MetricsSource; emitter: EventEmitter } {
  const emitter = new EventEmitter()
  const source: MetricsSource = {
    prefix: 'app',
    stats: () => {
      throw new Error('/events must not need stats()')
    },
  }
  if (withEvents) source.events = (o) => eventStream(emitter, o)
  return { source, emitter }
}

async function serve(source: MetricsSource): Promise<MetricsServer> {
  const server = await serveMetrics(source)
  cleanups.push(() => server.close())
  return server
}

const listeners = (e: EventEmitter) => Object.fromEntries(CACHE_EVENT_TYPES.map((t) => [t, e.listenerCount(t)]))

async function until(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

interface Opened {
  req: ClientRequest
  res: IncomingMessage
  /** Parsed lines received so far. */
  lines: unknown[]
  /** Resolves once `n` lines have arrived. */
  waitLines(n: number): Promise<unknown[]>
  ended: Promise<void>
}

/** Opens `path`, answering once the response headers are in; the body is read line by line. */
function open(url: string, path: string, method = 'GET'): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method }, (res) => {
      const lines: unknown[] = []
      let rest = ''
      // Other answers are left for body() to read.
      if (res.statusCode === 200) {
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          rest += chunk
          let nl: number
          while ((nl = rest.indexOf('\n')) >= 0) {
            lines.push(JSON.parse(rest.slice(0, nl)))
            rest = rest.slice(nl + 1)
          }
        })
      }
      const ended = new Promise<void>((done) => {
        res.on('end', done)
        res.on('close', done)
        res.on('error', () => done())
      })
      resolve({
        req,
        res,
        lines,
        ended,
        async waitLines(n) {
          await until(`${n} lines (have ${lines.length})`, () => lines.length >= n)
          return lines.slice(0, n)
        },
      })
    })
    req.on('error', reject)
    req.end()
    cleanups.push(() => req.destroy())
  })
}

async function body(res: IncomingMessage): Promise<string> {
  let text = ''
  res.setEncoding('utf8')
  for await (const chunk of res) text += chunk as string
  return text
}

describe('GET /events', () => {
  it('streams every event type as NDJSON lines, as they are emitted', async () => {
    const { source, emitter } = fakeSource()
    const server = await serve(source)
    const o = await open(server.url, '/events')
    expect(o.res.statusCode).toBe(200)
    expect(o.res.headers['content-type']).toBe('application/x-ndjson')
    expect(o.res.headers['cache-control']).toBe('no-store')
    expect(o.res.headers['content-length']).toBeUndefined()
    expect(o.res.headers['transfer-encoding']).toBe('chunked')
    // Subscribed before the headers went out.
    expect(listeners(emitter)).toEqual({ error: 1, circuit: 1, eviction: 1, invalidation: 1 })

    emitter.emit('eviction', { key: 'app:user:1' })
    const [first] = await o.waitLines(1)
    expect(first).toMatchObject({ type: 'eviction', key: 'app:user:1' })
    expect(typeof (first as { at: unknown }).at).toBe('number')

    const received: InvalidationNotice = { direction: 'received', keys: ['app:a', '__nc|t|app|tag'], prefixes: ['app:p:'], publisher: 'pub-1' }
    emitter.emit('invalidation', received)
    emitter.emit('invalidation', { direction: 'flush', keys: [], prefixes: [''], reason: 'gap' } satisfies InvalidationNotice)
    emitter.emit('error', new CacheError('E_CORRUPT_ENTRY', 'entry app:x is corrupt'))
    emitter.emit('circuit', 'open')
    const lines = await o.waitLines(5)
    const strip = (l: unknown) => {
      const { at, ...rest } = l as { at: number }
      expect(typeof at).toBe('number')
      return rest
    }
    expect(lines.slice(1).map(strip)).toEqual([
      { type: 'invalidation', direction: 'received', keys: ['app:a', '__nc|t|app|tag'], prefixes: ['app:p:'], publisher: 'pub-1' },
      { type: 'invalidation', direction: 'flush', keys: [], prefixes: [''], reason: 'gap' },
      { type: 'error', code: 'E_CORRUPT_ENTRY', message: 'entry app:x is corrupt' },
      { type: 'circuit', state: 'open' },
    ])
  })

  it('?types= chooses the event types; other types are not even subscribed', async () => {
    const { source, emitter } = fakeSource()
    const server = await serve(source)
    const o = await open(server.url, '/events?types=eviction,invalidation')
    expect(listeners(emitter)).toEqual({ error: 0, circuit: 0, eviction: 1, invalidation: 1 })
    emitter.emit('circuit', 'open')
    emitter.emit('eviction', { key: 'app:k' })
    expect(await o.waitLines(1)).toMatchObject([{ type: 'eviction', key: 'app:k' }])
    // Repeated parameters add up.
    const both = await open(server.url, '/events?types=error&types=circuit')
    expect(listeners(emitter)).toEqual({ error: 1, circuit: 1, eviction: 1, invalidation: 1 })
    emitter.emit('circuit', 'closed')
    expect(await both.waitLines(1)).toMatchObject([{ type: 'circuit', state: 'closed' }])
  })

  it('answers 400 for unknown or empty types, 405 for other methods, 404 without events()', async () => {
    const { source, emitter } = fakeSource()
    const server = await serve(source)
    const bad = await open(server.url, '/events?types=eviction,evictions')
    expect(bad.res.statusCode).toBe(400)
    expect(await body(bad.res)).toMatch(/unknown event type "evictions"/)
    const empty = await open(server.url, '/events?types=')
    expect(empty.res.statusCode).toBe(400)
    await body(empty.res)
    const post = await open(server.url, '/events', 'POST')
    expect(post.res.statusCode).toBe(405)
    await body(post.res)
    expect(listeners(emitter)).toEqual({ error: 0, circuit: 0, eviction: 0, invalidation: 0 })

    const none = await serve(fakeSource(false).source)
    const missing = await open(none.url, '/events')
    expect(missing.res.statusCode).toBe(404)
    await body(missing.res)
  })

  it('unsubscribes when the client goes away', async () => {
    const { source, emitter } = fakeSource()
    const server = await serve(source)
    const o = await open(server.url, '/events')
    emitter.emit('eviction', { key: 'app:1' })
    await o.waitLines(1)
    o.req.destroy()
    await until('the subscription to be removed', () => emitter.listenerCount('eviction') === 0)
    expect(listeners(emitter)).toEqual({ error: 0, circuit: 0, eviction: 0, invalidation: 0 })
    // Emitting after the client left is harmless.
    emitter.emit('eviction', { key: 'app:2' })
    // The server still answers.
    const again = await open(server.url, '/events?types=eviction')
    emitter.emit('eviction', { key: 'app:3' })
    expect(await again.waitLines(1)).toMatchObject([{ key: 'app:3' }])
  })

  it('close() ends open streams promptly and unsubscribes them', async () => {
    const { source, emitter } = fakeSource()
    const server = await serveMetrics(source)
    const a = await open(server.url, '/events')
    const b = await open(server.url, '/events?types=error')
    expect(emitter.listenerCount('error')).toBe(2)
    const t = performance.now()
    await server.close()
    expect(performance.now() - t).toBeLessThan(1000)
    await Promise.all([a.ended, b.ended])
    expect(listeners(emitter)).toEqual({ error: 0, circuit: 0, eviction: 0, invalidation: 0 })
  })

  it('a burst larger than the buffer reaches the client as its newest events, in order', async () => {
    const { source, emitter } = fakeSource()
    const server = await serve(source)
    const o = await open(server.url, '/events?types=eviction')
    const n = 5000
    for (let i = 0; i < n; i++) emitter.emit('eviction', { key: `app:${i}` })
    // The first event went straight to the waiting writer; of the rest, the last 1000 are kept.
    await until('the burst', () => (o.lines.at(-1) as { key?: string } | undefined)?.key === `app:${n - 1}`)
    const keys = o.lines.map((l) => Number((l as { key: string }).key.slice(4)))
    expect(keys.length).toBeLessThanOrEqual(1001)
    expect(keys.length).toBeGreaterThanOrEqual(1000)
    for (let i = 1; i < keys.length; i++) expect(keys[i]).toBeGreaterThan(keys[i - 1] as number)
  })
})
