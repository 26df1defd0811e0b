// eventStream (src/observability/event_stream.ts) over a cache backed by a real
// Redis: corrupt entries planted behind the cache's back arrive as error events.
// The Redis-free cases are in test/unit/event_stream.test.ts.
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { createCache } from '../../src/index.js'
import type { NearCache } from '../../src/index.js'
import { eventStream } from '../../src/observability/event_stream.js'
import { uniqueNamespace } from '../helpers/backends.js'
import { nextWithin } from '../helpers/next_event.js'

describe('eventStream over a cache with Redis', () => {
  let cache: NearCache
  let raw: Redis
  const ns = uniqueNamespace('events')

  beforeAll(async () => {
    cache = await createCache({ redis: inject('redisUrl'), namespace: ns, l1: false })
    raw = new Redis(inject('redisUrl'))
  })
  afterAll(async () => {
    await cache.close()
    await raw.quit()
  })

  it('a corrupt entry read by get arrives as an error event naming the key', async () => {
    await raw.set(`${ns}:garbage`, 'this is not a nearcache entry')
    const stream = eventStream(cache)
    try {
      expect(await cache.get('garbage')).toBeUndefined()
      const r = await nextWithin(stream)
      expect(r.value?.type).toBe('error')
      expect(String((r.value?.detail as Error).message)).toContain(`${ns}:garbage`)
      // Left with for-await's break: return() runs.
    } finally {
      await stream.return()
    }
  })

  it('a full buffer drops the oldest events and counts them; for-await break unsubscribes', async () => {
    const keys = ['g1', 'g2', 'g3', 'g4', 'g5']
    for (const k of keys) await raw.set(`${ns}:${k}`, `garbage ${k}`)
    const stream = eventStream(cache, { maxBuffer: 2 })
    for (const k of keys) await cache.get(k)
    expect(stream.dropped).toBe(3)
    expect(stream.buffered).toBe(2)
    const seen: string[] = []
    for await (const e of stream) {
      seen.push(String((e.detail as Error).message))
      if (seen.length === 2) break
    }
    expect(seen[0]).toContain(`${ns}:g4`)
    expect(seen[1]).toContain(`${ns}:g5`)
    // Unsubscribed: later errors no longer reach the stream.
    await cache.get('g1')
    expect(stream.buffered).toBe(0)
    expect(stream.dropped).toBe(3)
    expect(await stream.next()).toEqual({ value: undefined, done: true })
  })

  it('rejects a buffer size under 1', () => {
    expect(() => eventStream(cache, { maxBuffer: 0 })).toThrow(/maxBuffer/)
  })
})
