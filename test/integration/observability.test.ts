import { randomBytes } from 'node:crypto'
import diagnostics_channel from 'node:diagnostics_channel'
import { Redis } from 'ioredis'
import { describe, expect, inject, it } from 'vitest'
import { createCache } from '../../src/index.js'

describe('cache.metrics() and tracing hooks on the cache itself', () => {
  it('publishes start/end on nearcache:get only while subscribed, and renders its figures', async () => {
    const cache = await createCache({ redis: false, namespace: 'obs' })
    try {
      await cache.set('k', 1)
      const seen: { phase: string; op: string; ctx: { key?: string } }[] = []
      const onMessage = (m: unknown) => seen.push(m as { phase: string; op: string; ctx: { key?: string } })
      await cache.get('k') // not subscribed: nothing published
      diagnostics_channel.subscribe('nearcache:get', onMessage)
      expect(await cache.get('k')).toBe(1)
      diagnostics_channel.unsubscribe('nearcache:get', onMessage)
      const whileSubscribed = seen.length
      await cache.get('k')
      expect(seen.length).toBe(whileSubscribed) // nothing after unsubscribing
      // (Other test files in the same process may have wrapped their own module copies too.)
      const mine = seen.filter((m) => (m.ctx as { namespace?: string }).namespace === 'obs')
      expect(mine.map((m) => m.phase)).toContain('start')
      expect(mine.map((m) => m.phase)).toContain('end')
      expect(mine.every((m) => m.op === 'get' && m.ctx.key === 'k')).toBe(true)
      const text = cache.metrics()
      expect(text).toContain('nearcache_hits_total{namespace="obs",tier="l1"} 3')
      expect(text).toContain('# TYPE nearcache_hits_total counter')
    } finally {
      await cache.close()
    }
  })

  it('health() reports reachability, the circuit and recommendations; events() yields error events', async () => {
    const cache = await createCache({ redis: inject('redisUrl'), namespace: 'obs-h' })
    try {
      const h = await cache.health()
      // 'ok', or 'degraded' only by latency (a loaded machine can take over 50 ms for a round trip).
      expect(h.status).not.toBe('down')
      expect(h.recommendations.filter((r) => !/latency|ping takes/.test(r))).toEqual([])
      expect(h.circuit).toBe('closed')
      expect(JSON.stringify(h)).toMatch(/ping/i)
      // Other test files' caches announce invalidations on the same Redis: errors only here.
      const stream = cache.events({ types: ['error'] })
      const raw = new Redis(inject('redisUrl'))
      await raw.set('obs-h:junk', 'not an envelope')
      raw.disconnect()
      expect(await cache.get('junk')).toBeUndefined()
      const first = await stream.next()
      expect(first.value).toMatchObject({ type: 'error' })
      await stream.return?.()
    } finally {
      await cache.close()
    }
  })
  it('events() carries evictions caused by this thread and the invalidations this process sends', async () => {
    const ns = `obs-ev-${Date.now()}`
    const cache = await createCache({ redis: inject('redisUrl'), namespace: ns, l1: { maxBytes: '256kb' } })
    try {
      const stream = cache.events({ types: ['eviction', 'invalidation'], maxBuffer: 100_000 })
      await cache.delete('gone')
      // Values that LZ4 cannot shrink, 4x what the table holds: it evicts only once it is full.
      const big = (i: number) => randomBytes(1500).toString('base64') + i
      for (let i = 0; i < 400; i++) await cache.set(`k${i}`, big(i))
      const seen: { type: string; detail: unknown }[] = []
      for (let i = 0; i < 50 && seen.filter((e) => e.type === 'eviction').length < 5; ) {
        const n = await stream.next()
        seen.push(n.value as { type: string; detail: unknown })
        if (n.value.type === 'eviction') i++
      }
      await stream.return()
      const sent = seen.find((e) => e.type === 'invalidation' && (e.detail as { direction: string }).direction === 'sent')
      expect(sent?.detail).toMatchObject({ direction: 'sent', keys: expect.arrayContaining([`${ns}:gone`]) })
      const evictions = seen.filter((e) => e.type === 'eviction').map((e) => (e.detail as { key: string }).key)
      expect(evictions.length).toBeGreaterThanOrEqual(5)
      for (const k of evictions) expect(k).toMatch(new RegExp(`^${ns}:k\\d+$`))
      const stats = cache.stats()
      expect(stats.l1.evictions).toBeGreaterThanOrEqual(evictions.length)
      // Every key of this cache's L1 is in its namespace: the namespace counts them all.
      expect(stats.namespaces[ns]?.evictions).toBe(stats.l1.evictions)
      expect(cache.stats().process.invalidationsSent).toBeGreaterThanOrEqual(1)
    } finally {
      await cache.close()
    }
  })

  it('health() on a Redis Cluster reports the Cluster state', async () => {
    const cache = await createCache({ redis: { cluster: inject('clusterNodes') }, namespace: 'obs-cluster' })
    try {
      const h = await cache.health()
      expect(h.l2.clusterState).toBe('ok')
      expect(h.status).not.toBe('down')
      expect(h.recommendations.filter((r) => !/latency|ping takes/.test(r))).toEqual([])
    } finally {
      await cache.close()
    }
  })
  it('counts invalidations received from another process (two caches, two buses)', async () => {
    const ns = `obs-inv-${Date.now()}`
    const a = await createCache({ redis: inject('redisUrl'), namespace: ns })
    const b = await createCache({ redis: inject('redisUrl'), namespace: ns })
    try {
      const received = b.stats().process.invalidationsReceived
      await a.set('k', 1)
      const deadline = Date.now() + 5000
      while (b.stats().process.invalidationsReceived === received && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
      expect(b.stats().process.invalidationsReceived).toBeGreaterThan(received)
      expect(a.stats().process.invalidationsSent).toBeGreaterThanOrEqual(1)
      expect(b.metrics()).toMatch(/nearcache_invalidation_messages_total\{direction="received"\} [1-9]/)
    } finally {
      await a.close()
      await b.close()
    }
  })
})
