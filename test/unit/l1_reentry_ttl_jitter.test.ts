import { beforeAll, describe, expect, it } from 'vitest'
import { initHash } from '../../wasm/hash.js'
import { SharedTable } from '../../src/l1/shared_table.js'
import { StatsBlock } from '../../src/observability/stats.js'
import { TieredStore } from '../../src/tiers/tiered.js'
import type { Tier, TierWrite } from '../../src/tiers/tier.js'
import { ManualClock } from '../helpers/clock.js'

/**
 * l1.ttlJitter (issue 13): L1 copies filled at one moment must not all expire at one
 * moment. Each copy's l1.ttl cap is shortened by a random share up to ttlJitter
 * percent: every copy lives at least ttl·(1−j), never more than ttl; 0 = exactly ttl.
 * Judged by behaviour: which copies the table still answers as the clock moves.
 */

beforeAll(async () => {
  await initHash()
})

const TTL = 10_000
const N = 1000

/** An L2 that holds every key (plain bytes: no envelope, so no expiry of their own). */
const l2 = {
  get: async (key: string) => Buffer.from(`v:${key}`),
  mget: async (keys: string[]) => keys.map((k) => Buffer.from(`v:${k}`)),
  set: async (_writes: TierWrite[]) => {},
} as unknown as Tier

function setup(ttlJitter: number, random?: () => number) {
  const clock = new ManualClock(1_000_000)
  const table = SharedTable.create(4 << 20)
  const meter = new StatsBlock(undefined, { l1: true, l2: true }).l1
  const tier = new TieredStore(table, l2, clock, { negativeTtl: 0, l1Ttl: TTL, maxEntryBytes: 1 << 16, ttlJitter, ...(random ? { random } : {}) }, meter)
  const keys = Array.from({ length: N }, (_, i) => `ns:k${i}`)
  const t0 = clock.now()
  /** How many of the keys L1 still answers `ms` after they were filled. */
  const alive = (ms: number) => keys.filter((k) => table.lookup(k, t0 + ms) !== null).length
  return { tier, table, clock, keys, alive }
}

describe('l1.ttlJitter', () => {
  it('spreads the deadlines of copies filled together within [ttl·(1−j), ttl], never above ttl (fills from reads)', async () => {
    const { tier, keys, alive } = setup(20)
    await tier.mget(keys)
    expect(alive(0)).toBe(N)
    expect(alive(TTL * 0.8)).toBe(N)
    // Halfway through the jitter window roughly half have expired: not in lockstep.
    const mid = alive(TTL * 0.9)
    expect(mid).toBeGreaterThan(N * 0.3)
    expect(mid).toBeLessThan(N * 0.7)
    expect(alive(TTL)).toBe(0)
  })

  it('applies to copies stored by writes too', async () => {
    const { tier, keys, alive } = setup(50)
    await tier.set(keys.map((key) => ({ key, bytes: Buffer.from('w'), px: undefined })))
    expect(alive(TTL * 0.5)).toBe(N)
    const mid = alive(TTL * 0.75)
    expect(mid).toBeGreaterThan(N * 0.3)
    expect(mid).toBeLessThan(N * 0.7)
    expect(alive(TTL)).toBe(0)
  })

  it('at the extremes of the random draw: the shortest copy lives just over ttl·(1−j), the longest exactly ttl', async () => {
    const short = setup(20, () => 0.999999)
    await short.tier.mget(short.keys)
    expect(short.alive(TTL * 0.8)).toBe(N)
    expect(short.alive(TTL * 0.8 + 1)).toBe(0)
    const long = setup(20, () => 0)
    await long.tier.mget(long.keys)
    expect(long.alive(TTL - 1)).toBe(N)
    expect(long.alive(TTL)).toBe(0)
  })

  it('0 = every copy expires exactly at l1.ttl', async () => {
    const { tier, keys, alive } = setup(0)
    await tier.mget(keys)
    expect(alive(TTL - 1)).toBe(N)
    expect(alive(TTL)).toBe(0)
  })

  it('the cache built from default options jitters its L1 copies (l1.ttlJitter 20 reaches the L1 tier)', async () => {
    const { resolveOptions } = await import('../../src/options/options.js')
    const { composeCacheTier } = await import('../../src/tiers/compose.js')
    const clock = new ManualClock(1_000_000)
    const opts = resolveOptions({ redis: false, clock })
    expect(opts.l1 && opts.l1.ttlJitter).toBe(20)
    const table = SharedTable.create(4 << 20)
    const { tier } = composeCacheTier(opts, table, l2, new StatsBlock(undefined, { l1: true, l2: true }))
    const keys = Array.from({ length: N }, (_, i) => `ns:k${i}`)
    await tier.mget(keys)
    const ttl = opts.l1 ? opts.l1.ttl : 0
    const alive = (ms: number) => keys.filter((k) => table.lookup(k, 1_000_000 + ms) !== null).length
    expect(alive(ttl * 0.8)).toBe(N)
    expect(alive(ttl * 0.9)).toBeLessThan(N * 0.7)
    expect(alive(ttl * 0.9)).toBeGreaterThan(N * 0.3)
    expect(alive(ttl)).toBe(0)
  })
})
