import type { Cluster } from 'ioredis'
import { initHash } from '../wasm/hash.js'
import { assemble, newEmitter, StatsBlock } from './assemble.js'
import type { NearCache } from './cache.js'
import { CodecPool } from './codec/codec_pool.js'
import { SharedTable } from './l1/shared_table.js'
import { connectRedis } from './l2/connect.js'
import { CircuitBreaker } from './l2/circuit_breaker.js'
import { wrapRedisError } from './l2/errors.js'
import { AnnouncingTier, InvalidationBus } from './l2/invalidation_bus.js'
import { RedisTier } from './l2/redis_tier.js'
import { ProcField } from './stats.js'
import type { Tier } from './tier.js'
import { WriteBehindTier } from './write/write_behind_tier.js'

/** One channel for every nearcache process on a Redis: announcements carry full keys. */
const INVALIDATION_CHANNEL = '__nc|inv'
import { resolveOptions } from './options.js'
import type { CacheOptions } from './options.js'

/**
 * Creates a cache. With a `redis` option (or NEARCACHE_REDIS_URL) it connects
 * first and rejects with E_L2_UNAVAILABLE when Redis cannot be reached; with
 * `redis: false` it is an in-process cache on the shared L1 alone.
 */
export async function createCache(options?: CacheOptions): Promise<NearCache> {
  const opts = resolveOptions(options)
  await initHash()
  const { emitter, emitError } = newEmitter()
  const stats = new StatsBlock(undefined, { l1: opts.l1 !== false, l2: opts.redis !== false })
  const table = opts.l1 === false ? undefined : SharedTable.create(opts.l1.maxBytes)
  let l2: Tier | undefined
  let clusterState: (() => Promise<string | undefined>) | undefined
  if (opts.redis !== false) {
    const { client, owned } = await connectRedis(opts.redis, opts, emitError)
    if ((client as Cluster).isCluster) clusterState = () => readClusterState(client as Cluster)
    const breaker = opts.circuitBreaker ? new CircuitBreaker(opts.circuitBreaker.threshold, opts.circuitBreaker.resetTimeout) : undefined
    if (breaker) {
      breaker.onChange = (state) => {
        stats.setCircuit(state)
        if (emitter.listenerCount('circuit') > 0) emitter.emit('circuit', state)
      }
    }
    l2 = new RedisTier(client, owned, opts.batchGets, stats.l2, opts.maxInFlight, breaker, opts.commandTimeout)
    if (opts.invalidation) {
      try {
        const bus = await InvalidationBus.start(client, INVALIDATION_CHANNEL, table, emitError)
        bus.onAnnounce = (notice) => {
          if (notice.direction === 'sent') stats.process.add(ProcField.InvalidationsSent)
          else if (notice.direction === 'received') stats.process.add(ProcField.InvalidationsReceived)
          else stats.process.add(ProcField.L1Flushes)
          if (emitter.listenerCount('invalidation') > 0) emitter.emit('invalidation', notice)
        }
        l2 = new AnnouncingTier(l2, bus)
      } catch (err) {
        await l2.close()
        throw wrapRedisError(err, 'subscribing to invalidations')
      }
    }
    if (opts.writeBehind) {
      const { dir, fsync, batchSize, flushIntervalMs, maxQueue } = opts.writeBehind
      const onDepth = (depth: number) => stats.process.set(ProcField.WriteBehindDepth, depth)
      l2 = await WriteBehindTier.open(l2, { dir, fsync, batchSize, flushIntervalMs, maxQueue, onError: emitError, onDepth })
    }
  }
  const pool = opts.codecWorkers ? await CodecPool.create(opts.codecWorkers) : undefined
  return assemble({ opts, table, stats, l2, serveL2: true, emitter, namespace: opts.namespace, pool, clusterState })
}

/** CLUSTER INFO's cluster_state as every master sees it: 'ok' only when all say so. */
async function readClusterState(cluster: Cluster): Promise<string | undefined> {
  const masters = cluster.nodes('master')
  if (masters.length === 0) return 'fail'
  const states = await Promise.all(
    masters.map((node) =>
      (node.cluster('INFO') as Promise<string>).then(
        (info) => /cluster_state:(\w+)/.exec(info)?.[1] ?? 'unknown',
        () => 'unreachable',
      ),
    ),
  )
  return states.find((s) => s !== 'ok') ?? 'ok'
}
