import { effectiveTtl } from '../codec/entry.js'
import type { Freshness } from '../codec/entry.js'
import { InvalidOptionError } from '../errors.js'
import { validateTags } from '../keys.js'
import type { ResolvedOptions } from '../options/options.js'
import { describe, parseDuration } from '../util/units.js'

export interface SetOptions {
  /** TTL for this entry; defaults to the cache's `ttl`; `Infinity` = never expires. */
  ttl?: number | string
  /** Tags for `invalidateTags`. */
  tags?: string[]
  /** Write only if the key is missing. */
  nx?: boolean
  /** Write only if the key exists. */
  xx?: boolean
}

export interface SetManyEntry<V = unknown> {
  key: string
  value: V
  ttl?: number | string
  tags?: string[]
}

/** One change handed to the `writer` option (write-through). */
export interface WriteChange {
  key: string
  value?: unknown
  /** true for a delete */
  deleted?: boolean
}

export interface GetOrSetOptions {
  ttl?: number | string
  tags?: string[]
  /**
   * Stale-while-revalidate: after `softTtl` the cached value is still returned at
   * once, and one background refresh per key runs the loader.
   */
  softTtl?: number | string
  /**
   * Stale-if-error: for `grace` after the TTL ends, the expired value is kept and
   * returned when the loader (or Redis) fails. Without failures it reads as expired.
   */
  grace?: number | string
  /**
   * Probabilistic early refresh (XFetch): the closer a hot entry gets to its TTL, the
   * likelier a read refreshes it in the background first. 1 is the usual strength.
   */
  earlyRefresh?: number
}

/** A write's validated options: TTL in ms (undefined = never expires, jitter applied) and tags. */
export interface WriteOptions {
  ttl: number | undefined
  tags: string[] | undefined
}

const SET_KEYS = new Set(['ttl', 'tags', 'nx', 'xx'])
const GET_OR_SET_KEYS = new Set(['ttl', 'tags', 'softTtl', 'grace', 'earlyRefresh'])
const CAS_KEYS = new Set(['ttl'])

/** An options object of a call: undefined, or an object with only known keys. */
function checkOptions(options: unknown, known: Set<string>, op: string): Record<string, unknown> {
  if (options === undefined) return {}
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidOptionError(`${op} options must be an object (got ${describe(options)}).`)
  }
  for (const k of Object.keys(options)) {
    if (!known.has(k)) throw new InvalidOptionError(`Unknown ${op} option '${k}'. Known: ${[...known].join(', ')}.`)
  }
  return options as Record<string, unknown>
}

/** A call's TTL: its own, else the cache's; `Infinity` = never expires; jitter applied. */
export function ttlOf(ttl: unknown, o: ResolvedOptions): number | undefined {
  if (ttl === Infinity) return undefined
  return effectiveTtl(ttl === undefined ? o.ttl : parseDuration(ttl, 'ttl'), o.ttlJitter)
}

/** ttl and tags of a write. */
export function writeOptions(x: { ttl?: unknown; tags?: unknown }, o: ResolvedOptions): WriteOptions {
  return { ttl: ttlOf(x.ttl, o), tags: x.tags === undefined ? undefined : validateTags(x.tags, o.maxKeyBytes) }
}

/** set's options: the write's, and its condition. */
export function setOptions(options: unknown, o: ResolvedOptions): { opts: WriteOptions; condition: 'nx' | 'xx' | undefined } {
  const x = checkOptions(options, SET_KEYS, 'set')
  if (x.nx !== undefined && typeof x.nx !== 'boolean') throw new InvalidOptionError(`nx must be true or false (got ${describe(x.nx)}).`)
  if (x.xx !== undefined && typeof x.xx !== 'boolean') throw new InvalidOptionError(`xx must be true or false (got ${describe(x.xx)}).`)
  if (x.nx && x.xx) throw new InvalidOptionError('nx and xx cannot both be true: nx writes only missing keys, xx only existing ones.')
  return { opts: writeOptions(x, o), condition: x.nx ? 'nx' : x.xx ? 'xx' : undefined }
}

/** compareAndSet's options. */
export function casOptions(options: unknown, o: ResolvedOptions): WriteOptions {
  return { ttl: ttlOf(checkOptions(options, CAS_KEYS, 'compareAndSet').ttl, o), tags: undefined }
}

/** getOrSet's options: the write's, and its freshness. */
export function getOrSetOptions(options: unknown, o: ResolvedOptions): { opts: WriteOptions; fresh: Freshness } {
  const x = checkOptions(options, GET_OR_SET_KEYS, 'getOrSet')
  const fresh: Freshness = {
    softTtl: parseDuration(x.softTtl, 'softTtl'),
    grace: parseDuration(x.grace, 'grace'),
    earlyRefresh: x.earlyRefresh as number | undefined,
  }
  if (fresh.earlyRefresh !== undefined && !(typeof fresh.earlyRefresh === 'number' && fresh.earlyRefresh > 0 && fresh.earlyRefresh <= 10)) {
    throw new InvalidOptionError(`earlyRefresh is a strength above 0 and at most 10, usually 1 (got ${describe(fresh.earlyRefresh)}).`)
  }
  return { opts: writeOptions(x, o), fresh }
}
