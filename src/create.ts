import { EventEmitter } from 'node:events'
import { initHash } from '../wasm/hash.js'
import { NearCache } from './cache.js'
import type { SharedState } from './cache.js'
import { MemoryTier } from './l1/memory_tier.js'
import { connectRedis } from './l2/connect.js'
import { RedisTier } from './l2/redis_tier.js'
import { resolveOptions } from './options.js'
import type { CacheOptions } from './options.js'
import { TierCounters } from './stats.js'
import type { Tier } from './tier.js'

/**
 * Creates a cache. With a `redis` option (or NEARCACHE_REDIS_URL) it connects
 * first and rejects with E_L2_UNAVAILABLE when Redis cannot be reached; with
 * `redis: false` it is an in-process cache.
 */
export async function createCache(options?: CacheOptions): Promise<NearCache> {
  const opts = resolveOptions(options)
  await initHash()
  const emitter = new EventEmitter()
  const emitError = (err: Error) => {
    if (emitter.listenerCount('error') > 0) emitter.emit('error', err)
  }
  let tier: Tier
  if (opts.redis === false) {
    tier = new MemoryTier((opts.l1 as { maxBytes: number }).maxBytes)
  } else {
    const { client, owned } = await connectRedis(opts.redis, opts, emitError)
    tier = new RedisTier(client, owned, opts.batchGets)
  }
  const l1 = new TierCounters(tier.kind === 'l1')
  const l2 = new TierCounters(tier.kind === 'l2')
  const shared: SharedState = {
    opts,
    tier,
    counters: tier.kind === 'l1' ? l1 : l2,
    stats: () => ({ l1: l1.snapshot(), l2: l2.snapshot() }),
    emitter,
    inflight: new Map(),
    shutdown: () => tier.close(),
    closed: false,
  }
  return new NearCache(shared, opts.namespace, true)
}
