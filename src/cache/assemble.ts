import { EventEmitter } from 'node:events'
import { NearCache } from './facade.js'
import type { CodecPool } from '../codec/codec_pool.js'
import { DecodeMemo } from '../codec/decode_memo.js'
import type { SharedState } from './context.js'
import type { CacheHandle } from '../threads/handle.js'
import type { ReadRoute } from '../threads/read_route.js'
import { handleOptions } from '../threads/handle.js'
import type { SharedTable } from '../l1/shared_table.js'
import { composeCacheTier } from '../tiers/compose.js'
import type { ResolvedOptions } from '../options/options.js'
import { TierServer } from '../threads/tier_server.js'
import { Field, StatsBlock } from '../observability/stats.js'
import type { Tier } from '../tiers/tier.js'
import type { AccessState } from '../access/access_state.js'
import type { AuditLink, AuditLog } from '../access/audit.js'
import { accessState, openAuditLog } from '../access/setup.js'

export interface Parts {
  opts: ResolvedOptions
  table: SharedTable | undefined
  stats: StatsBlock
  /** This thread's way to L2: the Redis tier (owner) or a RemoteTier (attached thread). */
  l2: Tier | undefined
  /** Only the owner can serve L2 to attached threads. */
  serveL2: boolean
  /** In an attached thread: the owner's TierServer channel, passed on in handles so they can be handed further. */
  ownerChannel?: string
  /** How threads attached through this cache's handle read L2 (the owner decides; attached threads pass it on). */
  reads?: ReadRoute
  emitter: EventEmitter
  namespace: string
  pool?: CodecPool
  /** Redis Cluster only, in the owner thread: CLUSTER INFO's state. */
  clusterState?: () => Promise<string | undefined>
  /** The cache's error report: the 'error' event (newEmitter), or createCache's relay with onError. */
  emitError: (err: Error) => void
  /** An attached thread's access state and audit link (the owner's are made here). */
  access?: AccessState
  audit?: AuditLog | AuditLink
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
  const { tier, hasL1 } = composeCacheTier(opts, table, l2, stats)
  const emitError = p.emitError
  const audit = p.audit ?? openAuditLog(opts, stats, emitError)
  const access = p.access ?? accessState(opts, undefined, l2, audit, emitError)
  let server: TierServer | undefined
  const shared: SharedState = {
    opts,
    tier,
    primary: l2 ? stats.l2 : stats.l1,
    stats: () => stats.snapshot(table?.usage()),
    meters: stats,
    hasL1,
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
        channel: server?.channel ?? p.ownerChannel ?? null,
        reads: p.reads ?? { via: 'owner', why: 'no L2' },
        options: handleOptions(opts),
        access: { buckets: access?.buckets.sab ?? null, audit: audit ? { channel: audit.channel, operations: audit.operations } : null },
      }
    },
    shutdown: async () => {
      server?.close()
      await tier.close()
      await p.pool?.close()
      await audit?.close()
    },
    closed: false,
    access,
    audit,
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
