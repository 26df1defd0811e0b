import { afterEach, describe, expect, it, vi } from 'vitest'
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
  /** Waits (polling, with a deadline far beyond any machine's speed) until `check` passes. */
  const eventually = (check: () => unknown) => vi.waitFor(check, { timeout: 10_000, interval: 5 })

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
    let release!: () => void
    const held = new Promise<void>((r) => (release = r))
    // The first load answers at once; the background refresh is held until the test releases it.
    const loader = async () => {
      const n = ++calls
      if (n > 1) await held
      return `v${n}`
    }
    const opts = { ttl: '1h', softTtl: '1m' }
    expect(await c.getOrSet('k', loader, opts)).toBe('v1')
    clock.advance(30_000)
    expect(await c.getOrSet('k', loader, opts)).toBe('v1')
    expect(calls).toBe(1)
    clock.advance(31_000)
    const during = await Promise.all(Array.from({ length: 20 }, () => c.getOrSet('k', loader, opts)))
    expect(during).toEqual(Array(20).fill('v1'))
    // All 20 stale reads happened while the refresh was still running: it started once.
    await eventually(() => expect(calls).toBe(2))
    release()
    await eventually(async () => expect(await c.get('k')).toBe('v2'))
    expect(calls).toBe(2) // one refresh for 20 stale reads
    expect(await c.getOrSet('k', loader, opts)).toBe('v2')
    expect(calls).toBe(2)
  })

  it('a failing background refresh keeps the value and reports on the error event', async () => {
    const clock = new ManualClock()
    const c = await make(clock)
    const errors: Error[] = []
    const reported = new Promise<void>((resolve) =>
      c.on('error', (e) => {
        errors.push(e)
        resolve()
      }),
    )
    await c.getOrSet('k', () => 'v1', { ttl: '1h', softTtl: '1m' })
    clock.advance(120_000)
    expect(await c.getOrSet('k', () => Promise.reject(new Error('refresh failed')), { ttl: '1h', softTtl: '1m' })).toBe('v1')
    await reported
    expect(errors.map((e) => e.message)).toEqual(['refresh failed'])
    expect(await c.get('k')).toBe('v1')
  })

  it('early refresh: near expiry, hot keys are refreshed before they expire', async () => {
    const clock = new ManualClock()
    const c = await make(clock)
    let calls = 0
    const loader = () => `v${++calls}`
    const opts = { ttl: 100_000, earlyRefresh: 1 }
    await c.getOrSet('k', loader, opts)
    // Far from expiry: a refresh would need Math.random() <= e^-100, so none starts (the loader runs as a refresh starts).
    for (let i = 0; i < 50; i++) expect(await c.getOrSet('k', loader, opts)).toBe('v1')
    expect(calls).toBe(1)
    // 0.1% of the TTL left: each read starts a refresh with probability e^-0.1 (~90%); read until one has.
    clock.advance(99_900)
    await eventually(async () => {
      expect(await c.getOrSet('k', loader, opts)).toBe('v1')
      expect(calls).toBe(2)
    })
    // The refresh lands; it restarted the TTL, so no further refresh follows.
    await eventually(async () => expect(await c.get('k')).toBe('v2'))
    for (let i = 0; i < 50; i++) await c.getOrSet('k', loader, opts)
    expect(calls).toBe(2)
  })

  it('rejects bad freshness options', async () => {
    const c = await make(new ManualClock())
    await expect(c.getOrSet('k', () => 1, { grace: -1 })).rejects.toMatchObject({ code: 'E_INVALID_OPTION' })
    await expect(c.getOrSet('k', () => 1, { earlyRefresh: 0 })).rejects.toMatchObject({ code: 'E_INVALID_OPTION' })
  })
})
