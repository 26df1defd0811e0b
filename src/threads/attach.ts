import { workerData } from 'node:worker_threads'
import { initHash } from '../../wasm/hash.js'
import { assemble, newEmitter, StatsBlock } from '../cache/assemble.js'
import type { NearCache } from '../cache/facade.js'
import { InvalidOptionError } from '../errors.js'
import type { CacheHandle } from './handle.js'
import { SharedTable } from '../l1/shared_table.js'
import type { Clock } from '../options/options.js'
import { RemoteTier } from './remote_tier.js'
import { OwnConnection } from './own_connection.js'
import { SplitTier } from './split_tier.js'
import type { Tier } from '../tiers/tier.js'
import { describe } from '../util/units.js'
import { accessState, linkAudit } from '../access/setup.js'

/**
 * Attaches to a cache made in another thread of this process, from its
 * `cache.handle`. The result reads and writes the same shared L1; its L1 misses
 * and its writes go to L2 through the owning thread's connections.
 */
export async function attachCache(handle: CacheHandle, options: { clock?: Clock } = {}): Promise<NearCache> {
  if (typeof handle !== 'object' || handle === null || handle.nearcache !== 1 || !(handle.stats instanceof SharedArrayBuffer)) {
    throw new InvalidOptionError(`attachCache takes the value of cache.handle from the owning thread (got ${describe(handle)}).`)
  }
  await initHash()
  const opts = { ...handle.options, redis: handle.channel === null ? (false as const) : 'attached', clock: options.clock ?? Date, writer: undefined, codecWorkers: false as const, audit: false as const }
  const table = handle.table ? SharedTable.attach(handle.table) : undefined
  const stats = new StatsBlock(handle.stats, { l1: table !== undefined, l2: handle.channel !== null })
  const { emitter, emitError } = newEmitter()
  const l2 = handle.channel === null ? undefined : await threadL2(handle, handle.channel, stats, emitError)
  const audit = linkAudit(handle.access?.audit ?? null)
  const access = accessState(opts, handle.access?.buckets, l2, audit, emitError)
  return assemble({ opts, table, stats, l2, serveL2: false, ownerChannel: handle.channel ?? undefined, reads: handle.reads, emitter, emitError, namespace: handle.namespace, access, audit })
}

/**
 * The attached thread's L2: the owner for everything (RemoteTier), or, when the
 * handle says so, its own connection for reads in front of it (SplitTier). The own
 * connection is tried before this resolves; if it cannot connect, reads go
 * through the owner until a later attempt succeeds.
 */
async function threadL2(handle: CacheHandle, channel: string, stats: StatsBlock, emitError: (err: Error) => void): Promise<Tier> {
  const o = handle.options
  const remote = new RemoteTier(channel, o.commandTimeout * 2 + 1000)
  const reads = handle.reads as CacheHandle['reads'] | undefined
  if (reads?.via !== 'own') return remote
  const own = new OwnConnection(reads.redis, o, stats.l2, emitError)
  await own.start()
  return new SplitTier(own, remote)
}

const attached = new Map<string, Promise<NearCache>>()

/**
 * The one-liner for worker pools (piscina or hand-made Workers): in the worker,
 * `const cache = await workerCache()` attaches, once per thread, to the handle the
 * main thread put in `workerData.nearcache` (e.g. `new Piscina({ filename,
 * workerData: { nearcache: cache.handle } })`).
 */
export function workerCache(key = 'nearcache'): Promise<NearCache> {
  let p = attached.get(key)
  if (!p) {
    const handle = (workerData as Record<string, unknown> | null)?.[key]
    if (handle === undefined) {
      return Promise.reject(new InvalidOptionError(`workerData.${key} is missing: pass { workerData: { ${key}: cache.handle } } when creating the worker or pool.`))
    }
    p = attachCache(handle as CacheHandle)
    attached.set(key, p)
  }
  return p
}
