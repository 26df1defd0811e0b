import { Redis } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { createCache } from '../../src/index.js'
import type { CacheError } from '../../src/index.js'
import { uniqueNamespace } from '../helpers/backends.js'
import { startCluster } from '../helpers/redis_servers.js'
import { until } from '../helpers/wait.js'

/**
 * Per-node Cluster reads (the default) during failovers on a private Cluster with
 * one replica per master: a graceful CLUSTER FAILOVER (the old master, still
 * connected, becomes a replica: the script sent to it is refused and the keys are
 * read where its MOVED points), then a killed master and its replica's promotion.
 * Every read answers the right value or rejects with E_L2_UNAVAILABLE, never
 * anything else, and reads of every slot work again after each.
 */

/** The node id and role of every node, from CLUSTER NODES. */
async function clusterNodes(admin: Redis): Promise<{ id: string; port: number; master: boolean; masterId: string }[]> {
  const text = String(await admin.call('CLUSTER', 'NODES'))
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [id, addr, flags, masterId] = line.split(' ') as [string, string, string, string]
      return { id, port: Number(/:(\d+)@/.exec(addr)?.[1]), master: flags.includes('master'), masterId }
    })
}

describe('per-node Cluster reads during a failover', () => {
  it('every read is the right value or E_L2_UNAVAILABLE through a manual failover and a killed master', { timeout: 240_000 }, async () => {
    const handle = await startCluster({ masters: 3, replicasPerMaster: 1 })
    const admins = new Map(handle.servers.map((s) => [s.port, new Redis({ host: s.host, port: s.port, lazyConnect: true, retryStrategy: () => null })]))
    const ns = uniqueNamespace('failover-reads')
    const cache = await createCache({ redis: { cluster: handle.masters }, namespace: ns, l1: false, commandTimeout: 1000, circuitBreaker: false })
    let running = true
    try {
      const keys = Array.from({ length: 300 }, (_, i) => `k${i}`)
      await cache.setMany(keys.map((key, i) => ({ key, value: { key, i } })))
      // Nothing is written from here on: wait until every replica holds what its master holds.
      const dbsize = async (master: boolean) => {
        let n = 0
        for (const a of admins.values()) {
          const role = (await a.call('ROLE')) as unknown[]
          if ((role[0] === 'master') === master) n += Number(await a.dbsize())
        }
        return n
      }
      await until('replicas in sync', async () => (await dbsize(false)) === (await dbsize(true)), 60_000)

      const wrong: string[] = []
      const codes = new Set<string>()
      let cleanRounds = 0
      let okReads = 0
      const loop = (async () => {
        while (running) {
          const got = await Promise.all(keys.map((k) => cache.get(k).then((v) => ({ v }), (e: unknown) => ({ e: e as CacheError }))))
          let clean = true
          got.forEach((r, i) => {
            if ('e' in r) {
              clean = false
              codes.add(r.e.code ?? String(r.e))
            } else if ((r.v as { i?: number } | undefined)?.i !== i || (r.v as { key?: string }).key !== keys[i]) wrong.push(`${keys[i]}: ${JSON.stringify(r.v)}`)
            else okReads++
          })
          if (clean) cleanRounds++
          else await new Promise((r) => setTimeout(r, 20))
        }
      })()
      const cleanRound = async (what: string) => {
        const from = cleanRounds
        await until(what, () => cleanRounds >= from + 2, 90_000)
      }
      await cleanRound('reads before the failovers')

      // A graceful failover: the replica of the first master takes over; the old master stays up as its replica.
      const first = handle.masters[0]?.port as number
      const nodes = await clusterNodes(admins.get(first) as Redis)
      const firstId = nodes.find((n) => n.port === first)?.id
      const replica = admins.get(nodes.find((n) => !n.master && n.masterId === firstId)?.port as number) as Redis
      await replica.call('CLUSTER', 'FAILOVER')
      await until('the replica promoted', async () => ((await replica.call('ROLE')) as unknown[])[0] === 'master', 60_000)
      await cleanRound('reads of every slot after the manual failover')

      // A master killed: its replica is promoted once the others agree it has failed.
      const second = handle.masters[1]?.port as number
      const secondId = nodes.find((n) => n.port === second)?.id
      const heir = admins.get(nodes.find((n) => !n.master && n.masterId === secondId)?.port as number) as Redis
      admins.get(second)?.disconnect()
      admins.delete(second)
      handle.servers.find((s) => s.port === second)?.kill('SIGKILL')
      await until('the killed master replaced', async () => ((await heir.call('ROLE')) as unknown[])[0] === 'master', 90_000)
      await cleanRound('reads of every slot after the killed master was replaced')
      running = false
      await loop

      expect(wrong.slice(0, 5)).toEqual([])
      expect([...codes].filter((c) => c !== 'E_L2_UNAVAILABLE')).toEqual([])
      expect(okReads).toBeGreaterThan(0)
    } finally {
      running = false
      await cache.close()
      for (const a of admins.values()) a.disconnect()
      await handle.stop()
    }
  })
})
