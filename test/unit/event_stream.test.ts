import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { createCache } from '../../src/index.js'
import type { NearCache } from '../../src/index.js'
import { eventStream } from '../../src/events/event_stream.js'
import type { CacheEvent } from '../../src/events/event_stream.js'
import { uniqueNamespace } from '../helpers/backends.js'

/** The next event, or a failure after `ms`. */
async function nextWithin(it: AsyncIterator<CacheEvent>, ms = 5000): Promise<IteratorResult<CacheEvent>> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      it.next(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no event within ${ms} ms`)), ms)
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

describe('eventStream over a cache without Redis', () => {
  it('a failing background refresh (getOrSet with softTtl) arrives as an error event', async () => {
    let now = 1_000_000
    const cache = await createCache({ redis: false, clock: { now: () => now } })
    const stream = eventStream(cache)
    try {
      await cache.getOrSet('k', () => 'v1', { ttl: '1h', softTtl: '1s' })
      now += 2000
      // Stale: answered from cache, refreshed in the background, and the refresh fails.
      const v = await cache.getOrSet('k', () => Promise.reject(new Error('loader broke')), { ttl: '1h', softTtl: '1s' })
      expect(v).toBe('v1')
      const r = await nextWithin(stream)
      expect(r.done).toBe(false)
      expect(r.value?.type).toBe('error')
      expect((r.value?.detail as Error).message).toBe('loader broke')
      expect(typeof r.value?.at).toBe('number')
    } finally {
      await stream.return()
      await cache.close()
    }
  })

  it('return() ends the iteration, releases a waiting reader and unsubscribes', async () => {
    const cache = await createCache({ redis: false })
    const stream = eventStream(cache)
    const waiting = stream.next()
    await stream.return()
    expect(await waiting).toEqual({ value: undefined, done: true })
    expect(await stream.next()).toEqual({ value: undefined, done: true })
    await cache.close()
  })
})

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
