import { afterEach, describe, expect, it } from 'vitest'
import type { NearCache } from '../../src/index.js'
import { allBackends, cacheOn } from '../helpers/backends.js'
import { ManualClock } from '../helpers/clock.js'

/** Grace (stale-if-error), soft TTL (stale-while-revalidate) and early refresh, on an injected clock. */
describe.each(allBackends)('getOrSet freshness on $name', (backend) => {
  const open: NearCache[] = []
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.close()))
  })
  const make = async (clock: ManualClock) => {
    const c = await cacheOn(backend, { clock })
    open.push(c)
    return c
  }
  const settle = () => new Promise((r) => setTimeout(r, 30))

  it('grace: an expired value stands in when the loader fails, and only within its grace', async () => {
    const clock = new ManualClock()
    const c = await make(clock)
    const opts = { ttl: '1m', grace: '10m' }
    expect(await c.getOrSet('k', () => 'v1', opts)).toBe('v1')
    clock.advance(61_000)
    expect(await c.get('k')).toBeUndefined() // expired for plain reads
    const failing = () => Promise.reject(new Error('source down'))
    expect(await c.getOrSet('k', failing, opts)).toBe('v1')
    // A working loader replaces it.
    expect(await c.getOrSet('k', () => 'v2', opts)).toBe('v2')
    clock.advance(61_000 + 10 * 60_000)
    await expect(c.getOrSet('k', failing, opts)).rejects.toThrow('source down')
  })

  it('soft TTL: after it the old value is returned at once and one background refresh runs', async () => {
    const clock = new ManualClock()
    const c = await make(clock)
    let calls = 0
    const loader = async () => {
      calls++
      await new Promise((r) => setTimeout(r, 20))
      return `v${calls}`
    }
    const opts = { ttl: '1h', softTtl: '1m' }
    expect(await c.getOrSet('k', loader, opts)).toBe('v1')
    clock.advance(30_000)
    expect(await c.getOrSet('k', loader, opts)).toBe('v1')
    expect(calls).toBe(1)
    clock.advance(31_000)
    const during = await Promise.all(Array.from({ length: 20 }, () => c.getOrSet('k', loader, opts)))
    expect(during.every((v) => v === 'v1')).toBe(true)
    await settle()
    expect(calls).toBe(2) // one refresh for 20 stale reads
    expect(await c.getOrSet('k', loader, opts)).toBe('v2')
  })

  it('a failing background refresh keeps the value and reports on the error event', async () => {
    const clock = new ManualClock()
    const c = await make(clock)
    const errors: Error[] = []
    c.on('error', (e) => errors.push(e))
    await c.getOrSet('k', () => 'v1', { ttl: '1h', softTtl: '1m' })
    clock.advance(120_000)
    expect(await c.getOrSet('k', () => Promise.reject(new Error('refresh failed')), { ttl: '1h', softTtl: '1m' })).toBe('v1')
    await settle()
    expect(errors.map((e) => e.message)).toEqual(['refresh failed'])
    expect(await c.get('k')).toBe('v1')
  })

  it('early refresh: near expiry, hot keys are refreshed before they expire', async () => {
    const clock = new ManualClock()
    const c = await make(clock)
    let calls = 0
    const loader = () => `v${++calls}`
    await c.getOrSet('k', loader, { ttl: 100_000, earlyRefresh: 1 })
    // Far from expiry: practically never refreshes.
    for (let i = 0; i < 50; i++) await c.getOrSet('k', loader, { ttl: 100_000, earlyRefresh: 1 })
    await settle()
    expect(calls).toBe(1)
    // 0.1% of the TTL left: a refresh is all but certain within a few reads.
    clock.advance(99_900)
    for (let i = 0; i < 50 && calls === 1; i++) {
      await c.getOrSet('k', loader, { ttl: 100_000, earlyRefresh: 1 })
      await settle()
    }
    expect(calls).toBe(2)
  })

  it('rejects bad freshness options', async () => {
    const c = await make(new ManualClock())
    await expect(c.getOrSet('k', () => 1, { grace: -1 })).rejects.toMatchObject({ code: 'E_INVALID_OPTION' })
    await expect(c.getOrSet('k', () => 1, { earlyRefresh: 0 })).rejects.toMatchObject({ code: 'E_INVALID_OPTION' })
  })
})
