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
      expect(text).toContain('nearcache_hits_total{tier="l1",namespace="obs"} 3')
      expect(text).toContain('# TYPE nearcache_hits_total counter')
    } finally {
      await cache.close()
    }
  })

  it('health() reports reachability, the circuit and recommendations; events() yields error events', async () => {
    const cache = await createCache({ redis: inject('redisUrl'), namespace: 'obs-h' })
    try {
      const h = await cache.health()
      expect(h.status).toBe('ok')
      expect(h.circuit).toBe('closed')
      expect(JSON.stringify(h)).toMatch(/ping/i)
      const stream = cache.events()
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
})
