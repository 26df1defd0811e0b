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
  if (opts.redis !== false) {
    const { client, owned } = await connectRedis(opts.redis, opts, emitError)
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
        l2 = new AnnouncingTier(l2, await InvalidationBus.start(client, INVALIDATION_CHANNEL, table, emitError))
      } catch (err) {
        await l2.close()
        throw wrapRedisError(err, 'subscribing to invalidations')
      }
    }
    if (opts.writeBehind) {
      const { dir, fsync, batchSize, flushIntervalMs, maxQueue } = opts.writeBehind
      l2 = await WriteBehindTier.open(l2, { dir, fsync, batchSize, flushIntervalMs, maxQueue, onError: emitError })
    }
  }
  const pool = opts.codecWorkers ? await CodecPool.create(opts.codecWorkers) : undefined
  return assemble({ opts, table, stats, l2, serveL2: true, emitter, namespace: opts.namespace, pool })
}
