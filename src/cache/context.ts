import type { EventEmitter } from 'node:events'
import type { CodecPool } from '../codec/codec_pool.js'
import type { DecodeMemo } from '../codec/decode_memo.js'
import type { CacheHandle } from '../threads/handle.js'
import type { ResolvedOptions } from '../options/options.js'
import type { CacheStats, Meter, NamespaceMeter, StatsBlock } from '../observability/stats.js'
import type { Tier } from '../tiers/tier.js'
import type { AccessState } from '../access/access_state.js'
import type { AuditTrail } from '../access/audit.js'

/** State shared by a cache and every namespace made from it (one per thread). */
export interface SharedState {
  readonly opts: ResolvedOptions
  /** The composed tier stack (src/tiers/compose.ts). */
  readonly tier: Tier
  /** The meter corrupt entries count against: L2 when there is one, else L1. */
  readonly primary: Meter
  readonly stats: () => CacheStats
  /** The shared counters; each namespace takes its own meter from it. */
  readonly meters: StatsBlock
  /** Whether the tier has an L1: then answers from `peek` (and `mget`'s fromL1) came from L1. */
  readonly hasL1: boolean
  /** Redis Cluster only, in the thread that owns the connections: CLUSTER INFO's state. */
  readonly clusterState: (() => Promise<string | undefined>) | undefined
  readonly emitter: EventEmitter
  /** getOrSet loads running in this thread, by full key (coalescing). */
  readonly inflight: Map<string, Promise<Loaded>>
  /** The codec worker pool (codecWorkers), if any. */
  readonly pool: CodecPool | undefined
  /** Keys with a background refresh running in this thread. */
  readonly refreshing: Set<string>
  /** This thread's memo of decoded values. */
  readonly memo: DecodeMemo
  /** A structured-cloneable handle for attachCache() in another thread, for namespace `ns`. */
  readonly handle: (ns: string) => CacheHandle
  /** Closes the tier (and what nearcache opened); called once by the root cache. */
  readonly shutdown: () => Promise<void>
  closed: boolean
  /** Principals and their rate buckets (`access`), for cache.as(); undefined without them. */
  readonly access: AccessState | undefined
  /** Where calls are recorded (`audit`): the owner's log, or an attached thread's link to it. */
  readonly audit: AuditTrail | undefined
}

/** One namespace's view of the shared state: what the read, write and load paths work with. */
export interface Scope {
  readonly s: SharedState
  /** The full namespace (`nc`, `shop:users`). */
  readonly ns: string
  /** This namespace's counters. */
  readonly m: NamespaceMeter
}

/** A getOrSet result that several callers share: each takes its own `copy()`. */
export interface Loaded {
  /** The first caller's value. */
  value: unknown
  /** Another caller's own copy of the value (undefined for a missing value). */
  copy(): unknown
}

/** Emits an 'error' event when someone listens (an error event never throws out of nearcache). */
export function emitError(s: SharedState, err: unknown): void {
  if (s.emitter.listenerCount('error') > 0) s.emitter.emit('error', err)
}
