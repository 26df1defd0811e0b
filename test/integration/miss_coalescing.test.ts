import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { initHash } from '../../wasm/hash.js'
import { createCache } from '../../src/index.js'
import type { NearCache } from '../../src/index.js'
import { SharedTable } from '../../src/l1/shared_table.js'
import { StatsBlock } from '../../src/observability/stats.js'
import { TieredStore } from '../../src/tiers/tiered.js'
import type { Tier, TierWrite } from '../../src/tiers/tier.js'
import { startStandalone } from '../helpers/redis_servers.js'
import type { RedisServerHandle } from '../helpers/redis_servers.js'
import { uniqueNamespace } from '../helpers/backends.js'

/**
 * Concurrent `get` misses of one key in one thread share one L2 read (issue 13):
 * hundreds of callers whose L1 copy expired together must not all go to Redis. A
 * caller joins a read in flight only if nothing that could make that read's answer
 * stale happened since it started: a write, a delete, an invalidation (local or
 * from another process) or a change of trust starts a read of its own.
 *
 * The first part drives TieredStore over a real SharedTable and an L2 whose reads
 * the test answers by hand, so "in flight" is exact; the second counts the reads a
 * real Redis server receives.
 */

beforeAll(async () => {
  await initHash()
})

/** An L2 whose reads stay pending until the test releases them (with what it holds then). */
class HeldL2 {
  readonly reads: { key: string; resolve: (v: Buffer | null) => void; reject: (e: unknown) => void }[] = []
  readonly store = new Map<string, Buffer>()
  get(key: string): Promise<Buffer | null> {
    return new Promise((resolve, reject) => this.reads.push({ key, resolve, reject }))
  }
  async set(writes: TierWrite[]): Promise<void> {
    for (const w of writes) this.store.set(w.key, w.bytes)
  }
  /** Answers read `i` with `value` (default: what the store holds now). */
  release(i: number, value: Buffer | null | undefined = undefined): void {
    const r = this.reads[i]!
    r.resolve(value === undefined ? (this.store.get(r.key) ?? null) : value)
  }
}

const clock = { now: () => Date.now() }
const tick = () => new Promise<void>((r) => setImmediate(r))

function tiered(l2: HeldL2, table = SharedTable.create(1 << 20)): { tier: TieredStore; table: SharedTable } {
  const meter = new StatsBlock(undefined, { l1: true, l2: true }).l1
  const tier = new TieredStore(table, l2 as unknown as Tier, clock, { negativeTtl: 0, l1Ttl: 60_000, maxEntryBytes: 1 << 16 }, meter)
  return { tier, table }
}

describe('TieredStore.get: concurrent misses of one key', () => {
  it('share one L2 read, joined over several ticks; every caller gets the value, L1 is filled once', async () => {
    const l2 = new HeldL2()
    l2.store.set('ns:k', Buffer.from('v1'))
    const { tier, table } = tiered(l2)
    const gets: Promise<Buffer | null>[] = []
    for (let t = 0; t < 5; t++) {
      for (let j = 0; j < 20; j++) gets.push(tier.get('ns:k'))
      await tick()
    }
    expect(l2.reads).toHaveLength(1)
    l2.release(0)
    const answers = await Promise.all(gets)
    expect(answers.map((b) => b?.toString())).toEqual(gets.map(() => 'v1'))
    // Each caller has bytes of its own.
    expect(new Set(answers).size).toBe(answers.length)
    expect(Buffer.from(table.lookup('ns:k', clock.now()) ?? []).toString()).toBe('v1')
  })

  it('other keys are not joined', async () => {
    const l2 = new HeldL2()
    const { tier } = tiered(l2)
    const a = tier.get('ns:a')
    const b = tier.get('ns:b')
    expect(l2.reads.map((r) => r.key)).toEqual(['ns:a', 'ns:b'])
    l2.release(0)
    l2.release(1)
    expect(await Promise.all([a, b])).toEqual([null, null])
  })

  it('a set() between: the caller that awaited it starts a read of its own and gets its write', async () => {
    const l2 = new HeldL2()
    l2.store.set('ns:k', Buffer.from('old'))
    const { tier } = tiered(l2)
    const before = tier.get('ns:k')
    await tick()
    await tier.set([{ key: 'ns:k', bytes: Buffer.from('new'), px: undefined }])
    const after = tier.get('ns:k')
    expect(l2.reads).toHaveLength(2)
    // The first read predates the write: it answers what Redis held then.
    l2.release(0, Buffer.from('old'))
    l2.release(1)
    expect((await before)?.toString()).toBe('old')
    expect((await after)?.toString()).toBe('new')
  })

  it('a remote invalidation between (what the bus does: invalidateRoots) starts a second read', async () => {
    const l2 = new HeldL2()
    l2.store.set('ns:k', Buffer.from('old'))
    const { tier, table } = tiered(l2)
    const before = tier.get('ns:k')
    table.invalidateRoots(['ns:'])
    l2.store.set('ns:k', Buffer.from('new'))
    const after = tier.get('ns:k')
    expect(l2.reads).toHaveLength(2)
    l2.release(0, Buffer.from('old'))
    l2.release(1)
    expect((await before)?.toString()).toBe('old')
    expect((await after)?.toString()).toBe('new')
    // The stale read's fill was refused; the new one landed.
    expect(Buffer.from(table.lookup('ns:k', clock.now()) ?? []).toString()).toBe('new')
  })

  it('a local delete or a change of trust between starts a second read', async () => {
    const l2 = new HeldL2()
    const { tier, table } = tiered(l2)
    const first = tier.get('ns:k')
    table.take('ns:k', clock.now())
    const second = tier.get('ns:k')
    table.setTrusted(false)
    table.setTrusted(true)
    const third = tier.get('ns:k')
    const joined = tier.get('ns:k')
    expect(l2.reads).toHaveLength(3)
    for (let i = 0; i < 3; i++) l2.release(i)
    expect(await Promise.all([first, second, third, joined])).toEqual([null, null, null, null])
  })

  it('an L2 error reaches every caller that joined, and the next get reads again', async () => {
    const l2 = new HeldL2()
    l2.store.set('ns:k', Buffer.from('v'))
    const { tier } = tiered(l2)
    const gets = Array.from({ length: 10 }, () => tier.get('ns:k'))
    const boom = new Error('L2 down')
    l2.reads[0]!.reject(boom)
    const settled = await Promise.allSettled(gets)
    expect(settled.every((s) => s.status === 'rejected' && s.reason === boom)).toBe(true)
    const again = tier.get('ns:k')
    expect(l2.reads).toHaveLength(2)
    l2.release(1)
    expect((await again)?.toString()).toBe('v')
  })

  it('a read that settled is not joined: a later miss reads again', async () => {
    const l2 = new HeldL2()
    const { tier } = tiered(l2)
    const first = tier.get('ns:gone')
    l2.release(0)
    expect(await first).toBeNull()
    const second = tier.get('ns:gone')
    expect(l2.reads).toHaveLength(2)
    l2.release(1)
    expect(await second).toBeNull()
  })
})

describe('cache.get on a real Redis: concurrent misses of one key', () => {
  let server: RedisServerHandle
  let raw: Redis
  const open: NearCache[] = []
  beforeAll(async () => {
    server = await startStandalone()
    raw = new Redis(server.url)
  })
  afterAll(async () => {
    await Promise.all(open.splice(0).map((c) => c.close()))
    raw?.disconnect()
    await server?.stop()
  })

  /** Read commands the server has run since the last CONFIG RESETSTAT. */
  async function reads(): Promise<number> {
    const info = await raw.info('commandstats')
    let n = 0
    for (const m of info.matchAll(/^cmdstat_(get|mget|getex|eval|evalsha|eval_ro|evalsha_ro|fcall|fcall_ro):calls=(\d+)/gm)) n += Number(m[2])
    return n
  }

  it('callers that miss while the server is paused share one read; all get the value', async () => {
    const ns = uniqueNamespace('coalesce')
    const writer = await createCache({ redis: server.url, namespace: ns, l1: false, invalidation: false })
    open.push(writer)
    await writer.set('hot', { n: 42 })
    const cache = await createCache({ redis: server.url, namespace: ns })
    open.push(cache)
    await cache.get('warm-up-other-key')
    await raw.config('RESETSTAT')
    // While the server is paused the first read stays in flight; callers of later ticks join it.
    await raw.call('CLIENT', 'PAUSE', '500', 'ALL')
    const gets: Promise<unknown>[] = []
    for (let t = 0; t < 10; t++) {
      for (let j = 0; j < 10; j++) gets.push(cache.get('hot'))
      await tick()
    }
    const values = await Promise.all(gets)
    expect(values).toEqual(gets.map(() => ({ n: 42 })))
    expect(await reads()).toBe(1)
  })
})
