import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tagKey } from '../../src/keys.js'
import { CircuitBreaker } from '../../src/l2/circuit_breaker.js'
import { RedisTier } from '../../src/l2/redis_tier.js'
import { StatsBlock } from '../../src/observability/stats.js'
import { startStandalone } from '../helpers/redis_servers.js'
import type { RedisServerHandle } from '../helpers/redis_servers.js'
import { failure } from '../helpers/failure.js'

/**
 * One L2 failure policy for every Redis command, against a real server: the
 * creation of a missing tag epoch (counters 'init', a Lua script that writes) is
 * bounded by the deadline and counted by the breaker like every other call.
 * `CLIENT PAUSE <ms> WRITE` holds the server's write commands (scripts included)
 * while reads go on, so the read half of 'init' answers and the create half hangs.
 */


describe('L2 failure policy', () => {
  let server: RedisServerHandle
  let admin: Redis
  let client: Redis

  beforeAll(async () => {
    server = await startStandalone()
    admin = new Redis(server.url)
    client = new Redis(server.url)
  })

  afterAll(async () => {
    admin?.disconnect()
    client?.disconnect()
    await server?.stop()
  })

  it("creating a missing tag epoch ('init') is under the deadline and the breaker", async () => {
    const ns = `policy-${process.pid}`
    const existing = tagKey(ns, 'existing')
    const missing = tagKey(ns, 'missing')
    await admin.set(existing, '41')
    const breaker = new CircuitBreaker(1, 600_000)
    // A client nearcache did not create: the policy's deadline (2 s) applies.
    const tier = new RedisTier(client, false, false, new StatsBlock(undefined, { l1: false, l2: true }).l2, 10, breaker, 2000)
    // Writes held for 10 s, five deadlines: the call must end by its deadline, not by the pause ending.
    await admin.call('CLIENT', 'PAUSE', '10000', 'WRITE')
    try {
      // Reads are not held: the read half works, so what follows is about the create half.
      expect(await tier.counters([existing], 'read')).toEqual([41])
      expect(breaker.state).toBe('closed')

      const timedOut = await failure(tier.counters([existing, missing], 'init'))
      expect(timedOut.code).toBe('E_L2_UNAVAILABLE')
      expect(timedOut.message).toMatch(/reading tag epochs.*timed out after 2000 ms/)
      // The failure counted: the breaker (threshold 1) is open, and the next call fails fast.
      expect(breaker.state).toBe('open')
      const fast = await failure(tier.counters([missing], 'init'))
      expect(fast.message).toMatch(/circuit open/)
      // The gate slot was given back.
      expect(tier.policy.gate.active).toBe(0)
    } finally {
      await admin.call('CLIENT', 'UNPAUSE')
    }
    // Once writes flow again, a closed breaker lets 'init' create the counter.
    const healthy = new RedisTier(client, false, false, new StatsBlock(undefined, { l1: false, l2: true }).l2, 10, new CircuitBreaker(1, 600_000), 5000)
    const [created] = await healthy.counters([missing], 'init')
    expect(Number.isSafeInteger(created)).toBe(true)
    expect(await admin.get(missing)).toBe(String(created))
  })
})
