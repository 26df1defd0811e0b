import calculateSlot from 'cluster-key-slot'
import { Cluster, Redis } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { createCache } from '../../src/index.js'
import { RedisTier } from '../../src/l2/redis_tier.js'
import { READ_KEYS } from '../../src/l2/scripts.js'
import { StatsBlock } from '../../src/observability/stats.js'
import { uniqueNamespace } from '../helpers/backends.js'
import { startCluster } from '../helpers/redis_servers.js'
import { until } from '../helpers/wait.js'

/**
 * Cluster reads during a live slot migration (CLUSTER SETSLOT IMPORTING /
 * MIGRATING, MIGRATE key by key, SETSLOT NODE): while keys move, and are rewritten
 * on their new node right after, every read returns the right value, through the
 * cache (l1: false; get and getMany) and through the tier (where the fallbacks of
 * the script are counted). In each read mode: the per-node script (default), per
 * key (batchGets: false), per-slot MGETs (clusterReadScript: false, batchGets: true).
 * Before nearcache routed its own Cluster reads, ioredis' auto-pipelines answered
 * thousands of these reads nil (key_routing.ts).
 */

interface Mode {
  name: string
  batchGets: boolean | undefined
  clusterReadScript: boolean
}

const MODES: Mode[] = [
  { name: 'the per-node script', batchGets: undefined, clusterReadScript: true },
  { name: 'per-key reads', batchGets: false, clusterReadScript: false },
  { name: 'per-slot MGETs', batchGets: true, clusterReadScript: false },
]

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('Cluster reads during a slot migration', () => {
  it.each(MODES)('with $name, every read returns the right value while a slot moves key by key', { timeout: 240_000 }, async (mode) => {
    const handle = await startCluster({ masters: 3 })
    const admins = handle.masters.map((m) => new Redis({ host: m.host, port: m.port }))
    const routing = new Cluster(handle.masters, { enableAutoPipelining: true })
    const ns = uniqueNamespace('migrate')
    const { batchGets, clusterReadScript } = mode
    const cache = await createCache({ redis: { cluster: handle.masters }, namespace: ns, l1: false, circuitBreaker: false, batchGets, clusterReadScript })
    // Rewrites go through their own clients: ioredis does not follow an ASK for a write
    // auto-pipelined with reads to the same node (it retries a pipeline's redirection only
    // when every command of it is a read or failed the same way).
    const writer = await createCache({ redis: { cluster: handle.masters }, namespace: ns, l1: false, circuitBreaker: false })
    const rawWriter = new Cluster(handle.masters)
    let running = true
    try {
      await routing.set('warm-up', '1')
      // The keys that move: one slot (hash tag), cache entries and raw values; the others: every slot.
      const tag = `{${ns}}`
      const slot = calculateSlot(tag)
      const moving = Array.from({ length: 120 }, (_, i) => `${tag}:${i}`)
      // Keys outside the moving slot: a name that happens to hash to it (1 in 16,384) would stay behind on the source.
      const others = Array.from({ length: 320 }, (_, i) => `o${i}`)
        .filter((k) => calculateSlot(`${ns}:${k}`) !== slot && calculateSlot(`${ns}:raw:${k}`) !== slot)
        .slice(0, 300)
      const cacheKeys = [...moving, ...others]
      const rawKeys = cacheKeys.map((k) => `${ns}:raw:${k}`)
      // Each key's generation: `done` is written, `next` is being written. A read may answer
      // any generation from the one written when it started to the one begun when it ended.
      const done = new Map<string, number>()
      const next = new Map<string, number>()
      for (const k of [...cacheKeys, ...rawKeys]) done.set(k, 0), next.set(k, 0)
      await cache.setMany(cacheKeys.map((key) => ({ key, value: { key, gen: 0 } })))
      await Promise.all(rawKeys.map((k) => routing.set(k, `${k}#0`)))

      const tier = new RedisTier(routing, false, batchGets, new StatsBlock(undefined, { l1: false, l2: true }).l2, 10_000, undefined, undefined, clusterReadScript)
      const wrong: string[] = []
      const failures: string[] = []
      const rounds = { cache: 0, tier: 0 }
      let phase = 'before'
      const check = (k: string, before: number, got: number | undefined) => {
        const after = next.get(k) as number
        if (got === undefined || got < before || got > after) wrong.push(`${k}: got ${got}, want ${before}..${after} (${phase})`)
      }
      const cacheLoop = (async () => {
        while (running) {
          const before = cacheKeys.map((k) => done.get(k) as number)
          const got =
            rounds.cache % 2 === 0
              ? await Promise.all(cacheKeys.map((k) => cache.get(k).catch((e: unknown) => void failures.push(String(e)))))
              : await cache.getMany(cacheKeys).catch((e: unknown) => cacheKeys.map(() => void failures.push(String(e))))
          got.forEach((v, i) => check(cacheKeys[i] as string, before[i] as number, (v as { gen?: number } | undefined)?.gen))
          rounds.cache++
        }
      })()
      const tierLoop = (async () => {
        while (running) {
          const before = rawKeys.map((k) => done.get(k) as number)
          const got = await Promise.all(rawKeys.map((k) => tier.get(k).catch((e: unknown) => void failures.push(String(e)))))
          got.forEach((v, i) => {
            const k = rawKeys[i] as string
            const m = Buffer.isBuffer(v) ? /#(\d+)$/.exec(v.toString()) : null
            check(k, before[i] as number, m && v?.toString().startsWith(`${k}#`) ? Number(m[1]) : undefined)
          })
          rounds.tier++
        }
      })()
      const roundsDone = async (n: number) => {
        const want = { cache: rounds.cache + n, tier: rounds.tier + n }
        await until(`${n} rounds of reads`, () => rounds.cache >= want.cache && rounds.tier >= want.tier, 60_000)
      }
      await roundsDone(2)
      if (clusterReadScript) expect(tier.nodeReader?.counts.scriptBatches).toBeGreaterThan(0)

      // Start the migration: source MIGRATING, target IMPORTING.
      const ids = await Promise.all(admins.map(async (a) => String(await a.call('CLUSTER', 'MYID'))))
      const ownerKey = routing.slots[slot]?.[0] as string
      const s = handle.masters.findIndex((m) => `${m.host}:${m.port}` === ownerKey)
      const t = (s + 1) % admins.length
      const source = admins[s] as Redis
      const target = admins[t] as Redis
      phase = 'migrating'
      await target.call('CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', ids[s] as string)
      await source.call('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', ids[t] as string)
      const fullKeys = [...moving.map((k) => `${ns}:${k}`), ...moving.map((k) => `${ns}:raw:${k}`)]
      for (let i = 0; i < fullKeys.length; i++) {
        const k = fullKeys[i] as string
        await source.migrate(handle.masters[t]?.host as string, String(handle.masters[t]?.port), k, 0, 10_000)
        // Rewrite it on its new node (the routing follows ASK): a read of the old copy would now be wrong.
        if (k.includes(':raw:')) {
          next.set(k, 1)
          await rawWriter.set(k, `${k}#1`)
          done.set(k, 1)
        } else {
          const key = k.slice(ns.length + 1)
          next.set(key, 1)
          await writer.set(key, { key, gen: 1 })
          done.set(key, 1)
        }
        if (i === fullKeys.length / 2) {
          await roundsDone(2) // reads while half the slot has moved
          // What the script path relies on: the MIGRATING source serves a key it still holds and
          // refuses one that has left; the IMPORTING target refuses it without ASKING.
          const stays = fullKeys[fullKeys.length - 1] as string // a raw key, not moved yet
          const [held] = (await READ_KEYS.run(source, [], [stays])) as [Buffer]
          expect(held.toString()).toBe(`${stays}#0`)
          await expect(READ_KEYS.run(source, [], [k])).rejects.toThrow(/non local key/)
          await expect(READ_KEYS.run(target, [], [k])).rejects.toThrow(/non local key/)
        } else await sleep(1)
      }
      await roundsDone(1)
      // Hand the slot over: the target first, then the source, then the rest (as redis-cli does).
      phase = 'handover'
      const order = [t, s, ...admins.map((_, i) => i).filter((i) => i !== s && i !== t)]
      for (const i of order) await (admins[i] as Redis).call('CLUSTER', 'SETSLOT', String(slot), 'NODE', ids[t] as string)
      await roundsDone(3)
      running = false
      await Promise.all([cacheLoop, tierLoop])

      expect(failures.slice(0, 5)).toEqual([])
      expect(wrong.slice(0, 5)).toEqual([])
      // Keys that had moved were refused by the script on the source and read per key; the rest kept the script.
      if (clusterReadScript) {
        const counts = tier.nodeReader?.counts
        expect(counts?.fallbackKeys).toBeGreaterThan(0)
        expect(counts?.scriptBatches).toBeGreaterThan(0)
      }
      expect(await source.call('CLUSTER', 'COUNTKEYSINSLOT', String(slot))).toBe(0)
      expect(await target.call('CLUSTER', 'COUNTKEYSINSLOT', String(slot))).toBe(fullKeys.length)
    } finally {
      running = false
      await cache.close()
      await writer.close()
      rawWriter.disconnect()
      routing.disconnect()
      for (const a of admins) a.disconnect()
      await handle.stop()
    }
  })
})
