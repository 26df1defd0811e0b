import diagnostics_channel from 'node:diagnostics_channel'
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import * as promClient from 'prom-client'
import { afterEach, describe, expect, inject, it, vi } from 'vitest'
import { createCache } from '../../src/index.js'
import type { CacheStats, NearCache } from '../../src/index.js'
import { renderPrometheus, registerPromClient, escapeLabelValue } from '../../src/observability/prometheus.js'
import { parsePrometheus as looseParse, statsFromSamples } from '../../src/observability/prometheus_parse.js'
import { ManualClock } from '../helpers/clock.js'
import { gate } from '../helpers/gate.js'
import { serveMetrics } from '../../src/observability/http_endpoint.js'
import { channels, traced } from '../../src/observability/tracing.js'
import type { TraceMessage } from '../../src/observability/tracing.js'

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
    const suffix = /^(.*)_(bucket|sum|count)$/.exec(name)
    const f = families.get(name) ?? (suffix && families.get(suffix[1] as string)?.type === 'histogram' ? families.get(suffix[1] as string) : undefined)
    if (!f || f.type === undefined) throw new Error(`sample ${name} without a preceding TYPE`)
    if (f.type === 'histogram' && f.name === name) throw new Error(`histogram sample ${name} without _bucket/_sum/_count`)
    if (suffix?.[2] === 'bucket' && f.type === 'histogram' && labels.le === undefined) throw new Error(`bucket without le in '${line}'`)
    const id = name + JSON.stringify(Object.entries(labels).sort())
    if (seen.has(id)) throw new Error(`duplicate series ${id}`)
    seen.add(id)
    f.samples.push({ name, labels, value })
  }
  return families
}

function valueOf(families: Map<string, Family>, name: string, labels: Record<string, string>): number | undefined {
  const f = families.get(name) ?? families.get(name.replace(/_(bucket|sum|count)$/, ''))
  const s = f?.samples.filter((x) => x.name === name).find((x) => Object.entries(labels).every(([k, v]) => x.labels[k] === v) && Object.keys(x.labels).length === Object.keys(labels).length)
  return s?.value
}

// ── the tests ──────────────────────────────────────────────────────────────

const open: NearCache[] = []
const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c()
  await Promise.all(open.splice(0).map((c) => c.close()))
})

/**
 * A known workload against L2 only (no L1), so every lookup is an L2 round trip
 * and each counter has one exact value: 5 sets, 5 hits, 4 misses (2 unknown keys,
 * 1 getOrSet lookup, 1 expired entry), 1 expiration, 1 delete, 1 loader call and
 * 2 coalesced getOrSet calls, 2 tags and 1 prefix invalidated.
 */
async function workload(): Promise<NearCache> {
  const clock = new ManualClock()
  const cache = await createCache({ redis: inject('redisUrl'), namespace: `metrics-${randomUUID().slice(0, 8)}`, l1: false, clock })
  open.push(cache)
  await cache.set('a', 1)
  await cache.set('b', { x: 2 })
  await cache.set('c', 'three')
  const written: Record<string, unknown> = { a: 1, b: { x: 2 }, c: 'three' }
  for (const k of ['a', 'b', 'c', 'a', 'b']) expect(await cache.get(k)).toEqual(written[k])
  for (const k of ['nope-1', 'nope-2']) expect(await cache.get(k)).toBeUndefined()
  let calls = 0
  const loading = gate()
  const loader = async () => {
    calls++
    await loading.held
    return 'loaded'
  }
  const lazy = Promise.all([1, 2, 3].map(() => cache.getOrSet('lazy', loader)))
  // The load is held until the other two callers have joined it.
  await vi.waitFor(() => expect(cache.stats().namespaces[cache.prefix]?.coalesced).toBe(2), { timeout: 10_000 })
  loading.release()
  expect(await lazy).toEqual(['loaded', 'loaded', 'loaded'])
  expect(calls).toBe(1)
  // Expiry by the injected clock: Redis still holds the entry (its PX is real time).
  await cache.set('short', 'x', { ttl: 1000 })
  clock.advance(5000)
  expect(await cache.get('short')).toBeUndefined()
  expect(await cache.delete('c')).toBe(true)
  await cache.invalidateTags(['t1', 't2'])
  await cache.invalidatePrefix('zz')
  return cache
}

function checkWorkload(families: Map<string, Family>, ns: string): void {
  const at = (name: string, labels: Record<string, string>) => valueOf(families, name, labels)
  expect(at('nearcache_hits_total', { namespace: ns, tier: 'l2' })).toBe(5)
  expect(at('nearcache_hits_total', { namespace: ns, tier: 'l1' })).toBe(0)
  expect(at('nearcache_misses_total', { namespace: ns, tier: 'l2' })).toBe(4)
  expect(at('nearcache_misses_total', { namespace: ns, tier: 'l1' })).toBe(0)
  expect(at('nearcache_sets_total', { namespace: ns })).toBe(5)
  expect(at('nearcache_deletes_total', { namespace: ns })).toBe(1)
  expect(at('nearcache_expirations_total', { namespace: ns })).toBe(1)
  expect(at('nearcache_errors_total', { namespace: ns })).toBe(0)
  expect(at('nearcache_loader_calls_total', { namespace: ns })).toBe(1)
  expect(at('nearcache_coalesced_loads_total', { namespace: ns })).toBe(2)
  expect(at('nearcache_invalidations_total', { namespace: ns, kind: 'tag' })).toBe(2)
  expect(at('nearcache_invalidations_total', { namespace: ns, kind: 'prefix' })).toBe(1)
  // Every L2 lookup is timed: 5 hits + 4 misses.
  expect(at('nearcache_lookup_duration_seconds_count', { namespace: ns, tier: 'l2' })).toBe(9)
  expect(at('nearcache_lookup_duration_seconds_count', { namespace: ns, tier: 'l1' })).toBe(0)
  // The tier's own counts: the expired entry was an L2 hit (nearcache decides expiry).
  expect(at('nearcache_tier_hits_total', { tier: 'l2' })).toBe(6)
  expect(at('nearcache_tier_misses_total', { tier: 'l2' })).toBe(3)
  expect(at('nearcache_tier_sets_total', { tier: 'l2' })).toBe(5)
  expect(at('nearcache_tier_deletes_total', { tier: 'l2' })).toBe(1)
  expect(at('nearcache_tier_enabled', { tier: 'l2' })).toBe(1)
  expect(at('nearcache_tier_enabled', { tier: 'l1' })).toBe(0)
  expect(at('nearcache_circuit_state', {})).toBe(0)
  expect(at('nearcache_write_behind_queue_depth', {})).toBe(0)
  // a, b, c, the loaded value and 'short'.
  expect(at('nearcache_values_written_total', {})).toBe(5)
  expect(at('nearcache_value_bytes_total', { form: 'encoded' })).toBeGreaterThan(0)
  expect(at('nearcache_value_bytes_total', { form: 'stored' })).toBe(at('nearcache_value_bytes_total', { form: 'encoded' })) // all below compressThreshold
  for (const name of ['hits', 'misses', 'sets', 'deletes', 'expirations', 'errors', 'loader_calls', 'coalesced_loads', 'invalidations', 'tier_hits', 'invalidation_messages']) {
    expect(families.get(`nearcache_${name}_total`)?.type, name).toBe('counter')
  }
  for (const name of ['nearcache_l1_entries', 'nearcache_l1_bytes', 'nearcache_l1_capacity_bytes', 'nearcache_circuit_state', 'nearcache_write_behind_queue_depth']) {
    expect(families.get(name)?.type, name).toBe('gauge')
  }
  for (const name of ['nearcache_lookup_duration_seconds', 'nearcache_tier_latency_seconds']) expect(families.get(name)?.type, name).toBe('histogram')
  checkHistogram(families, 'nearcache_lookup_duration_seconds', { namespace: ns, tier: 'l2' })
  checkHistogram(families, 'nearcache_tier_latency_seconds', { tier: 'l2' })
}

/** Buckets are cumulative, end at +Inf with the count, and the sum is in seconds. */
function checkHistogram(families: Map<string, Family>, name: string, labels: Record<string, string>): void {
  const f = families.get(name) as Family
  const mine = (x: Sample) => Object.entries(labels).every(([k, v]) => x.labels[k] === v)
  const buckets = f.samples.filter((x) => x.name === `${name}_bucket` && mine(x))
  expect(buckets.length).toBeGreaterThan(2)
  const les = buckets.map((b) => (b.labels.le === '+Inf' ? Infinity : Number(b.labels.le)))
  expect(les).toEqual([...les].sort((a, b) => a - b))
  expect(les.at(-1)).toBe(Infinity)
  for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value)
  const count = valueOf(families, `${name}_count`, labels) as number
  expect(count).toBeGreaterThan(0)
  expect(buckets.at(-1)!.value).toBe(count)
  const sum = valueOf(families, `${name}_sum`, labels) as number
  expect(sum / count).toBeGreaterThan(0)
  expect(sum / count).toBeLessThan(1) // seconds, not milliseconds
}

describe('Prometheus text', () => {
  it('renders a workload with exact counters that a strict parser accepts', async () => {
    const cache = await workload()
    const text = cache.metrics()
    const families = parsePrometheus(text)
    checkWorkload(families, cache.prefix)
    for (const f of families.values()) expect(f.help, f.name).toBeTruthy()
    // The text is stats() rendered: the same figures both ways.
    expect(cache.stats().namespaces[cache.prefix]).toMatchObject({ hits: { l1: 0, l2: 5 }, misses: { l1: 0, l2: 4 }, loads: 1, coalesced: 2 })
    // statsFromSamples (what `nearcache stats --from` and the demo use) reads it back.
    const back = statsFromSamples(looseParse(text))
    expect(back?.namespaces[cache.prefix]).toMatchObject({ hits: { l1: 0, l2: 5 }, misses: { l1: 0, l2: 4 }, sets: 5, deletes: 1, expirations: 1, loads: 1, coalesced: 2, invalidations: { tags: 2, prefixes: 1 } })
    expect(back?.namespaces[cache.prefix]?.latency.l2.count).toBe(9)
    expect(back?.l2).toMatchObject({ enabled: true, hits: 6, misses: 3, sets: 5 })
  })

  it('counts each namespace apart, and L1 and L2 answers apart', async () => {
    const cache = await createCache({ redis: inject('redisUrl'), namespace: `metrics-ns-${randomUUID().slice(0, 8)}` })
    open.push(cache)
    const users = cache.namespace('users')
    await cache.set('a', 1)
    expect(await cache.get('a')).toBe(1) // L1 (the set filled it)
    expect(await cache.get('a')).toBe(1) // L1
    expect(await cache.get('x')).toBeUndefined() // L1 miss, L2 says missing: an L2 miss
    expect(await cache.get('x')).toBeUndefined() // the negative entry: an L1 miss
    expect(await cache.getMany(['a', 'x', 'y'])).toEqual([1, undefined, undefined]) // L1 hit, L1 miss, L2 miss
    await users.set('u', 'v')
    expect(await users.get('u')).toBe('v')
    expect(await users.has('nobody')).toBe(false)
    const f = parsePrometheus(cache.metrics())
    const at = (name: string, labels: Record<string, string>) => valueOf(f, name, labels)
    const root = cache.prefix
    expect(at('nearcache_hits_total', { namespace: root, tier: 'l1' })).toBe(3)
    expect(at('nearcache_hits_total', { namespace: root, tier: 'l2' })).toBe(0)
    expect(at('nearcache_misses_total', { namespace: root, tier: 'l1' })).toBe(2)
    expect(at('nearcache_misses_total', { namespace: root, tier: 'l2' })).toBe(2)
    expect(at('nearcache_sets_total', { namespace: root })).toBe(1)
    expect(at('nearcache_hits_total', { namespace: users.prefix, tier: 'l1' })).toBe(1)
    expect(at('nearcache_misses_total', { namespace: users.prefix, tier: 'l2' })).toBe(1)
    expect(at('nearcache_sets_total', { namespace: users.prefix })).toBe(1)
    // L1 hits are timed one in 16 and counted 16 times: the count is a multiple of 16.
    expect((at('nearcache_lookup_duration_seconds_count', { namespace: root, tier: 'l1' }) as number) % 16).toBe(0)
    // L1 stores: the two sets, and the fills of the three keys L2 had not (negative entries).
    expect(at('nearcache_tier_sets_total', { tier: 'l1' })).toBe(5)
    expect(at('nearcache_l1_capacity_bytes', {})).toBeGreaterThan(0)
    expect(at('nearcache_l1_entries', {})).toBeGreaterThanOrEqual(2)
  })

  it('counts a failed Redis operation once against the namespace', async () => {
    const cache = await createCache({ redis: inject('redisUrl'), namespace: `metrics-err-${randomUUID().slice(0, 8)}`, l1: false })
    open.push(cache)
    const raw = new Redis(inject('redisUrl'))
    cleanups.push(() => raw.quit())
    // A tag epoch key of the wrong type: reading the tag's epoch fails with WRONGTYPE.
    await raw.lpush(`__nc|t|${cache.prefix}|bad`, 'x')
    await expect(cache.getOrSet('k', () => 'v', { tags: ['bad'] })).rejects.toMatchObject({ code: 'E_L2_ERROR' })
    expect(cache.stats().namespaces[cache.prefix]?.errors).toBe(1)
    await expect(cache.set('k2', 'v', { tags: ['bad'] })).rejects.toMatchObject({ code: 'E_L2_ERROR' })
    expect(cache.stats().namespaces[cache.prefix]?.errors).toBe(2)
  })

  it('escapes label values and maps the circuit states', () => {
    const h = { bounds: [1], counts: [2, 1], count: 3, sumMs: 4.5 }
    const zero = { enabled: true, hits: 0, misses: 0, sets: 0, deletes: 0, errors: 0, evictions: 0, entries: 3, bytes: 99, capacity: 1000, latency: { p50: 1.5, p99: 20, samples: 4 }, histogram: h }
    const ns = 'we\\ird "ns"\nline'
    const nsStats = {
      hits: { l1: 7, l2: 1 }, misses: { l1: 0, l2: 2 }, sets: 0, deletes: 0, expirations: 0, errors: 0, loads: 0, coalesced: 0,
      invalidations: { tags: 0, prefixes: 0 }, evictions: 0, latency: { l1: h, l2: h },
    }
    for (const [circuit, n] of [['closed', 0], ['open', 1], ['half-open', 2]] as const) {
      const stats: CacheStats = {
        l1: { ...zero },
        l2: { ...zero, hits: 7 },
        circuit,
        namespaces: { [ns]: nsStats },
        process: { invalidationsSent: 4, invalidationsReceived: 5, invalidationsRejected: 0, l1Flushes: 1, writeBehindDepth: 6, valuesWritten: 0, valueBytes: 0, storedBytes: 0, walCorruptions: 0, deadLetters: 0, deadLetterBytes: 0, auditDropped: 0 },
      }
      const text = renderPrometheus(stats)
      expect(text).toContain(`namespace="${escapeLabelValue(ns)}"`)
      expect(text).toContain('namespace="we\\\\ird \\"ns\\"\\nline"')
      const f = parsePrometheus(text)
      expect(valueOf(f, 'nearcache_circuit_state', {})).toBe(n)
      expect(valueOf(f, 'nearcache_hits_total', { tier: 'l1', namespace: ns })).toBe(7)
      expect(valueOf(f, 'nearcache_tier_hits_total', { tier: 'l2' })).toBe(7)
      expect(valueOf(f, 'nearcache_l1_entries', {})).toBe(3)
      expect(valueOf(f, 'nearcache_l1_bytes', {})).toBe(99)
      expect(valueOf(f, 'nearcache_invalidation_messages_total', { direction: 'sent' })).toBe(4)
      expect(valueOf(f, 'nearcache_invalidation_messages_total', { direction: 'received' })).toBe(5)
      expect(valueOf(f, 'nearcache_l1_flushes_total', {})).toBe(1)
      expect(valueOf(f, 'nearcache_write_behind_queue_depth', {})).toBe(6)
      expect(valueOf(f, 'nearcache_lookup_duration_seconds_bucket', { tier: 'l1', namespace: ns, le: '0.001' })).toBe(2)
      expect(valueOf(f, 'nearcache_lookup_duration_seconds_bucket', { tier: 'l1', namespace: ns, le: '+Inf' })).toBe(3)
      expect(valueOf(f, 'nearcache_lookup_duration_seconds_sum', { tier: 'l1', namespace: ns })).toBe(0.0045)
      // Read back, the snapshot is the same (L2 has no entries/bytes series; latency windows are not exported).
      expect(statsFromSamples(looseParse(text))).toEqual({
        ...stats,
        l1: { ...stats.l1, latency: expect.anything() },
        l2: { ...stats.l2, entries: 0, bytes: 0, capacity: 0, latency: expect.anything() },
      })
    }
  })

  it('rejects malformed text (the parser is strict)', () => {
    expect(() => parsePrometheus('x 1\n')).toThrow(/TYPE/)
    expect(() => parsePrometheus('# TYPE x counter\nx{a="b} 1\n')).toThrow()
    expect(() => parsePrometheus('# TYPE x counter\nx 1\nx 2\n')).toThrow(/duplicate/)
    expect(() => parsePrometheus('# TYPE x counter\nx one\n')).toThrow(/value/)
    expect(() => parsePrometheus('# TYPE h histogram\nh_bucket 1\n')).toThrow(/le/)
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
    // A NearCache has health(): /health is its live check (a Redis ping included).
    const body = (await h.json()) as { status: string; circuit: string; l1: object; l2: { enabled: boolean; pingMs?: number }; recommendations: string[] }
    expect(body).toMatchObject({ circuit: 'closed', l1: { enabled: false, entries: 0, bytes: 0 }, l2: { enabled: true } })
    // On a busy machine the workload's L2 p99 can pass the 50 ms mark: then, and only
    // then, the report is 'degraded' with the latency advice (and /health stays 200).
    const slow = body.recommendations.filter((r) => /latency/.test(r))
    expect(body.recommendations).toEqual(slow)
    expect(body.status).toBe(slow.length === 0 ? 'ok' : 'degraded')
    expect(body.l2.pingMs).toBeGreaterThan(0)

    expect((await fetch(`${server.url}/nope`)).status).toBe(404)
    expect((await fetch(`${server.url}/`)).status).toBe(404)
    expect((await fetch(`${server.url}/metrics`, { method: 'POST' })).status).toBe(405)
  })

  it('reports degraded and down from the circuit state', async () => {
    const histogram = { bounds: [], counts: [0], count: 0, sumMs: 0 }
    const base = { enabled: true, hits: 0, misses: 0, sets: 0, deletes: 0, errors: 0, evictions: 0, entries: 1, bytes: 2, capacity: 10, latency: { p50: 0, p99: 0, samples: 0 }, histogram }
    let circuit: CacheStats['circuit'] = 'half-open'
    const process = { invalidationsSent: 0, invalidationsReceived: 0, invalidationsRejected: 0, l1Flushes: 0, writeBehindDepth: 0, valuesWritten: 0, valueBytes: 0, storedBytes: 0, walCorruptions: 0, deadLetters: 0, deadLetterBytes: 0, auditDropped: 0 }
    const fake = { prefix: 'fake', stats: (): CacheStats => ({ l1: base, l2: base, circuit, namespaces: {}, process }) }
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
  it('mirrors the same families on scrape', async () => {
    const cache = await workload()
    const registry = new promClient.Registry()
    const reg = registerPromClient(cache, registry)
    const text = await registry.metrics()
    checkWorkload(parsePrometheus(text), cache.prefix)
    // The same family names, types and series as cache.metrics().
    const mine = parsePrometheus(cache.metrics())
    const theirs = parsePrometheus(text)
    expect([...theirs.keys()].sort()).toEqual([...mine.keys()].sort())
    for (const [name, f] of mine) {
      expect(theirs.get(name)?.type, name).toBe(f.type)
      expect(theirs.get(name)?.samples.length, name).toBe(f.samples.length)
    }

    // Collect-on-scrape: later activity shows up in the next scrape.
    await cache.get('a')
    const again = parsePrometheus(await registry.metrics())
    expect(valueOf(again, 'nearcache_hits_total', { tier: 'l2', namespace: cache.prefix })).toBe(6)

    // A second cache on the same registry adds its own namespace's series.
    const other = await workload()
    const reg2 = registerPromClient(other, registry)
    const both = parsePrometheus(await registry.metrics())
    expect(valueOf(both, 'nearcache_hits_total', { tier: 'l2', namespace: cache.prefix })).toBe(6)
    expect(valueOf(both, 'nearcache_hits_total', { tier: 'l2', namespace: other.prefix })).toBe(5)

    // OpenMetrics: prom-client renames counter families; samples keep one '_total'.
    const om = new promClient.Registry()
    om.setContentType(promClient.Registry.OPENMETRICS_CONTENT_TYPE as never)
    const regOm = registerPromClient(cache, om)
    const omText = await om.metrics()
    expect(omText).toContain('# TYPE nearcache_hits counter')
    expect(omText).toContain(`nearcache_hits_total{namespace="${cache.prefix}",tier="l2"} 6`)
    expect(omText).not.toContain('_total_total')
    expect(omText).toMatch(/nearcache_lookup_duration_seconds_bucket\{[^}]*le="\+Inf"\} \d/)
    regOm.unregister()

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
    // It waits 20 ms, so its duration has a floor the runtime guarantees (timers never fire early by more than 1 ms).
    const plain = async () => {
      await new Promise((r) => setTimeout(r, 20))
      return 1
    }
    const before = performance.now()
    expect(await traced('get', ctx, plain)).toBe(1)
    const elapsed = performance.now() - before
    expect(seen.map((m) => m.phase)).toEqual(['start', 'end'])
    expect(seen[0]).toMatchObject({ op: 'get', ctx })
    expect(seen[1]).toMatchObject({ op: 'get', ctx, result: 1, id: seen[0]!.id })
    // A duration of this call, not a timestamp or garbage.
    const { durationMs } = seen[1] as { durationMs: number }
    expect(durationMs).toBeGreaterThanOrEqual(19)
    expect(durationMs).toBeLessThanOrEqual(elapsed)

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
