import type { RedisOptions } from 'ioredis'
import type { ClusterConnection, ResolvedOptions } from '../options/options.js'

/** What a thread attached to a cache may use to reconnect: the owner's `redis` option, as plain data. */
export type PlainRedisOption = string | RedisOptions | ClusterConnection

/**
 * How an attached thread reads L2, decided once by the owner and carried in the
 * handle: with connections of its own (`via: 'own'`, the owner's `redis` option
 * copied as plain data), or through the owner (`via: 'owner'`, and why).
 * Writes, deletes, locks and every other change always go through the owner.
 */
export type ReadRoute = { readonly via: 'own'; readonly redis: PlainRedisOption } | { readonly via: 'owner'; readonly why: string }

/**
 * The owner's choice. Reads stay with the owner when the option asks for it; when
 * the owner was handed a client object (it cannot be rebuilt elsewhere) or its
 * `redis` option holds anything but plain data (functions such as a retryStrategy,
 * class instances); with `encryption` (an attached thread holds no key, and reads
 * plain envelopes the owner opens); and with `writeBehind` (writes not yet flushed
 * are only in the owner's queue, so Redis alone would answer stale).
 */
export function readRoute(opts: ResolvedOptions, clientHandedIn: boolean): ReadRoute {
  if (opts.redis === false) return { via: 'owner', why: 'no L2' }
  if (opts.workerConnections === 'owner') return { via: 'owner', why: "workerConnections: 'owner'" }
  if (opts.encryption) return { via: 'owner', why: 'encryption: only the owner holds the keys' }
  if (opts.writeBehind) return { via: 'owner', why: 'writeBehind: unflushed writes are only in the owner' }
  if (clientHandedIn) return { via: 'owner', why: 'the owner was given an ioredis client object' }
  if (!isPlainData(opts.redis, 0)) return { via: 'owner', why: 'the redis option holds functions or objects that cannot be sent to another thread' }
  return { via: 'own', redis: structuredClone(opts.redis) as PlainRedisOption }
}

/** Strings, numbers, booleans, null, Buffers and byte arrays, arrays and plain objects of those (no cycles: depth-bounded). */
function isPlainData(v: unknown, depth: number): boolean {
  if (depth > 16) return false
  if (v === null || v === undefined) return true
  const t = typeof v
  if (t === 'string' || t === 'number' || t === 'boolean') return true
  if (t !== 'object') return false
  if (v instanceof Uint8Array) return true
  if (Array.isArray(v)) return v.every((x) => isPlainData(x, depth + 1))
  const proto = Object.getPrototypeOf(v) as unknown
  if (proto !== Object.prototype && proto !== null) return false
  if (Object.getOwnPropertySymbols(v).length > 0) return false
  return Object.values(v as Record<string, unknown>).every((x) => isPlainData(x, depth + 1))
}
