import { workerData } from 'node:worker_threads'
import { initHash } from '../../wasm/hash.js'
import { assemble, newEmitter, StatsBlock } from '../cache/assemble.js'
import type { NearCache } from '../cache/facade.js'
import { InvalidOptionError } from '../errors.js'
import type { CacheHandle } from './handle.js'
import { SharedTable } from '../l1/shared_table.js'
import type { Clock } from '../options/options.js'
import { RemoteTier } from './remote_tier.js'
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
  const l2 = handle.channel === null ? undefined : new RemoteTier(handle.channel, opts.commandTimeout * 2 + 1000)
  const { emitter, emitError } = newEmitter()
  const audit = linkAudit(handle.access?.audit ?? null)
  const access = accessState(opts, handle.access?.buckets, l2, audit, emitError)
  return assemble({ opts, table, stats, l2, serveL2: false, ownerChannel: handle.channel ?? undefined, emitter, emitError, namespace: handle.namespace, access, audit })
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
