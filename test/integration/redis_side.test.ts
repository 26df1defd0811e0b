import { Cluster, Redis } from 'ioredis'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { CacheError, createCache } from '../../src/index.js'
import type { NearCache } from '../../src/index.js'
import { redisBackends, uniqueNamespace } from '../helpers/backends.js'
import { getFreePort } from '../helpers/free_port.js'
import { startStandalone } from '../helpers/redis_servers.js'

/** What only a real Redis shows: stored bytes, foreign values, handed clients, outages. */
describe.each(redisBackends)('Redis side on $name', (backend) => {
  const raw = backend.rawClient() as Redis | Cluster
  afterAll(() => raw.disconnect())

  const withCache = async (fn: (c: NearCache, ns: string) => Promise<void>, opts = {}) => {
    const ns = uniqueNamespace(backend.name)
    const c = await createCache({ redis: backend.redisOption(), namespace: ns, ...opts })
    try {
      await fn(c, ns)
    } finally {
      await c.close()
    }
  }

  it('stores entries at <namespace>:<key> as envelopes, compressed when large', async () => {
    await withCache(async (c, ns) => {
      await c.set('small', 'x')
      await c.set('large', 'abc'.repeat(10_000), { ttl: '1h' })
      const small = (await raw.getBuffer(`${ns}:small`)) as Buffer
      const large = (await raw.getBuffer(`${ns}:large`)) as Buffer
      expect(small.subarray(0, 3)).toEqual(Buffer.from([0x4e, 0x43, 2]))
      expect((small[3] as number) & 1).toBe(0)
      expect((large[3] as number) & 1).toBe(1)
      expect(large.length).toBeLessThan(3000)
      const pttl = await raw.pttl(`${ns}:large`)
      expect(pttl).toBeGreaterThan(3_500_000)
      expect(pttl).toBeLessThanOrEqual(3_600_000)
      expect(await raw.pttl(`${ns}:small`)).toBe(-1)
    }, { compressThreshold: '1kb' })
  })

  it('reads foreign and corrupt values as missing and reports E_CORRUPT_ENTRY', async () => {
    await withCache(async (c, ns) => {
      const events: CacheError[] = []
      c.on('error', (e) => events.push(e as CacheError))
      await c.set('good', { v: 1 })
      const good = (await raw.getBuffer(`${ns}:good`)) as Buffer
      const flipped = Buffer.from(good)
      flipped[flipped.length - 1] = (flipped[flipped.length - 1] as number) ^ 0xff
      await raw.set(`${ns}:flipped`, flipped)
      await raw.set(`${ns}:foreign`, 'written by another program')
      await raw.set(`${ns}:truncated`, good.subarray(0, 20))
      await raw.rpush(`${ns}:list`, 'a', 'b')
      expect(await c.get('flipped')).toBeUndefined()
      expect(await c.getMany(['foreign', 'truncated', 'list', 'good'])).toEqual([undefined, undefined, undefined, { v: 1 }])
      expect(await c.has('foreign')).toBe(false)
      expect(await c.getOrSet('foreign', () => 'replaced')).toBe('replaced')
      expect(await c.get('foreign')).toBe('replaced')
      expect(events.map((e) => e.code)).toEqual(Array(5).fill('E_CORRUPT_ENTRY'))
      expect(events[0]?.message).toMatch(/not a valid nearcache entry \(checksum mismatch\)/)
      expect(await c.delete('list')).toBe(false)
      expect(await raw.exists(`${ns}:list`)).toBe(0)
      expect(c.stats().l2.errors).toBe(5)
    })
  })

  it('never lets a reader crash the process when no error listener is attached', async () => {
    await withCache(async (c, ns) => {
      await raw.set(`${ns}:junk`, Buffer.from([0x4e, 0x43, 9, 0, 0]))
      expect(await c.get('junk')).toBeUndefined()
    })
  })

  it('raises E_L2_ERROR when Redis rejects a command (a foreign type where a tag epoch lives)', async () => {
    await withCache(async (c, ns) => {
      await raw.hset(`__nc|t|${ns}|bad`, 'f', 'v')
      const err = await c.set('k', 1, { tags: ['bad'] }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(CacheError)
      expect((err as CacheError).code).toBe('E_L2_ERROR')
      expect((err as Error).message).toMatch(/WRONGTYPE/)
      expect(await c.has('k')).toBe(false)
    })
  })

  it('a lost tag epoch never brings invalidated entries back', async () => {
    await withCache(async (c, ns) => {
      await c.invalidateTags(['t']) // creates the epoch
      await c.set('k', 1, { tags: ['t'] })
      await raw.del(`__nc|t|${ns}|t`) // evicted, say
      await c.invalidateTags(['t'])
      expect(await c.get('k')).toBeUndefined()
      await c.set('k', 2, { tags: ['t'] })
      expect(await c.get('k')).toBe(2)
    }, { l1: false })
  })

  it('uses a client it is handed and leaves it open on close', async () => {
    const client = backend.rawClient() as Redis | Cluster
    const ns = uniqueNamespace('handed')
    const c = await createCache({ redis: client, namespace: ns })
    await c.set('k', 'v')
    expect(await c.get('k')).toBe('v')
    await c.close()
    expect(client.status).toBe('ready')
    expect(await client.exists(`${ns}:k`)).toBe(1)
    await client.quit()
  })

  it('caps the operations in flight to Redis (maxInFlight) and still answers every call', async () => {
    const client = backend.rawClient() as Redis | Cluster
    let outstanding = 0
    let peak = 0
    const counting = new Proxy(client, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver)
        if (prop !== 'mgetBuffer' && prop !== 'set') return typeof v === 'function' ? v.bind(target) : v
        return async (...args: unknown[]) => {
          peak = Math.max(peak, ++outstanding)
          try {
            return await (v as (...a: unknown[]) => Promise<unknown>).apply(target, args)
          } finally {
            outstanding--
          }
        }
      },
    })
    const c = await createCache({ redis: counting, namespace: uniqueNamespace('gate'), l1: false, batchGets: false, maxInFlight: 8 })
    await Promise.all(Array.from({ length: 300 }, (_, i) => c.set(`k${i}`, i)))
    const got = await Promise.all(Array.from({ length: 300 }, (_, i) => c.get(`k${i}`)))
    expect(got).toEqual(Array.from({ length: 300 }, (_, i) => i))
    expect(peak).toBeLessThanOrEqual(8)
    expect(peak).toBeGreaterThan(1)
    await c.clear()
    await c.close()
    client.disconnect()
  })

  it('raises E_CONFLICT when the key keeps changing under a conditional write', async () => {
    const client = backend.rawClient() as Redis | Cluster
    const other = backend.rawClient() as Redis | Cluster
    const ns = uniqueNamespace('conflict')
    let n = 0
    // A real server; the only thing injected is another writer between our read and our swap
    // (just before the swap's EVALSHA: on a Cluster the read goes to the node connections).
    const racing = new Proxy(client, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver)
        if (prop !== 'evalshaBuffer') return typeof v === 'function' ? v.bind(target) : v
        return async (...args: (string | Buffer | number)[]) => {
          await other.set(args[2] as string, `race ${n++}`)
          return (target as unknown as { evalshaBuffer(...a: unknown[]): Promise<unknown> }).evalshaBuffer(...args)
        }
      },
    })
    const c = await createCache({ redis: racing, namespace: ns, batchGets: false })
    // nx: every read finds a foreign value (a miss), every swap finds it replaced again.
    const err = await c.set('k', 1, { nx: true }).catch((e: unknown) => e)
    expect((err as CacheError).code).toBe('E_CONFLICT')
    expect(n).toBe(32)
    await c.close()
    client.disconnect()
    other.disconnect()
  })
})

describe('redis option forms', () => {
  it('accepts ioredis options and the NEARCACHE_REDIS_URL default', async () => {
    const url = new URL(inject('redisUrl'))
    const ns = uniqueNamespace('opts')
    const a = await createCache({ redis: { host: url.hostname, port: Number(url.port) }, namespace: ns })
    await a.set('k', 'from options')
    process.env.NEARCACHE_REDIS_URL = inject('redisUrl')
    try {
      const b = await createCache({ namespace: ns })
      expect(await b.get('k')).toBe('from options')
      expect(b.stats().l2.enabled).toBe(true)
      await b.close()
    } finally {
      delete process.env.NEARCACHE_REDIS_URL
    }
    await a.clear()
    await a.close()
  })
})

describe('Redis unavailable (E_L2_UNAVAILABLE)', () => {
  it('createCache rejects when nothing listens, with a hint', async () => {
    const port = await getFreePort()
    const err = await createCache({ redis: `redis://127.0.0.1:${port}`, connectTimeout: 2000 }).catch((e: unknown) => e)
    expect((err as CacheError).code).toBe('E_L2_UNAVAILABLE')
    expect((err as Error).message).toMatch(/redis: false/)
  })

  it('createCache rejects when no Cluster node answers', async () => {
    const port = await getFreePort()
    const err = await createCache({ redis: { cluster: [{ host: '127.0.0.1', port }] }, connectTimeout: 1500 }).catch((e: unknown) => e)
    expect((err as CacheError).code).toBe('E_L2_UNAVAILABLE')
  })

  it('operations reject with E_L2_UNAVAILABLE when the server goes away, and work again when it is back', async () => {
    const server = await startStandalone()
    try {
      const ns = uniqueNamespace('outage')
      // Default: the lost invalidation subscription means L1 can no longer be trusted, so it is flushed.
      const c = await createCache({ redis: server.url, commandTimeout: 1000, namespace: ns })
      // Without cross-process invalidation, what L1 holds keeps being served during the outage.
      const local = await createCache({ redis: server.url, commandTimeout: 1000, namespace: ns, invalidation: false })
      await c.set('k', 'v')
      await c.set('served', 'from L1')
      await local.set('served', 'from L1')
      server.kill('SIGKILL')
      const errors = await Promise.all([c.get('j'), c.set('k', 2), c.getMany(['k', 'j'])].map((p) => p.catch((e: unknown) => e)))
      for (const e of errors) expect((e as CacheError).code).toBe('E_L2_UNAVAILABLE')
      expect(await c.get('served').catch((e: unknown) => (e as CacheError).code)).toBe('E_L2_UNAVAILABLE')
      expect(await local.get('served')).toBe('from L1')
      expect(c.stats().l2.errors).toBeGreaterThanOrEqual(3)
      await server.restart()
      let back: unknown
      for (let i = 0; i < 50 && back !== true; i++) {
        back = await c.set('k', 3).catch(() => new Promise((r) => setTimeout(r, 100)))
      }
      expect(await c.get('k')).toBe(3)
      await c.close()
      await local.close()
    } finally {
      await server.stop()
    }
  })


  it('opens the circuit on repeated failures, fails fast while open, and closes once Redis is back', { timeout: 30_000 }, async () => {
    const server = await startStandalone()
    try {
      const c = await createCache({ redis: server.url, commandTimeout: 500, namespace: uniqueNamespace('cb'), circuitBreaker: { threshold: 3, resetTimeout: '300ms' }, l1: false })
      const states: string[] = []
      c.on('circuit', (s) => states.push(s))
      await c.set('k', 1)
      server.kill('SIGKILL')
      for (let i = 0; i < 3; i++) await c.get(`x${i}`).catch(() => undefined)
      expect(c.stats().circuit).toBe('open')
      // Fails fast: rejected before the event loop turns once (no command sent, no timeout waited), however slow the machine.
      const turn = new Promise((r) => setImmediate(() => r('the event loop turned first')))
      const err = await Promise.race([c.get('k').catch((e: unknown) => e), turn])
      expect((err as CacheError).code).toBe('E_L2_UNAVAILABLE')
      expect((err as Error).message).toMatch(/circuit open/)
      await server.restart()
      let value: unknown
      const started = performance.now()
      while (performance.now() - started < 10_000) {
        value = await c.get('k').catch(() => 'unavailable')
        if (value !== 'unavailable') break
        await new Promise((r) => setTimeout(r, 100))
      }
      // The server restarted empty (no persistence): the key is gone, but Redis answers again.
      expect(value).toBeUndefined()
      expect(c.stats().circuit).toBe('closed')
      expect(states).toContain('open')
      expect(states.at(-1)).toBe('closed')
      await c.close()
    } finally {
      await server.stop()
    }
  })
})
