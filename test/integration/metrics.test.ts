import diagnostics_channel from 'node:diagnostics_channel'
import { randomUUID } from 'node:crypto'
import * as promClient from 'prom-client'
import { afterEach, describe, expect, inject, it } from 'vitest'
import { createCache } from '../../src/index.js'
import type { CacheStats, NearCache } from '../../src/index.js'
import { renderPrometheus, registerPromClient, escapeLabelValue } from '../../src/metrics/prometheus.js'
import { serveMetrics } from '../../src/metrics/http_endpoint.js'
import { channels, traced } from '../../src/metrics/tracing.js'
import type { TraceMessage } from '../../src/metrics/tracing.js'

// ── a strict parser for the Prometheus text format 0.0.4 ───────────────────
// (parse-prometheus-text-format on npm has had no release since 2018 and no
// types, so the test carries its own, stricter one: any line it does not fully
// understand fails the test.)

interface Sample { name: string; labels: Record<string, string>; value: number }
interface Family { name: string; help?: string; type?: string; samples: Sample[] }

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/

function parseValue(s: string): number {
  if (s === 'NaN') return NaN
  if (s === '+Inf') return Infinity
  if (s === '-Inf') return -Infinity
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) throw new Error(`bad value '${s}'`)
  return Number(s)
}

function parseLabels(src: string, at: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {}
  let i = at + 1 // after '{'
  while (true) {
    if (src[i] === '}') return { labels, end: i + 1 }
    const eq = src.indexOf('=', i)
    const key = src.slice(i, eq)
    if (!LABEL.test(key)) throw new Error(`bad label name '${key}'`)
    if (key in labels) throw new Error(`duplicate label '${key}'`)
    if (src[eq + 1] !== '"') throw new Error('label value must be quoted')
    let v = ''
    let j = eq + 2
    for (; j < src.length && src[j] !== '"'; j++) {
      if (src[j] === '\\') {
        const e = src[++j]
        if (e === '\\') v += '\\'
        else if (e === '"') v += '"'
        else if (e === 'n') v += '\n'
        else throw new Error(`bad escape \\${e}`)
      } else if (src[j] === '\n') throw new Error('raw line feed in label value')
      else v += src[j]
    }
    if (j >= src.length) throw new Error('unterminated label value')
    labels[key] = v
    i = j + 1
    if (src[i] === ',') i++
    else if (src[i] !== '}') throw new Error(`expected , or } at ${i} in ${src}`)
  }
}

function parsePrometheus(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('exposition must end with a line feed')
  const families = new Map<string, Family>()
  const seen = new Set<string>()
  const fam = (name: string) => {
    let f = families.get(name)
    if (!f) families.set(name, (f = { name, samples: [] }))
    return f
  }
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue // the format allows (ignores) empty lines
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line)
    if (meta) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string]
      if (!NAME.test(name)) throw new Error(`bad metric name ${name}`)
      const f = fam(name)
      if (f.samples.length > 0) throw new Error(`${kind} for ${name} after its samples`)
      if (kind === 'HELP') {
        if (f.help !== undefined) throw new Error(`second HELP for ${name}`)
        f.help = rest.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
      } else {
        if (f.type !== undefined) throw new Error(`second TYPE for ${name}`)
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) throw new Error(`bad type ${rest}`)
        f.type = rest
      }
      continue
    }
    if (line.startsWith('#')) continue // comment
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line)
    if (!m) throw new Error(`bad sample line '${line}'`)
    const name = m[1] as string
    let rest = line.slice(name.length)
    let labels: Record<string, string> = {}
    if (rest.startsWith('{')) {
      const p = parseLabels(rest, 0)
      labels = p.labels
      rest = rest.slice(p.end)
    }
    const parts = rest.split(' ')
    if (parts[0] !== '' || parts.length < 2 || parts.length > 3) throw new Error(`bad sample line '${line}'`)
    const value = parseValue(parts[1] as string)
    if (parts[2] !== undefined && !/^-?\d+$/.test(parts[2])) throw new Error(`bad timestamp in '${line}'`)
    const f = families.get(name)
    if (!f || f.type === undefined) throw new Error(`sample ${name} without a preceding TYPE`)
    const id = name + JSON.stringify(Object.entries(labels).sort())
    if (seen.has(id)) throw new Error(`duplicate series ${id}`)
    seen.add(id)
    f.samples.push({ name, labels, value })
  }
  return families
}

function valueOf(families: Map<string, Family>, name: string, labels: Record<string, string>): number | undefined {
  const s = families.get(name)?.samples.find((x) => Object.entries(labels).every(([k, v]) => x.labels[k] === v) && Object.keys(x.labels).length === Object.keys(labels).length)
  return s?.value
}

// ── the tests ──────────────────────────────────────────────────────────────

const open: NearCache[] = []
const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c()
  await Promise.all(open.splice(0).map((c) => c.close()))
})

/** 3 sets, 5 hits, 2 misses against L2 only, so the L2 counters are exact. */
async function workload(): Promise<NearCache> {
  const cache = await createCache({ redis: inject('redisUrl'), namespace: `metrics-${randomUUID().slice(0, 8)}`, l1: false })
  open.push(cache)
  await cache.set('a', 1)
  await cache.set('b', { x: 2 })
  await cache.set('c', 'three')
  for (const k of ['a', 'b', 'c', 'a', 'b']) expect(await cache.get(k)).toBeDefined()
  for (const k of ['nope-1', 'nope-2']) expect(await cache.get(k)).toBeUndefined()
  return cache
}

function checkWorkload(families: Map<string, Family>, ns: string): void {
  const l2 = { tier: 'l2', namespace: ns }
  expect(valueOf(families, 'nearcache_hits_total', l2)).toBe(5)
  expect(valueOf(families, 'nearcache_misses_total', l2)).toBe(2)
  expect(valueOf(families, 'nearcache_sets_total', l2)).toBe(3)
  expect(valueOf(families, 'nearcache_deletes_total', l2)).toBe(0)
  expect(valueOf(families, 'nearcache_errors_total', l2)).toBe(0)
  expect(valueOf(families, 'nearcache_hits_total', { tier: 'l1', namespace: ns })).toBe(0)
  expect(valueOf(families, 'nearcache_tier_enabled', l2)).toBe(1)
  expect(valueOf(families, 'nearcache_tier_enabled', { tier: 'l1', namespace: ns })).toBe(0)
  expect(valueOf(families, 'nearcache_circuit_state', { namespace: ns })).toBe(0)
  for (const name of ['hits', 'misses', 'sets', 'deletes', 'errors', 'evictions']) expect(families.get(`nearcache_${name}_total`)?.type).toBe('counter')
  for (const name of ['nearcache_entries', 'nearcache_bytes', 'nearcache_latency_seconds', 'nearcache_circuit_state']) expect(families.get(name)?.type).toBe('gauge')
  const p50 = valueOf(families, 'nearcache_latency_seconds', { ...l2, quantile: '0.5' })
  const p99 = valueOf(families, 'nearcache_latency_seconds', { ...l2, quantile: '0.99' })
  expect(p50).toBeGreaterThan(0)
  expect(p50).toBeLessThan(1) // seconds, not milliseconds
  expect(p99).toBeGreaterThanOrEqual(p50 as number)
}

describe('Prometheus text', () => {
  it('renders a workload with exact counters that a strict parser accepts', async () => {
    const cache = await workload()
    const stats = cache.stats()
    expect(stats.l2).toMatchObject({ hits: 5, misses: 2, sets: 3 })
    const text = renderPrometheus(stats, { namespace: cache.prefix })
    const families = parsePrometheus(text)
    checkWorkload(families, cache.prefix)
    for (const f of families.values()) expect(f.help, f.name).toBeTruthy()
  })

  it('escapes label values and maps the circuit states', () => {
    const zero = { enabled: true, hits: 0, misses: 0, sets: 0, deletes: 0, errors: 0, evictions: 0, entries: 3, bytes: 99, latency: { p50: 1.5, p99: 20, samples: 4 } }
    const ns = 'we\\ird "ns"\nline'
    for (const [circuit, n] of [['closed', 0], ['open', 1], ['half-open', 2]] as const) {
      const stats: CacheStats = { l1: { ...zero }, l2: { ...zero, hits: 7 }, circuit }
      const text = renderPrometheus(stats, { namespace: ns })
      expect(text).toContain(`namespace="${escapeLabelValue(ns)}"`)
      expect(text).toContain('namespace="we\\\\ird \\"ns\\"\\nline"')
      const f = parsePrometheus(text)
      expect(valueOf(f, 'nearcache_circuit_state', { namespace: ns })).toBe(n)
      expect(valueOf(f, 'nearcache_hits_total', { tier: 'l2', namespace: ns })).toBe(7)
      expect(valueOf(f, 'nearcache_entries', { tier: 'l1', namespace: ns })).toBe(3)
      expect(valueOf(f, 'nearcache_bytes', { tier: 'l1', namespace: ns })).toBe(99)
      expect(valueOf(f, 'nearcache_latency_seconds', { tier: 'l1', namespace: ns, quantile: '0.5' })).toBe(0.0015)
      expect(valueOf(f, 'nearcache_latency_seconds', { tier: 'l1', namespace: ns, quantile: '0.99' })).toBe(0.02)
    }
  })

  it('rejects malformed text (the parser is strict)', () => {
    expect(() => parsePrometheus('x 1\n')).toThrow(/TYPE/)
    expect(() => parsePrometheus('# TYPE x counter\nx{a="b} 1\n')).toThrow()
    expect(() => parsePrometheus('# TYPE x counter\nx 1\nx 2\n')).toThrow(/duplicate/)
    expect(() => parsePrometheus('# TYPE x counter\nx one\n')).toThrow(/value/)
  })
})

describe('HTTP endpoint', () => {
  it('serves /metrics, /health and 404', async () => {
    const cache = await workload()
    const server = await serveMetrics(cache)
    cleanups.push(() => server.close())
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)

    const m = await fetch(`${server.url}/metrics`)
    expect(m.status).toBe(200)
    expect(m.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    checkWorkload(parsePrometheus(await m.text()), cache.prefix)

    const h = await fetch(`${server.url}/health`)
    expect(h.status).toBe(200)
    expect(h.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await h.json()).toEqual({ status: 'ok', circuit: 'closed', l1: { entries: 0, bytes: 0 }, l2: { enabled: true } })

    expect((await fetch(`${server.url}/nope`)).status).toBe(404)
    expect((await fetch(`${server.url}/`)).status).toBe(404)
    expect((await fetch(`${server.url}/metrics`, { method: 'POST' })).status).toBe(405)
  })

  it('reports degraded and down from the circuit state', async () => {
    const base = { enabled: true, hits: 0, misses: 0, sets: 0, deletes: 0, errors: 0, evictions: 0, entries: 1, bytes: 2, latency: { p50: 0, p99: 0, samples: 0 } }
    let circuit: CacheStats['circuit'] = 'half-open'
    const fake = { prefix: 'fake', stats: (): CacheStats => ({ l1: base, l2: base, circuit }) }
    const server = await serveMetrics(fake, { port: 0 })
    cleanups.push(() => server.close())
    const h1 = await fetch(`${server.url}/health`)
    expect(h1.status).toBe(200)
    expect(await h1.json()).toMatchObject({ status: 'degraded', circuit: 'half-open' })
    circuit = 'open'
    const h2 = await fetch(`${server.url}/health`)
    expect(h2.status).toBe(503)
    expect(await h2.json()).toMatchObject({ status: 'down', circuit: 'open', l1: { entries: 1, bytes: 2 } })
    await server.close()
    await server.close() // idempotent
    await expect(fetch(`${server.url}/health`)).rejects.toThrow()
  })

  it('a cache with L1 reports its entries in /health', async () => {
    const cache = await createCache({ redis: false, namespace: `metrics-l1-${randomUUID().slice(0, 8)}` })
    open.push(cache)
    await cache.set('k', 'v')
    const server = await serveMetrics(cache)
    cleanups.push(() => server.close())
    const body = (await (await fetch(`${server.url}/health`)).json()) as { l1: { entries: number; bytes: number }; l2: { enabled: boolean } }
    expect(body.l1.entries).toBeGreaterThanOrEqual(1)
    expect(body.l1.bytes).toBeGreaterThan(0)
    expect(body.l2.enabled).toBe(false)
  })
})

describe('prom-client adapter', () => {
  it('mirrors the counters on scrape', async () => {
    const cache = await workload()
    const registry = new promClient.Registry()
    const reg = registerPromClient(cache, registry, promClient)
    const text = await registry.metrics()
    checkWorkload(parsePrometheus(text), cache.prefix)

    // Collect-on-scrape: later activity shows up in the next scrape.
    await cache.get('a')
    const again = parsePrometheus(await registry.metrics())
    expect(valueOf(again, 'nearcache_hits_total', { tier: 'l2', namespace: cache.prefix })).toBe(6)

    // A second cache on the same registry adds its own series.
    const other = await workload()
    const reg2 = registerPromClient(other, registry, promClient)
    const both = parsePrometheus(await registry.metrics())
    expect(valueOf(both, 'nearcache_hits_total', { tier: 'l2', namespace: cache.prefix })).toBe(6)
    expect(valueOf(both, 'nearcache_hits_total', { tier: 'l2', namespace: other.prefix })).toBe(5)

    reg.unregister()
    expect(valueOf(parsePrometheus(await registry.metrics()), 'nearcache_hits_total', { tier: 'l2', namespace: cache.prefix })).toBeUndefined()
    reg2.unregister()
    expect(registry.getSingleMetric('nearcache_hits_total')).toBeUndefined()
  })
})

describe('tracing', () => {
  it('publishes start and end (or error) to subscribers', async () => {
    const cache = await workload()
    const seen: TraceMessage<{ key: string }>[] = []
    const onGet = (m: unknown) => seen.push(m as TraceMessage<{ key: string }>)
    diagnostics_channel.subscribe('nearcache:get', onGet)
    cleanups.push(() => diagnostics_channel.unsubscribe('nearcache:get', onGet))
    expect(channels.get.hasSubscribers).toBe(true)

    // traced() around a plain function (the cache's own get is traced by the cache itself).
    const ctx = { key: 'a' }
    const plain = async () => 1
    expect(await traced('get', ctx, plain)).toBe(1)
    expect(seen.map((m) => m.phase)).toEqual(['start', 'end'])
    expect(seen[0]).toMatchObject({ op: 'get', ctx })
    expect(seen[1]).toMatchObject({ op: 'get', ctx, result: 1, id: seen[0]!.id })
    expect((seen[1] as { durationMs: number }).durationMs).toBeGreaterThanOrEqual(0)

    seen.length = 0
    const boom = new Error('boom')
    await expect(traced('get', { key: 'x' }, async () => { throw boom })).rejects.toBe(boom)
    expect(() => traced('get', { key: 'y' }, () => { throw boom })).toThrow(boom)
    expect(seen.map((m) => m.phase)).toEqual(['start', 'error', 'start', 'error'])
    expect(seen[1]).toMatchObject({ error: boom })
  })

  it('publishes nothing and wraps nothing without subscribers', async () => {
    expect(channels.set.hasSubscribers).toBe(false)
    // A listener on another channel must not see set's traffic.
    const onGet = () => { throw new Error('unexpected') }
    diagnostics_channel.subscribe('nearcache:get', onGet)
    cleanups.push(() => diagnostics_channel.unsubscribe('nearcache:get', onGet))
    const publish = channels.set.publish
    let published = 0
    ;(channels.set as { publish: (m: unknown) => void }).publish = (m) => { published++; publish.call(channels.set, m) }
    cleanups.push(() => { (channels.set as { publish: unknown }).publish = publish })

    const p = Promise.resolve(42)
    expect(traced('set', { key: 'k' }, () => p)).toBe(p) // the very same promise: no wrapping
    expect(traced('set', { key: 'k' }, () => 7)).toBe(7)
    expect(published).toBe(0)
  })
})
