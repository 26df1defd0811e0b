import calculateSlot from 'cluster-key-slot'
import { Cluster, Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { createCache } from '../../src/index.js'
import { CircuitBreaker } from '../../src/l2/circuit_breaker.js'
import { RedisTier } from '../../src/l2/redis_tier.js'
import { READ_KEYS } from '../../src/l2/scripts.js'
import { StatsBlock } from '../../src/observability/stats.js'
import { uniqueNamespace } from '../helpers/backends.js'
import { failure } from '../helpers/failure.js'
import { startStandalone } from '../helpers/redis_servers.js'

/**
 * Per-node Cluster reads (clusterReadScript) on the shared 3-master Cluster: one
 * read-only script per master and flush, answers identical to per-key reads, and
 * the Redis 7 flags doing what they say. The policy runs once per batch.
 */

const meter = () => new StatsBlock(undefined, { l1: false, l2: true }).l2

/** Calls of EVALSHA each master has answered so far (INFO commandstats). */
async function evalshaCalls(masters: Redis[]): Promise<number[]> {
  return Promise.all(
    masters.map(async (m) => {
      const info = await m.info('commandstats')
      return Number(/cmdstat_evalsha:calls=(\d+)/.exec(info)?.[1] ?? 0)
    }),
  )
}

describe('per-node Cluster reads', () => {
  let cluster: Cluster
  let masters: Redis[]

  beforeAll(async () => {
    cluster = new Cluster(inject('clusterNodes'), { enableAutoPipelining: true })
    await cluster.set('warm-up', '1')
    masters = cluster.nodes('master')
  })

  afterAll(() => {
    cluster?.disconnect()
  })

  it('answers values, misses and a key of another type as per-key reads do, over 512 keys per node, with one script per master', async () => {
    const ns = uniqueNamespace('nodereads')
    const keys = Array.from({ length: 2000 }, (_, i) => `${ns}:${i}`)
    const want = keys.map((k, i) => (i % 5 === 4 ? null : Buffer.from(`value ${i} of ${k}`)))
    await Promise.all(keys.map((k, i) => (want[i] ? cluster.set(k, want[i] as Buffer) : undefined)))
    await cluster.rpush(keys[9] as string, 'a list') // i % 5 === 4: read as nil
    const owners = new Set(keys.map((k) => cluster.slots[calculateSlot(k)]?.[0]))
    expect(owners.size).toBe(3) // keys on every master, > 512 on each

    const tier = new RedisTier(cluster, false, undefined, meter(), 10_000)
    const before = await evalshaCalls(masters)
    const got = await Promise.all(keys.map((k) => tier.get(k)))
    const after = await evalshaCalls(masters)
    expect(got).toEqual(want)
    const counts = tier.nodeReader?.counts
    expect(counts?.fallbackKeys).toBe(0)
    // 2000 keys over 3 masters, at most 512 per script: 5 or 6 scripts, at least 2 on each master.
    expect(counts?.scriptBatches).toBeGreaterThanOrEqual(5)
    for (let m = 0; m < masters.length; m++) expect((after[m] as number) - (before[m] as number)).toBeGreaterThanOrEqual(2)
    // The same answers per key (batching off), and with the script off (per-slot MGETs).
    const perKey = new RedisTier(cluster, false, false, meter(), 10_000)
    expect(await Promise.all(keys.map((k) => perKey.get(k)))).toEqual(want)
    const bySlot = new RedisTier(cluster, false, true, meter(), 10_000, undefined, undefined, false)
    expect(bySlot.nodeReader).toBeUndefined()
    expect(await Promise.all(keys.map((k) => bySlot.get(k)))).toEqual(want)
  })

  it('NOSCRIPT (the script cache flushed on every master) loads the script again: reads stay on the script path', async () => {
    const ns = uniqueNamespace('noscript')
    const keys = Array.from({ length: 300 }, (_, i) => `${ns}:${i}`)
    await Promise.all(keys.map((k) => cluster.set(k, k)))
    const tier = new RedisTier(cluster, false, undefined, meter(), 10_000)
    expect((await Promise.all(keys.map((k) => tier.get(k)))).map(String)).toEqual(keys)
    await Promise.all(masters.map((m) => m.script('FLUSH')))
    const before = tier.nodeReader?.counts.scriptBatches ?? 0
    expect((await Promise.all(keys.map((k) => tier.get(k)))).map(String)).toEqual(keys)
    expect(tier.nodeReader?.counts.scriptBatches).toBe(before + 3)
    expect(tier.nodeReader?.counts.fallbackKeys).toBe(0)
    expect(tier.nodeReader?.disabled).toBe(false)
  })

  it('reads a key asked for twice in one tick once, and answers both callers with their own bytes', async () => {
    const key = `${uniqueNamespace('dup')}:k`
    await cluster.set(key, 'shared')
    const m = meter()
    const tier = new RedisTier(cluster, false, undefined, m, 10_000)
    const [a, b, c] = await Promise.all([tier.get(key), tier.get(key), tier.get(`${key}:missing`)])
    expect(a?.toString()).toBe('shared')
    expect(b?.toString()).toBe('shared')
    expect(c).toBeNull()
    expect(a).not.toBe(b)
    expect(m.latency().samples).toBeLessThanOrEqual(2) // one per batch: at most one per master, not one per caller
  })

  it('through createCache: a Cluster cache reads with the script by default and answers what it stored', async () => {
    const ns = uniqueNamespace('nodecache')
    const c = await createCache({ redis: { cluster: inject('clusterNodes') }, namespace: ns, l1: false })
    try {
      const keys = Array.from({ length: 300 }, (_, i) => `k${i}`)
      await c.setMany(keys.map((key, i) => ({ key, value: { i, key } })))
      const before = (await evalshaCalls(masters)).reduce((a, b) => a + b, 0)
      const got = await Promise.all([...keys, 'absent'].map((k) => c.get(k)))
      expect(got).toEqual([...keys.map((key, i) => ({ i, key })), undefined])
      const after = (await evalshaCalls(masters)).reduce((a, b) => a + b, 0)
      expect(after - before).toBeGreaterThanOrEqual(3)
    } finally {
      await c.close()
    }
  })

  it('a client with a keyPrefix is routed by ioredis: no script, no slots computed from unprefixed names', async () => {
    const ns = uniqueNamespace('prefixed')
    const prefixed = new Cluster(inject('clusterNodes'), { enableAutoPipelining: true, keyPrefix: `${ns}:` })
    try {
      const keys = Array.from({ length: 200 }, (_, i) => `k${i}`)
      await Promise.all(keys.map((k) => cluster.set(`${ns}:${k}`, k)))
      const tier = new RedisTier(prefixed, false, undefined, meter(), 10_000)
      expect(tier.nodeReader).toBeUndefined()
      const got = await Promise.all(keys.map((k) => tier.get(k)))
      expect(got.map((v) => v?.toString())).toEqual(keys)
    } finally {
      prefixed.disconnect()
    }
  })

  it('Redis 7 honours the flags: cross-slot keys of one node are read, a key of another node is refused, no flag means one slot', async () => {
    // Two keys of different slots that the same master serves, and one of another master.
    const ns = uniqueNamespace('flags')
    const owner = (k: string) => cluster.slots[calculateSlot(k)]?.[0] as string
    const a = `${ns}:a`
    const same: string[] = [] // other slots of a's master: one that holds a value, one that is missing
    let foreign = ''
    for (let i = 0; same.length < 2 || foreign === ''; i++) {
      const k = `${ns}:${i}`
      if (owner(k) === owner(a) && calculateSlot(k) !== calculateSlot(a) && same.length < 2) same.push(k)
      if (owner(k) !== owner(a)) foreign ||= k
    }
    const [b, none] = same as [string, string]
    await Promise.all([cluster.set(a, 'A'), cluster.set(b, 'B'), cluster.set(foreign, 'F')])
    const node = masters.find((m) => `${m.options.host}:${m.options.port}` === owner(a)) as Redis
    const reply = (await READ_KEYS.run(node, [], [a, b, none])) as unknown[]
    expect(reply.map((v) => (v === null ? null : String(v)))).toEqual(['A', 'B', null])
    await expect(READ_KEYS.run(node, [], [a, foreign])).rejects.toThrow(/non local key/)
    // The same script without allow-cross-slot-keys may read one slot only.
    const oneSlot = `#!lua flags=no-writes\nlocal out = {}\nfor i = 1, #ARGV do out[i] = redis.call('MGET', ARGV[i])[1] end\nreturn out`
    await expect(node.eval(oneSlot, 0, a, b)).rejects.toThrow(/same slot/)
    // no-writes is enforced: a flagged script that writes is refused.
    await expect(node.eval(`#!lua flags=no-writes,allow-cross-slot-keys\nreturn redis.call('SET', ARGV[1], 'x')`, 0, a)).rejects.toThrow(/Write commands are not allowed/)
    expect(await cluster.get(a)).toBe('A')
  })
})

describe('the L2 policy runs once per batch', () => {
  it('a failed batch of 500 gets (one MGET) is one breaker failure, one deadline, one gate slot', async () => {
    const server = await startStandalone()
    const admin = new Redis(server.url)
    const client = new Redis(server.url)
    try {
      await client.ping()
      const breaker = new CircuitBreaker(2, 600_000)
      // A client nearcache did not create: the policy's deadline (300 ms) applies, once per batch.
      const tier = new RedisTier(client, false, undefined, meter(), 10_000, breaker, 300)
      // Every command held for 10 s (CLIENT UNPAUSE would be held too: the pause just runs out).
      await admin.call('CLIENT', 'PAUSE', '10000', 'ALL')
      const first = await Promise.all(Array.from({ length: 500 }, (_, i) => failure(tier.get(`k${i}`))))
      for (const e of first) expect(e.code).toBe('E_L2_UNAVAILABLE')
      expect(first[0]?.message).toMatch(/timed out after 300 ms/)
      expect(new Set(first).size).toBe(1) // one failure, every caller told
      // Threshold 2: per-key counting would have opened the breaker after the first batch.
      expect(breaker.state).toBe('closed')
      expect(tier.policy.gate.active).toBe(0)
      const second = await Promise.all(Array.from({ length: 10 }, (_, i) => failure(tier.get(`k${i}`))))
      expect(second[0]?.message).toMatch(/timed out/)
      expect(breaker.state).toBe('open')
      const fast = await failure(tier.get('k0'))
      expect(fast.message).toMatch(/circuit open/)
    } finally {
      admin.disconnect()
      client.disconnect()
      await server.stop()
    }
  })
})
