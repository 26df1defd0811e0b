import { EventEmitter } from 'node:events'
import { initHash } from '../wasm/hash.js'
import { NearCache } from './cache.js'
import type { SharedState } from './cache.js'
import { SharedTable } from './l1/shared_table.js'
import { TableTier } from './l1/table_tier.js'
import { TieredStore } from './l1/tiered_store.js'
import { connectRedis } from './l2/connect.js'
import { RedisTier } from './l2/redis_tier.js'
import { resolveOptions } from './options.js'
import type { CacheOptions } from './options.js'
import { Field, StatsBlock } from './stats.js'
import type { Tier } from './tier.js'

/**
 * Creates a cache. With a `redis` option (or NEARCACHE_REDIS_URL) it connects
 * first and rejects with E_L2_UNAVAILABLE when Redis cannot be reached; with
 * `redis: false` it is an in-process cache on the shared L1 alone.
 */
export async function createCache(options?: CacheOptions): Promise<NearCache> {
  const opts = resolveOptions(options)
  await initHash()
  const emitter = new EventEmitter()
  const emitError = (err: Error) => {
    if (emitter.listenerCount('error') > 0) emitter.emit('error', err)
  }
  const stats = new StatsBlock(undefined, { l1: opts.l1 !== false, l2: opts.redis !== false })
  const table = opts.l1 === false ? undefined : SharedTable.create(opts.l1.maxBytes)
  if (table) table.onEvict = () => stats.l1.add(Field.Evictions)
  let tier: Tier
  if (opts.redis === false) {
    tier = new TableTier(table as SharedTable, opts.clock, stats.l1)
  } else {
    const { client, owned } = await connectRedis(opts.redis, opts, emitError)
    const l2 = new RedisTier(client, owned, opts.batchGets, stats.l2)
    tier = table && opts.l1 ? new TieredStore(table, l2, opts.clock, { negativeTtl: opts.l1.negativeTtl, l1Ttl: opts.l1.ttl, maxEntryBytes: opts.l1.maxEntryBytes }, stats.l1) : l2
  }
  const shared: SharedState = {
    opts,
    tier,
    primary: opts.redis === false ? stats.l1 : stats.l2,
    stats: () => stats.snapshot(table?.usage()),
    emitter,
    inflight: new Map(),
    shutdown: () => tier.close(),
    closed: false,
  }
  return new NearCache(shared, opts.namespace, true)
}
