import { EventEmitter } from 'node:events'
import { NearCache } from './facade.js'
import type { CodecPool } from '../codec/codec_pool.js'
import { DecodeMemo } from '../codec/decode_memo.js'
import type { SharedState } from './facade.js'
import type { CacheHandle } from '../threads/handle.js'
import { handleOptions } from '../threads/handle.js'
import type { SharedTable } from '../l1/shared_table.js'
import { TableTier } from '../tiers/l1_only.js'
import { TieredStore } from '../tiers/tiered.js'
import type { ResolvedOptions } from '../options/options.js'
import { RemoteTier } from '../threads/remote_tier.js'
import { TierServer } from '../threads/tier_server.js'
import { Field, StatsBlock } from '../observability/stats.js'
import type { Tier } from '../tiers/tier.js'

export interface Parts {
  opts: ResolvedOptions
  table: SharedTable | undefined
  stats: StatsBlock
  /** This thread's way to L2: the Redis tier (owner) or a RemoteTier (attached thread). */
  l2: Tier | undefined
  /** Only the owner can serve L2 to attached threads. */
  serveL2: boolean
  emitter: EventEmitter
  namespace: string
  pool?: CodecPool
  /** Redis Cluster only, in the owner thread: CLUSTER INFO's state. */
  clusterState?: () => Promise<string | undefined>
}

/** Builds the tier stack and the root cache from its parts; shared by createCache and attachCache. */
export function assemble(p: Parts): NearCache {
  const { opts, table, stats, l2 } = p
  if (table) {
    const emitter = p.emitter
    table.onEvict = (readKey) => {
      stats.l1.add(Field.Evictions)
      const key = readKey()
      stats.evicted(key)
      if (emitter.listenerCount('eviction') > 0) emitter.emit('eviction', { key })
    }
  }
  let tier: Tier
  if (!l2) tier = new TableTier(table as SharedTable, opts.clock, stats.l1)
  else if (table && opts.l1) tier = new TieredStore(table, l2, opts.clock, { negativeTtl: opts.l1.negativeTtl, l1Ttl: opts.l1.ttl, maxEntryBytes: opts.l1.maxEntryBytes }, stats.l1)
  else tier = l2
  let server: TierServer | undefined
  const shared: SharedState = {
    opts,
    tier,
    primary: l2 ? stats.l2 : stats.l1,
    stats: () => stats.snapshot(table?.usage()),
    meters: stats,
    hasL1: tier instanceof TableTier || tier instanceof TieredStore,
    clusterState: p.clusterState,
    emitter: p.emitter,
    inflight: new Map(),
    refreshing: new Set(),
    pool: p.pool,
    memo: new DecodeMemo(),
    handle: (namespace: string): CacheHandle => {
      if (l2 && p.serveL2) server ??= new TierServer(l2)
      return {
        nearcache: 1,
        namespace,
        table: table?.sab ?? null,
        stats: stats.sab,
        // An attached thread passes on its owner's channel, so handles can be handed further.
        channel: server?.channel ?? (l2 instanceof RemoteTier ? l2.channel : null),
        options: handleOptions(opts),
      }
    },
    shutdown: async () => {
      server?.close()
      await tier.close()
      await p.pool?.close()
    },
    closed: false,
  }
  return new NearCache(shared, p.namespace, true)
}

export function newEmitter(): { emitter: EventEmitter; emitError: (err: Error) => void } {
  const emitter = new EventEmitter()
  return {
    emitter,
    emitError: (err: Error) => {
      if (emitter.listenerCount('error') > 0) emitter.emit('error', err)
    },
  }
}

export { StatsBlock }
