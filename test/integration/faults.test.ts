import { Redis } from 'ioredis'
import { describe, expect, it, vi } from 'vitest'
import { createCache } from '../../src/index.js'
import type { CacheError, NearCache } from '../../src/index.js'
import { uniqueNamespace } from '../helpers/backends.js'
import { startCluster, startStandalone } from '../helpers/redis_servers.js'

/**
 * Faults injected into real servers while a load runs: a killed and restarted
 * server and a stalled one (CLIENT PAUSE, DEBUG SLEEP). No crash, no unhandled rejection, only typed
 * errors while it lasts, and recovery times measured (printed).
 */
interface Load {
  ok: number
  failed: number
  codes: Set<string>
  lastOkAt: number
  stop(): Promise<void>
}

/** A steady mixed load (set/get) of `workers` loops until stopped. */
function runLoad(cache: NearCache, workers = 20): Load {
  let running = true
  const load: Load = { ok: 0, failed: 0, codes: new Set(), lastOkAt: 0, stop: async () => {} }
  const loops = Array.from({ length: workers }, async (_, w) => {
    for (let i = 0; running; i++) {
      const key = `load:${w}:${i % 50}`
      try {
        if (i % 3 === 0) await cache.set(key, { w, i })
        else await cache.get(key)
        load.ok++
        load.lastOkAt = performance.now()
      } catch (err) {
        load.failed++
        load.codes.add((err as CacheError).code ?? String(err))
        await new Promise((r) => setTimeout(r, 5))
      }
    }
  })
  load.stop = async () => {
    running = false
    await Promise.all(loops)
  }
  return load
}

/** Waits until an operation succeeds again; answers how long it took (ms). */
async function recovery(cache: NearCache, since: number, limitMs: number): Promise<number> {
  for (;;) {
    const ok = await cache.set('probe', Date.now()).then(
      () => true,
      () => false,
    )
    if (ok) return performance.now() - since
    if (performance.now() - since > limitMs) throw new Error(`no recovery within ${limitMs} ms`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** Polls `check` until it passes; the deadline only stops a hung run. */
const waitUntil = (check: () => void) => vi.waitFor(check, { timeout: 20_000, interval: 10 })

describe('faults under load', () => {
  it('a killed and restarted server: typed errors, then recovery', { timeout: 60_000 }, async () => {
    const unhandled: unknown[] = []
    const onUnhandled = (e: unknown) => unhandled.push(e)
    process.on('unhandledRejection', onUnhandled)
    const server = await startStandalone()
    const cache = await createCache({ redis: server.url, namespace: uniqueNamespace('kill'), commandTimeout: 500, circuitBreaker: { threshold: 5, resetTimeout: '200ms' } })
    try {
      const load = runLoad(cache)
      await waitUntil(() => expect(load.ok).toBeGreaterThanOrEqual(50))
      const before = load.ok
      server.kill('SIGKILL')
      // Enough failures to open the circuit (threshold 5), however long they take.
      await waitUntil(() => expect(load.failed).toBeGreaterThanOrEqual(5))
      const killedAt = performance.now()
      await server.restart()
      const recovered = await recovery(cache, killedAt, 20_000)
      // The load itself works again, not only the probe.
      await waitUntil(() => expect(load.lastOkAt).toBeGreaterThan(killedAt))
      await load.stop()
      console.log(`[faults] kill/restart: recovered ${recovered.toFixed(0)} ms after the restart began; ${load.ok} ok, ${load.failed} failed (${[...load.codes].join(', ')})`)
      expect(before).toBeGreaterThan(0)
      expect(load.failed).toBeGreaterThan(0)
      expect([...load.codes].every((c) => c === 'E_L2_UNAVAILABLE')).toBe(true)
      expect(load.lastOkAt).toBeGreaterThan(killedAt)
      // The failures are counted against the namespace and the L2 tier, and in the metrics text.
      const stats = cache.stats()
      expect(stats.namespaces[cache.prefix]?.errors).toBeGreaterThan(0)
      expect(stats.l2.errors).toBeGreaterThan(0)
      expect(cache.metrics()).toMatch(new RegExp(`nearcache_errors_total\\{namespace="${cache.prefix}"\\} [1-9]`))
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', onUnhandled)
      await cache.close()
      await server.stop()
    }
  })

  it('a stalled server (CLIENT PAUSE, DEBUG SLEEP): operations time out with E_L2_UNAVAILABLE and resume', { timeout: 60_000 }, async () => {
    const server = await startStandalone()
    const admin = new Redis(server.url)
    const cache = await createCache({ redis: server.url, namespace: uniqueNamespace('stall'), commandTimeout: 300, l1: false })
    try {
      await cache.set('k', 'v')
      await admin.call('CLIENT', 'PAUSE', '1500', 'ALL')
      const t = performance.now()
      const err = await cache.get('k').catch((e: unknown) => e)
      const waited = performance.now() - t
      // An error, not the value after the pause: the command timed out.
      expect((err as CacheError).code).toBe('E_L2_UNAVAILABLE')
      expect((err as Error).message).toMatch(/timed out/)
      const resumed = await recovery(cache, t, 10_000)
      expect(await cache.get('k')).toBe('v')
      // DEBUG SLEEP blocks the server itself.
      // Writes go on until the server has begun its sleep (sets sent before it still succeed).
      let awake = false
      const sleeping = admin.call('DEBUG', 'SLEEP', '2').finally(() => (awake = true))
      const t2 = performance.now()
      let err2: unknown
      while (!(err2 instanceof Error) && !awake) err2 = await cache.set('k', 'w').catch((e: unknown) => e)
      expect((err2 as CacheError).code).toBe('E_L2_UNAVAILABLE')
      expect((err2 as Error).message).toMatch(/timed out/)
      await sleeping
      const resumed2 = await recovery(cache, t2, 10_000)
      console.log(`[faults] CLIENT PAUSE 1.5 s: first error after ${waited.toFixed(0)} ms, working again after ${resumed.toFixed(0)} ms; DEBUG SLEEP 2 s: working again after ${resumed2.toFixed(0)} ms`)
    } finally {
      await cache.close()
      admin.disconnect()
      await server.stop()
    }
  })

  it('a Cluster master dies and its replica takes over: writes resume, nothing stale', { timeout: 90_000 }, async () => {
    const cluster = await startCluster({ masters: 3, replicasPerMaster: 1 })
    const cache = await createCache({ redis: { cluster: cluster.masters }, commandTimeout: 500, namespace: uniqueNamespace('failover'), circuitBreaker: false })
    try {
      const keys = Array.from({ length: 60 }, (_, i) => `f:${i}`)
      await cache.setMany(keys.map((key, i) => ({ key, value: i })))
      const load = runLoad(cache, 10)
      await waitUntil(() => expect(load.ok).toBeGreaterThanOrEqual(50))
      const victim = cluster.servers.find((s) => s.port === cluster.masters[0]!.port)!
      const killedAt = performance.now()
      victim.kill('SIGKILL')
      // Keys of every slot must work again: probe one key per master's slot range.
      let recovered = 0
      for (;;) {
        const results = await Promise.all(keys.map((k) => cache.set(k, 'after').then(() => true, () => false)))
        if (results.every(Boolean)) {
          recovered = performance.now() - killedAt
          break
        }
        if (performance.now() - killedAt > 60_000) throw new Error('writes to every slot did not resume within 60 s')
        await new Promise((r) => setTimeout(r, 100))
      }
      await load.stop()
      console.log(`[faults] Cluster failover: writes to every slot work again ${recovered.toFixed(0)} ms after the master was killed; load ${load.ok} ok, ${load.failed} failed (${[...load.codes].join(', ')})`)
      expect([...load.codes].every((c) => c === 'E_L2_UNAVAILABLE' || c === 'E_L2_ERROR')).toBe(true)
      expect(await cache.getMany(keys)).toEqual(keys.map(() => 'after'))
    } finally {
      await cache.close()
      await cluster.stop()
    }
  })
})
