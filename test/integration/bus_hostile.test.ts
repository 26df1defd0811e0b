import { Redis } from 'ioredis'
import { afterEach, describe, expect, inject, it } from 'vitest'
import { createCache } from '../../src/index.js'
import type { CacheError, NearCache } from '../../src/index.js'
import { channelFor, LEGACY_CHANNEL } from '../../src/keys.js'
import { MAX_KEYS } from '../../src/l2/bus_protocol.js'
import { FLUSH_INTERVAL_MS, MAX_PUBLISHERS } from '../../src/l2/invalidation_bus.js'
import { beforeAll } from 'vitest'
import type { InvalidationNotice } from '../../src/l2/invalidation_bus.js'
import { cluster, uniqueNamespace } from '../helpers/backends.js'
import { initHash } from '../../wasm/hash.js'
import { kMinBytes } from '../../src/l1/layout.js'
import { SharedTable } from '../../src/l1/shared_table.js'
import { InvalidationBus } from '../../src/l2/invalidation_bus.js'
import { inL1, until } from '../helpers/wait.js'
import { publishAndSettle } from '../helpers/bus_settle.js'

/**
 * The invalidation bus against a publisher that can send anything on the real
 * Redis: malformed messages, other namespaces' keys, floods of publishers,
 * newer protocol versions, and processes of the previous protocol.
 */
const cleanups: (() => Promise<unknown>)[] = []
beforeAll(async () => {
  await initHash()
})
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function raw(): Redis {
  const r = new Redis(inject('redisUrl'))
  cleanups.push(() => r.quit())
  return r
}

async function cache(namespace = uniqueNamespace('bus'), extra: Parameters<typeof createCache>[0] = {}): Promise<NearCache> {
  const c = await createCache({ redis: inject('redisUrl'), namespace, l1: { ttl: Infinity }, ...extra })
  cleanups.push(() => c.close())
  return c
}

describe('invalidation bus: hostile messages', () => {
  it('malformed messages are dropped, counted and reported at most once per second; nothing throws out of the handler', async () => {
    const c = await cache()
    const errors: CacheError[] = []
    c.on('error', (e) => errors.push(e as CacheError))
    const uncaught: unknown[] = []
    const onUncaught = (e: unknown) => uncaught.push(e)
    process.on('uncaughtException', onUncaught)
    cleanups.push(async () => process.off('uncaughtException', onUncaught))
    await c.set('k', 'v')
    const ns = c.prefix
    const bad = [
      'null',
      '{"k":5}',
      '{"p":"abc"}',
      'not json',
      '[]',
      '"text"',
      '{"v":1}',
      '{"v":1,"o":"x","s":0,"k":5}',
      '{"v":1,"o":"x","s":0,"p":"abc"}',
      '{"v":1,"o":"x","s":-1,"k":["a"]}',
      '{"v":1,"o":"x","s":0,"k":[null]}',
      '{"v":1,"o":"x","s":0,"k":[]}',
      '{"v":1,"o":"x\\n","s":0,"k":["a"]}',
      JSON.stringify({ v: 1, o: 'x', s: 0, k: [`${ns}:k`], extra: true }),
      JSON.stringify({ v: 1, o: 'x', s: 0, k: ['other-app:k'] }),
      JSON.stringify({ v: 1, o: 'x', s: 0, k: [`${ns}:\ud800`] }),
      JSON.stringify({ v: 1, o: 'x', s: 0, p: [''] }),
      JSON.stringify({ v: 1, o: 'x', s: 0, p: ['__nc|t|'] }),
      JSON.stringify({ v: 'one', o: 'x', s: 0, k: [`${ns}:k`] }),
      JSON.stringify({ o: 'x', s: 0, k: [`${ns}:k`] }), // the legacy format, on the new channel
      JSON.stringify({ v: 1, o: 'x', s: 0, k: Array.from({ length: MAX_KEYS + 1 }, (_, i) => `${ns}:${i}`) }),
      'x'.repeat(600 * 1024),
    ]
    await publishAndSettle(c, raw(), bad)
    expect(c.stats().process.invalidationsRejected).toBe(bad.length)
    expect(c.metrics()).toContain(`nearcache_invalidation_messages_total{direction="rejected"} ${bad.length}`)
    // Reported once for the burst (the rest fall within the same second), with the new code.
    expect(errors.length).toBe(1)
    expect(errors[0]?.code).toBe('E_BAD_MESSAGE')
    expect(errors[0]?.message).toContain(channelFor(ns))
    expect(uncaught).toEqual([])
    // None of them touched the entry.
    expect(await inL1(c, 'k')).toBe(true)
  })

  it('each root namespace has its own channel; a child namespace uses its root', async () => {
    const root = uniqueNamespace('shop')
    const c = await cache(root)
    const users = c.namespace('users')
    const r = raw()
    const sub = r.duplicate()
    cleanups.push(() => sub.quit())
    const seen: [string, string][] = []
    sub.on('message', (ch: string, text: string) => seen.push([ch, text]))
    await sub.subscribe(`__nc|inv|${root}`, LEGACY_CHANNEL)
    await users.set('u1', 1)
    await until('the announcement', () => seen.length > 0)
    await c.set('late', 1)
    await until('the second announcement', () => seen.length > 1)
    expect(seen.map(([ch]) => ch)).toEqual([`__nc|inv|${root}`, `__nc|inv|${root}`])
    expect(JSON.parse(seen[0]?.[1] as string)).toMatchObject({ v: 1, s: 0, k: [`${root}:users:u1`] })
  })

  it('another application cannot touch this namespace, and does not hear it', async () => {
    const shop = await cache(uniqueNamespace('shop'))
    const blog = await cache(uniqueNamespace('blog'))
    await shop.set('k', 1)
    await blog.set('k', 1)
    // A blog process's message naming shop keys, on the blog channel: refused.
    await publishAndSettle(blog, raw(), [JSON.stringify({ v: 1, o: 'blog-proc', s: 0, k: [`${shop.prefix}:k`], p: [`${shop.prefix}:`] })])
    expect(blog.stats().process.invalidationsRejected).toBe(1)
    expect(await inL1(shop, 'k')).toBe(true)
    expect(shop.stats().process.invalidationsReceived).toBe(0)
  })

  it('prefixes drop the root namespace in O(1), tag epochs and child namespaces included', async () => {
    const a = await cache()
    const b = await cache(a.prefix)
    const child = b.namespace('child')
    await b.set('x', 1)
    await child.set('y', 2)
    expect(await inL1(b, 'x')).toBe(true)
    await a.invalidatePrefix('nothing-matches-')
    await until('the prefix announcement', async () => !(await inL1(b, 'x')))
    expect(await inL1(child, 'y')).toBe(false)
    // L2 kept them: only L1 copies were dropped.
    expect(await b.get('x')).toBe(1)
  })

  it('per-publisher state is bounded whatever the number of publisher ids', async () => {
    const ns = uniqueNamespace('pubs')
    const table = SharedTable.create(kMinBytes)
    const bus = await InvalidationBus.start(raw(), ns, table, { legacyChannel: false, onError: () => {} })
    cleanups.push(() => bus.close())
    const r = raw()
    const n = MAX_PUBLISHERS + 500
    for (let i = 0; i < n; i++) await r.publish(bus.channel, JSON.stringify({ v: 1, o: `cli-${i}`, s: 0, k: [`${ns}:k${i % 7}`] }))
    await until('every message', () => bus.received === n)
    const seen = (bus as unknown as { lastSeen: Map<string, Map<string, number>> }).lastSeen
    expect(seen.get(bus.channel)?.size).toBe(MAX_PUBLISHERS)
    expect(bus.rejected).toBe(0)
    // The most recent publishers are remembered: a gap of the last one is still seen.
    await r.publish(bus.channel, JSON.stringify({ v: 1, o: `cli-${n - 1}`, s: 5, k: [`${ns}:x`] }))
    await until('the gap flush', () => bus.flushes >= 1)
  })

  it('a newer protocol version is counted and drops the namespace from L1; it never crashes', async () => {
    const c = await cache()
    await c.set('k', 1)
    const notices: InvalidationNotice[] = []
    c.on('invalidation', (n) => notices.push(n))
    await raw().publish(channelFor(c.prefix), JSON.stringify({ v: 2, whatever: { nested: [1, 2, 3] } }))
    await until('the version flush', () => notices.some((n) => n.direction === 'flush'))
    expect(notices.find((n) => n.direction === 'flush')).toEqual({ direction: 'flush', keys: [], prefixes: [`${c.prefix}:`], reason: 'version' })
    expect(c.stats().process.invalidationsRejected).toBe(1)
    expect(await inL1(c, 'k')).toBe(false)
  })

  it('flushes caused by messages are rate-limited, and the last one still happens', async () => {
    const c = await cache()
    const flushesAt: number[] = []
    let lastGapAt = 0
    c.on('invalidation', (n) => {
      if (n.direction === 'flush') flushesAt.push(performance.now())
      else if (n.direction === 'received' && n.publisher === 'gappy') lastGapAt = performance.now()
    })
    // Every other sequence number: each message after the first shows a gap.
    const texts = Array.from({ length: 200 }, (_, i) => JSON.stringify({ v: 1, o: 'gappy', s: i * 2, k: [`${c.prefix}:g`] }))
    await publishAndSettle(c, raw(), texts)
    // The requests coalesce: the last one is served at the end of its interval, after the last gap.
    await until('the flush after the last gap', () => flushesAt.some((t) => t >= lastGapAt))
    expect(flushesAt.length).toBeGreaterThanOrEqual(2)
    expect(flushesAt.length).toBeLessThan(199)
    for (let i = 1; i < flushesAt.length; i++) expect(flushesAt[i]! - flushesAt[i - 1]!).toBeGreaterThanOrEqual(FLUSH_INTERVAL_MS * 0.9)
    expect(c.stats().process.l1Flushes).toBe(flushesAt.length)
  })

  it('large batches are split under the message limits, and every key still reaches the other process', async () => {
    const a = await cache()
    const b = await cache(a.prefix)
    const sub = raw().duplicate()
    cleanups.push(() => sub.quit())
    const messages: { s: number; k?: string[] }[] = []
    sub.on('message', (_ch: string, text: string) => messages.push(JSON.parse(text)))
    await sub.subscribe(channelFor(a.prefix))
    const entries = Array.from({ length: 2500 }, (_, i) => ({ key: `k${i}`, value: i }))
    await b.setMany(entries)
    expect(await inL1(b, 'k0')).toBe(true)
    expect(await inL1(b, 'k2499')).toBe(true)
    await a.setMany(entries.map((e) => ({ ...e, value: -1 })))
    await until('every chunk', () => messages.reduce((n, m) => n + (m.k?.length ?? 0), 0) >= 5000)
    const fromA = messages.slice(-3)
    expect(fromA.map((m) => m.k?.length)).toEqual([1000, 1000, 500])
    expect(fromA.map((m) => m.s)).toEqual([fromA[0]!.s, fromA[0]!.s + 1, fromA[0]!.s + 2])
    await until('b to see the new values', async () => (await b.get('k0')) === -1 && (await b.get('k2499')) === -1)
    expect(b.stats().process.invalidationsRejected).toBe(0)
    expect(b.stats().process.l1Flushes).toBe(0)
  })
})

describe('invalidation bus: rolling upgrade (legacyChannel)', () => {
  /** How a process of the previous protocol read a message (its receive(), kept verbatim). */
  const oldReceive = (text: string): { o: string; s: number; k?: string[]; p?: string[] } => JSON.parse(text)

  it('hears and applies messages in the previous format on the global channel, for its own root only', async () => {
    const c = await cache(uniqueNamespace('up'), { invalidation: { legacyChannel: true } })
    await c.set('k', 1)
    await c.set('other', 1)
    const r = raw()
    await r.publish(LEGACY_CHANNEL, JSON.stringify({ o: 'old-proc', s: 0, k: [`${c.prefix}:k`, 'some-other-app:k'] }))
    await until('the legacy message', async () => !(await inL1(c, 'k')))
    expect(await inL1(c, 'other')).toBe(true)
    // The same validation: garbage on the legacy channel is dropped and counted.
    await r.publish(LEGACY_CHANNEL, 'null')
    await until('the rejection', () => c.stats().process.invalidationsRejected === 1)
  })

  it('publishes in the previous format on the global channel, which an old process can apply', async () => {
    const c = await cache(uniqueNamespace('up'), { invalidation: { legacyChannel: true } })
    const sub = raw().duplicate()
    cleanups.push(() => sub.quit())
    const legacy: string[] = []
    sub.on('message', (ch: string, text: string) => ch === LEGACY_CHANNEL && legacy.push(text))
    await sub.subscribe(LEGACY_CHANNEL)
    await c.set('k', 1)
    await c.invalidatePrefix('p:')
    await until('the legacy messages', () => legacy.length >= 2)
    const m = legacy.map(oldReceive)
    expect(m[0]).toEqual({ o: expect.any(String), s: 0, k: [`${c.prefix}:k`] })
    expect(m[1]).toEqual({ o: m[0]!.o, s: 1, p: [`${c.prefix}:p:`] })
  })

  it('without the option, nothing goes to or comes from the global channel', async () => {
    const c = await cache()
    await c.set('k', 1)
    await raw().publish(LEGACY_CHANNEL, JSON.stringify({ o: 'old-proc', s: 0, k: [`${c.prefix}:k`] }))
    await publishAndSettle(c, raw(), [])
    expect(await c.get('k')).toBe(1)
    expect(c.stats().process.invalidationsReceived).toBe(1) // the settle marker only
  })
})

describe('invalidation bus on a Cluster', () => {
  it('uses the root channel and rejects hostile messages there too', async () => {
    const ns = uniqueNamespace('cl')
    const a = await createCache({ redis: cluster.redisOption(), namespace: ns, l1: { ttl: Infinity } })
    cleanups.push(() => a.close())
    const b = await createCache({ redis: cluster.redisOption(), namespace: ns, l1: { ttl: Infinity } })
    cleanups.push(() => b.close())
    const r = cluster.rawClient() as NonNullable<ReturnType<typeof cluster.rawClient>>
    cleanups.push(() => r.quit())
    await b.set('k', 1)
    await b.get('k')
    await r.publish(channelFor(ns), 'null')
    await r.publish(channelFor(ns), '{"k":5}')
    await until('the rejections', () => b.stats().process.invalidationsRejected === 2 && a.stats().process.invalidationsRejected === 2)
    await a.set('k', 2)
    await until('the invalidation', async () => (await b.get('k')) === 2)
  })
})
