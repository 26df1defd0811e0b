// eventStream (src/observability/event_stream.ts) over caches without Redis and over a
// fake source. The cases that plant entries in a real Redis are in
// test/integration/event_stream_redis.test.ts.
import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import { CacheError, createCache } from '../../src/index.js'
import { CACHE_EVENT_TYPES, eventStream, eventToJSON } from '../../src/observability/event_stream.js'
import type { CacheEvent, InvalidationNotice } from '../../src/observability/event_stream.js'
import { nextWithin } from '../helpers/next_event.js'

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

describe('eventStream over a fake source (an EventEmitter)', () => {
  const counts = (e: EventEmitter) => Object.fromEntries(CACHE_EVENT_TYPES.map((t) => [t, e.listenerCount(t)]))

  it('subscribes to all four event types by default and delivers each with its detail, in order', async () => {
    const source = new EventEmitter()
    const stream = eventStream(source)
    expect(counts(source)).toEqual({ error: 1, circuit: 1, eviction: 1, invalidation: 1 })
    const err = new Error('boom')
    const notice: InvalidationNotice = { direction: 'received', keys: ['app:k'], prefixes: [], publisher: 'p1' }
    // A subscribed stream is an 'error' listener: emitting 'error' does not throw.
    source.emit('error', err)
    source.emit('circuit', 'open')
    source.emit('eviction', { key: 'app:user:1' })
    source.emit('invalidation', notice)
    const got: CacheEvent[] = []
    for (let i = 0; i < 4; i++) got.push((await nextWithin(stream)).value as CacheEvent)
    expect(got.map((e) => e.type)).toEqual(['error', 'circuit', 'eviction', 'invalidation'])
    expect(got.map((e) => e.detail)).toEqual([err, 'open', { key: 'app:user:1' }, notice])
    for (const e of got) expect(typeof e.at).toBe('number')
    // A reader waiting before the event arrives gets it too.
    const waiting = stream.next()
    source.emit('eviction', { key: 'app:user:2' })
    expect((await waiting).value).toMatchObject({ type: 'eviction', detail: { key: 'app:user:2' } })
    await stream.return()
    expect(counts(source)).toEqual({ error: 0, circuit: 0, eviction: 0, invalidation: 0 })
  })

  it('types selects what is subscribed; without error the source has no error listener', async () => {
    const source = new EventEmitter()
    const stream = eventStream(source, { types: ['eviction', 'invalidation', 'eviction'] })
    expect(counts(source)).toEqual({ error: 0, circuit: 0, eviction: 1, invalidation: 1 })
    source.emit('circuit', 'open')
    source.emit('eviction', { key: 'a:1' })
    expect(stream.buffered).toBe(1)
    expect((await nextWithin(stream)).value).toMatchObject({ type: 'eviction', detail: { key: 'a:1' } })
    await stream.return()
    expect(counts(source)).toEqual({ error: 0, circuit: 0, eviction: 0, invalidation: 0 })

    const errorsOnly = eventStream(source, { types: ['error'] })
    expect(counts(source)).toEqual({ error: 1, circuit: 0, eviction: 0, invalidation: 0 })
    source.emit('error', new Error('counted and delivered'))
    expect((await nextWithin(errorsOnly)).value?.type).toBe('error')
    await errorsOnly.return()
  })

  it('rejects unknown, empty or malformed types with a RangeError, subscribing to nothing', () => {
    const source = new EventEmitter()
    // @ts-expect-error an unknown type
    expect(() => eventStream(source, { types: ['eviction', 'evictions'] })).toThrow(RangeError)
    expect(() => eventStream(source, { types: [] })).toThrow(/at least one/)
    // @ts-expect-error not an array
    expect(() => eventStream(source, { types: 'eviction' })).toThrow(RangeError)
    expect(counts(source)).toEqual({ error: 0, circuit: 0, eviction: 0, invalidation: 0 })
  })

  it('a full buffer keeps the newest events, in order, also across wrap-arounds', async () => {
    const source = new EventEmitter()
    const stream = eventStream(source, { maxBuffer: 3, types: ['eviction'] })
    const evict = (n: number) => source.emit('eviction', { key: `k${n}` })
    const read = async (n: number) => {
      const keys: string[] = []
      for (let i = 0; i < n; i++) keys.push(((await nextWithin(stream)).value?.detail as { key: string }).key)
      return keys
    }
    for (let i = 0; i < 10; i++) evict(i)
    expect(stream.dropped).toBe(7)
    expect(stream.buffered).toBe(3)
    expect(await read(2)).toEqual(['k7', 'k8'])
    evict(10)
    evict(11)
    evict(12)
    expect(stream.dropped).toBe(8)
    expect(await read(3)).toEqual(['k10', 'k11', 'k12'])
    expect(stream.buffered).toBe(0)
    await stream.return()
  })
})

describe('eventToJSON', () => {
  const at = 1_790_000_000_000
  const roundTrip = (e: CacheEvent) => JSON.parse(JSON.stringify(eventToJSON(e))) as unknown

  it('gives each event type its JSON-safe form', () => {
    const coded = new CacheError('E_CORRUPT_ENTRY', 'entry app:x is corrupt')
    expect(roundTrip({ type: 'error', at, detail: coded })).toEqual({ type: 'error', at, code: 'E_CORRUPT_ENTRY', message: 'entry app:x is corrupt' })
    expect(roundTrip({ type: 'error', at, detail: new Error('plain') })).toEqual({ type: 'error', at, message: 'plain' })
    expect(roundTrip({ type: 'circuit', at, detail: 'half-open' })).toEqual({ type: 'circuit', at, state: 'half-open' })
    expect(roundTrip({ type: 'eviction', at, detail: { key: 'app:user:1' } })).toEqual({ type: 'eviction', at, key: 'app:user:1' })
    const sent: InvalidationNotice = { direction: 'sent', keys: ['app:a', '__nc|t|app|tag'], prefixes: ['app:p:'] }
    expect(roundTrip({ type: 'invalidation', at, detail: sent })).toEqual({ type: 'invalidation', at, direction: 'sent', keys: ['app:a', '__nc|t|app|tag'], prefixes: ['app:p:'] })
    const received: InvalidationNotice = { direction: 'received', keys: ['app:a'], prefixes: [], publisher: 'b0c1' }
    expect(roundTrip({ type: 'invalidation', at, detail: received })).toEqual({ type: 'invalidation', at, direction: 'received', keys: ['app:a'], prefixes: [], publisher: 'b0c1' })
    const flush: InvalidationNotice = { direction: 'flush', keys: [], prefixes: [''], reason: 'gap' }
    expect(roundTrip({ type: 'invalidation', at, detail: flush })).toEqual({ type: 'invalidation', at, direction: 'flush', keys: [], prefixes: [''], reason: 'gap' })
  })

  it('copies only plain fields, so odd details cannot break JSON.stringify', () => {
    const cyclic: Record<string, unknown> = { key: 'app:k' }
    cyclic.self = cyclic
    expect(eventToJSON({ type: 'eviction', at, detail: cyclic })).toEqual({ type: 'eviction', at, key: 'app:k' })
    const err = Object.assign(new Error('with extras'), { code: 42, big: 10n })
    expect(roundTrip({ type: 'error', at, detail: err })).toEqual({ type: 'error', at, message: 'with extras' })
    expect(roundTrip({ type: 'error', at, detail: 'a string was thrown' })).toEqual({ type: 'error', at, message: 'a string was thrown' })
  })
})
