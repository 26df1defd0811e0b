import type { Cluster, ClusterNode, ClusterOptions, Redis, RedisOptions } from 'ioredis'
import { InvalidOptionError } from '../errors.js'
import type { CacheError } from '../errors.js'
import { kMinBytes } from '../l1/layout.js'
import { validateNamespace } from './namespace.js'
import { describe, MAX_TIMER_MS, parseBytes, parseDuration } from '../util/units.js'

/** A duration: milliseconds, or a string such as '500ms', '10s', '5m', '1h', '1d'. */
export type Duration = number | string
/** A size: bytes, or a string such as '512kb', '64mb', '1gb'. */
export type ByteSize = number | string

/** `{ cluster: [...nodes], ...clusterOptions }` connects to a Redis Cluster. */
export type ClusterConnection = { cluster: ClusterNode[] } & ClusterOptions

/** Where L2 lives. */
export type RedisOption = string | RedisOptions | ClusterConnection | Redis | Cluster | false

/** A source of the current time in milliseconds; inject one in tests instead of sleeping. */
export interface Clock {
  now(): number
}

export interface L1Options {
  /**
   * Size of the shared L1: one SharedArrayBuffer of at most this many bytes per
   * process (index and data), shared by every thread attached to the cache.
   * From '256kb' to '2gb'. @default '64mb'
   */
  maxBytes?: ByteSize
  /** Entries larger than this (encoded) stay in L2 only. @default '1mb' (capped by what one L1 shard holds) */
  maxEntryBytes?: ByteSize
  /**
   * How long a key found missing in L2 is remembered in L1, so that repeated
   * lookups of it cost no Redis round trip; any write or delete of the key in this
   * process clears it at once. `0` turns negative caching off. @default '1s'
   */
  negativeTtl?: Duration | 0
  /**
   * Longest time an L1 copy of an L2 entry is served before L2 is read again: the
   * bound on how stale L1 can be after another process changes Redis (there is no
   * cross-process invalidation yet). `Infinity` = until the entry's own TTL. Not
   * used without L2. @default '10s'
   */
  ttl?: Duration
}

export interface CacheOptions {
  /**
   * The L2: a `redis://` URL, ioredis options, `{ cluster: [...nodes], ...clusterOptions }`,
   * an existing ioredis `Redis` or `Cluster` (never closed by nearcache), or `false` for no L2.
   * @default process.env.NEARCACHE_REDIS_URL, else false
   */
  redis?: RedisOption
  /**
   * Key prefix: entries live at `<namespace>:<key>` in Redis. Caches with different
   * namespaces never see each other's entries. Segments of ASCII letters, digits,
   * '_', '.' and '-', separated by ':' (`shop`, `shop:users`), at most 256
   * characters; no segment may start with '__nc' (reserved).
   * @default 'nc'
   */
  namespace?: string
  /** Default TTL for entries written without one (`Infinity` = none). @default no expiry */
  ttl?: Duration
  /**
   * TTL jitter in percent (0–100): each TTL is shortened by a random amount up to this
   * share, so entries written together do not expire together. The TTL you give stays
   * the upper bound. @default 0
   */
  ttlJitter?: number
  /** L1 options, or `false` for none. @default {} */
  l1?: L1Options | false
  /** Longest key accepted, in UTF-8 bytes. @default 1024 */
  maxKeyBytes?: number
  /** Largest value accepted, measured as its encoded (serialized, uncompressed) size; at most '512mb' (Redis' largest string). @default '16mb' */
  maxValueBytes?: ByteSize
  /** Encoded values at least this large are compressed with LZ4 (kept only when smaller). `false` disables compression. @default '1kb' */
  compressThreshold?: ByteSize | false
  /** Time allowed to connect to Redis in `createCache`. @default '5s' */
  connectTimeout?: Duration
  /** Time allowed for one Redis command on a client nearcache creates. @default '5s' */
  commandTimeout?: Duration
  /** The clock used for expiry. @default Date */
  clock?: Clock
  /**
   * Coalesce the `get`s issued in one tick into per-slot `MGET`s (true) or send one
   * read each through ioredis auto-pipelining (false). Measured in bench/get_batching:
   * batching doubles throughput on a standalone server; on a Cluster distinct keys
   * fall in distinct slots, so there is nothing to coalesce and it costs ~10%.
   * @default true on a standalone server, false on a Cluster
   */
  batchGets?: boolean
  /**
   * Most operations in flight to Redis at once from this process; more wait their
   * turn (backpressure) instead of queueing unbounded commands. @default 10000
   */
  maxInFlight?: number
  /**
   * Keep L1 coherent across processes: every change this process makes in Redis is
   * announced on Redis pub/sub, on its root namespace's channel `__nc|inv|<root>`
   * (`shop` for `shop:users`), and every other process of that root drops its L1
   * copies of what changed. A process without an L1 still announces (so the
   * others stay coherent) but does not subscribe. `{ legacyChannel: true }` also
   * publishes on and listens to the global channel `__nc|inv` of nearcache before
   * protocol version 1, for rolling upgrades. @default true
   */
  invalidation?: boolean | { legacyChannel?: boolean }
  /**
   * After `threshold` L2 failures in a row (unreachable, timed out, Cluster down)
   * the circuit opens: L2 operations fail at once with E_L2_UNAVAILABLE for
   * `resetTimeout`, then one probe decides. `false` turns it off.
   * @default { threshold: 5, resetTimeout: '5s' }
   */
  circuitBreaker?: { threshold?: number; resetTimeout?: Duration } | false
  /**
   * Stampede protection for `getOrSet` across threads and processes: on a miss one
   * caller takes a short Redis lock (`lease`) and runs the loader; the others poll
   * Redis for its result and, after `waitTimeout`, run their own loader. Within one
   * thread concurrent calls always share one load. `true` = the defaults.
   * @default false (lease '10s', waitTimeout '5s' when on)
   */
  stampedeLock?: boolean | { lease?: Duration; waitTimeout?: Duration }
  /**
   * Write-behind to Redis: a `set` resolves once the write is in a local
   * write-ahead log in `dir` (durable per `fsync`: 'always' and 'batch' fsync
   * before acknowledging, 'none' survives a process crash but not an OS crash);
   * writes reach Redis in ordered batches, with retries; after a crash the log is
   * replayed on the next `createCache` with the same `dir`. At most `maxQueue`
   * writes wait (then `set` rejects with E_QUEUE_FULL). Deletes, conditional writes
   * and invalidations wait for the queue first; `close()` drains it. Needs Redis.
   * `dir` is created 0700 (files 0600); one owned by another user or writable by
   * group/others is refused with E_INVALID_OPTION. Replay writes only this cache's
   * namespace. A write Redis refuses for good (a reply error such as an invalid
   * expire or OOM) is tried `maxAttempts` times with backoff, then moved to
   * `<dir>/dead-letter.jsonl` (at most `maxDeadLetterBytes`; past it new dead letters
   * are dropped) with an 'error' event; `nearcache dead-letter` shows and replays it.
   * @default false (fsync 'batch', batchSize 500, flushInterval 50 ms, maxQueue 100 000, maxAttempts 5, maxDeadLetterBytes '64mb')
   */
  writeBehind?: { dir: string; fsync?: 'always' | 'batch' | 'none'; batchSize?: number; flushInterval?: Duration; maxQueue?: number; maxAttempts?: number; maxDeadLetterBytes?: ByteSize } | false
  /**
   * Write-through: called with every `set`/`setMany`/`delete`/`deleteMany` change
   * before the cache is written; if it throws, the cache is left alone and the call
   * rejects with its error. Runs in the thread that made the change (threads attached
   * with attachCache do not call it). @default none
   */
  writer?: (changes: { namespace: string; key: string; value?: unknown; deleted?: boolean }[]) => Promise<void>
  /**
   * Absorb L2 outages on reads: a read Redis cannot answer (E_L2_UNAVAILABLE, circuit
   * open) is a miss plus an 'error' event, and getOrSet returns the loader's value
   * even when it cannot cache it. Writes still reject. @default false
   */
  suppressL2Errors?: boolean
  /**
   * Called with every error the cache reports on its 'error' event, from the start:
   * also those found while `createCache` is still running, before a listener can be
   * attached (damage in the write-behind log, dead letters of its replay). Those
   * early errors are emitted as 'error' events too, right after `createCache`
   * resolves (on the next turn of the event loop). A throwing `onError` is ignored.
   * @default none
   */
  onError?: (err: CacheError) => void
  /**
   * A piscina pool of codec workers: values whose msgpack encoding is at least
   * `threshold` bytes are LZ4-compressed (and large compressed values inflated on
   * `get`) in a worker, with the bytes transferred, not copied. bench/codec_pool
   * measured 0.72–1.17x inline for 100 KiB records (msgpackr stays on the calling
   * thread), 1.01–1.06x for 100 KiB text, 1.25x for 1 MiB text, parity below 1 KiB;
   * below ~64 KiB the hop does not pay and work stays inline. `true` = the measured
   * defaults (compress from 64 KiB, inflate from 256 KiB; `adaptive` off).
   * @default false
   */
  codecWorkers?: boolean | { threads?: number; threshold?: ByteSize; adaptive?: boolean }
}

export interface ResolvedOptions {
  redis: RedisOption
  namespace: string
  ttl: number | undefined
  ttlJitter: number
  l1: { maxBytes: number; maxEntryBytes: number; negativeTtl: number; ttl: number } | false
  maxKeyBytes: number
  maxValueBytes: number
  compressThreshold: number
  connectTimeout: number
  commandTimeout: number
  clock: Clock
  batchGets: boolean | undefined
  maxInFlight: number
  invalidation: { legacyChannel: boolean } | false
  circuitBreaker: { threshold: number; resetTimeout: number } | false
  stampedeLock: { lease: number; waitTimeout: number } | false
  writeBehind: { dir: string; fsync: 'always' | 'batch' | 'none'; batchSize: number; flushIntervalMs: number; maxQueue: number; maxAttempts: number; maxDeadLetterBytes: number } | false
  onError: ((err: CacheError) => void) | undefined
  writer: CacheOptions['writer']
  suppressL2Errors: boolean
  codecWorkers: { threads?: number; threshold?: number; adaptive: boolean } | false
}

const L1_KNOWN = new Set(['maxBytes', 'maxEntryBytes', 'negativeTtl', 'ttl'])
const KNOWN = new Set([
  'redis', 'namespace', 'ttl', 'ttlJitter', 'l1', 'maxKeyBytes', 'maxValueBytes',
  'compressThreshold', 'connectTimeout', 'commandTimeout', 'clock', 'batchGets', 'maxInFlight', 'invalidation', 'circuitBreaker', 'stampedeLock', 'writeBehind', 'writer', 'suppressL2Errors', 'codecWorkers', 'onError',
])

/** Largest `maxValueBytes`: Redis' largest string (proto-max-bulk-len, 512 MiB). */
export const MAX_VALUE_BYTES = 512 * 1024 * 1024
/**
 * Largest `l1.maxBytes`: 2 GiB. The table addresses its bytes with 32-bit
 * offsets today, so a larger one would corrupt reads; refused until it does not.
 */
export const MAX_L1_BYTES = 2 * 1024 * 1024 * 1024
export { MAX_NAMESPACE_CHARS, validateNamespace } from './namespace.js'

export function resolveOptions(input: CacheOptions | undefined): ResolvedOptions {
  const o = input ?? {}
  if (typeof o !== 'object' || o === null || Array.isArray(o)) {
    throw new InvalidOptionError(`createCache() takes an options object (got ${describe(o)}).`)
  }
  for (const k of Object.keys(o)) {
    if (!KNOWN.has(k)) throw new InvalidOptionError(`Unknown option '${k}'. Known options: ${[...KNOWN].join(', ')}.`)
  }
  const redis = o.redis === undefined ? (process.env.NEARCACHE_REDIS_URL || false) : o.redis
  if (redis !== false && typeof redis !== 'string' && (typeof redis !== 'object' || redis === null)) {
    throw new InvalidOptionError(`redis must be a redis:// URL, ioredis options, { cluster: [...] }, an ioredis client, or false (got ${describe(redis)}).`)
  }
  if (typeof redis === 'string' && !/^rediss?:\/\//.test(redis)) {
    throw new InvalidOptionError(`redis URL must start with redis:// or rediss:// (got ${JSON.stringify(redis)}).`)
  }
  const ttlJitter = o.ttlJitter ?? 0
  if (typeof ttlJitter !== 'number' || !(ttlJitter >= 0 && ttlJitter <= 100)) {
    throw new InvalidOptionError(`ttlJitter is a percentage from 0 to 100 (got ${describe(ttlJitter)}).`)
  }
  let l1: ResolvedOptions['l1']
  if (o.l1 === false) l1 = false
  else if (o.l1 === undefined || (typeof o.l1 === 'object' && o.l1 !== null && !Array.isArray(o.l1))) {
    const l1o = o.l1 ?? {}
    for (const k of Object.keys(l1o)) {
      if (!L1_KNOWN.has(k)) throw new InvalidOptionError(`Unknown l1 option '${k}'. Known: ${[...L1_KNOWN].join(', ')}.`)
    }
    const maxBytes = parseBytes(l1o.maxBytes, 'l1.maxBytes', 64 * 1024 * 1024, MAX_L1_BYTES)
    if (maxBytes < kMinBytes) throw new InvalidOptionError(`l1.maxBytes must be at least ${kMinBytes} bytes (256kb) (got ${maxBytes}).`)
    l1 = {
      maxBytes,
      maxEntryBytes: parseBytes(l1o.maxEntryBytes, 'l1.maxEntryBytes', 1024 * 1024),
      negativeTtl: l1o.negativeTtl === 0 ? 0 : (parseDuration(l1o.negativeTtl ?? 1000, 'l1.negativeTtl') as number),
      ttl: l1o.ttl === Infinity ? 0 : (parseDuration(l1o.ttl ?? 10_000, 'l1.ttl') as number),
    }
  } else {
    throw new InvalidOptionError(`l1 must be an options object or false (got ${describe(o.l1)}).`)
  }
  if (redis === false && l1 === false) {
    throw new InvalidOptionError('With redis: false and l1: false the cache has no tier at all; enable one of them.')
  }
  const maxKeyBytes = o.maxKeyBytes ?? 1024
  if (!Number.isSafeInteger(maxKeyBytes) || maxKeyBytes < 1 || maxKeyBytes > 65_535) {
    throw new InvalidOptionError(`maxKeyBytes must be a whole number from 1 to 65535 (got ${describe(maxKeyBytes)}).`)
  }
  const clock = o.clock ?? Date
  if (typeof clock !== 'object' && typeof clock !== 'function' || typeof (clock as Clock).now !== 'function') {
    throw new InvalidOptionError(`clock must be an object with a now() method returning milliseconds (got ${describe(clock)}).`)
  }
  const maxInFlight = o.maxInFlight ?? 10_000
  if (!Number.isSafeInteger(maxInFlight) || maxInFlight < 1) {
    throw new InvalidOptionError(`maxInFlight must be a whole number of at least 1 (got ${describe(maxInFlight)}).`)
  }
  let circuitBreaker: ResolvedOptions['circuitBreaker'] = false
  if (o.circuitBreaker !== false) {
    const cb = o.circuitBreaker ?? {}
    if (typeof cb !== 'object' || cb === null) throw new InvalidOptionError(`circuitBreaker must be { threshold?, resetTimeout? } or false (got ${describe(cb)}).`)
    const threshold = cb.threshold ?? 5
    if (!Number.isSafeInteger(threshold) || threshold < 1) throw new InvalidOptionError(`circuitBreaker.threshold must be a whole number of at least 1 (got ${describe(threshold)}).`)
    circuitBreaker = { threshold, resetTimeout: parseDuration(cb.resetTimeout ?? 5000, 'circuitBreaker.resetTimeout', MAX_TIMER_MS) as number }
  }
  let stampedeLock: ResolvedOptions['stampedeLock'] = false
  if (o.stampedeLock) {
    const sl = o.stampedeLock === true ? {} : o.stampedeLock
    if (typeof sl !== 'object') throw new InvalidOptionError(`stampedeLock must be true, false or { lease?, waitTimeout? } (got ${describe(sl)}).`)
    stampedeLock = { lease: parseDuration(sl.lease ?? 10_000, 'stampedeLock.lease', MAX_TIMER_MS) as number, waitTimeout: parseDuration(sl.waitTimeout ?? 5000, 'stampedeLock.waitTimeout', MAX_TIMER_MS) as number }
  }
  let writeBehind: ResolvedOptions['writeBehind'] = false
  if (o.writeBehind) {
    const wb = o.writeBehind
    if (typeof wb !== 'object' || typeof wb.dir !== 'string' || wb.dir.length === 0) {
      throw new InvalidOptionError(`writeBehind must be { dir, fsync?, batchSize?, flushInterval?, maxQueue? } with dir a directory path (got ${describe(wb)}).`)
    }
    if (redis === false) throw new InvalidOptionError('writeBehind writes behind to Redis: it needs the redis option.')
    const fsync = wb.fsync ?? 'batch'
    if (!['always', 'batch', 'none'].includes(fsync)) throw new InvalidOptionError(`writeBehind.fsync is 'always', 'batch' or 'none' (got ${describe(fsync)}).`)
    const batchSize = wb.batchSize ?? 500
    const maxQueue = wb.maxQueue ?? 100_000
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new InvalidOptionError(`writeBehind.batchSize must be a whole number of at least 1 (got ${describe(batchSize)}).`)
    if (!Number.isSafeInteger(maxQueue) || maxQueue < 1) throw new InvalidOptionError(`writeBehind.maxQueue must be a whole number of at least 1 (got ${describe(maxQueue)}).`)
    const maxAttempts = wb.maxAttempts ?? 5
    if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 100) throw new InvalidOptionError(`writeBehind.maxAttempts must be a whole number from 1 to 100 (got ${describe(maxAttempts)}).`)
    const maxDeadLetterBytes = parseBytes(wb.maxDeadLetterBytes, 'writeBehind.maxDeadLetterBytes', 64 * 1024 * 1024)
    if (maxDeadLetterBytes < 1) throw new InvalidOptionError(`writeBehind.maxDeadLetterBytes must be at least 1 byte (got ${describe(wb.maxDeadLetterBytes)}).`)
    writeBehind = { dir: wb.dir, fsync, batchSize, maxQueue, maxAttempts, maxDeadLetterBytes, flushIntervalMs: parseDuration(wb.flushInterval ?? 50, 'writeBehind.flushInterval', MAX_TIMER_MS) as number }
  }
  if (o.writer !== undefined && typeof o.writer !== 'function') {
    throw new InvalidOptionError(`writer must be an async function (changes) => void (got ${describe(o.writer)}).`)
  }
  if (o.onError !== undefined && typeof o.onError !== 'function') {
    throw new InvalidOptionError(`onError must be a function (err) => void (got ${describe(o.onError)}).`)
  }
  if (o.suppressL2Errors !== undefined && typeof o.suppressL2Errors !== 'boolean') {
    throw new InvalidOptionError(`suppressL2Errors must be true or false (got ${describe(o.suppressL2Errors)}).`)
  }
  let codecWorkers: ResolvedOptions['codecWorkers'] = false
  if (o.codecWorkers) {
    const cw = o.codecWorkers === true ? {} : o.codecWorkers
    if (typeof cw !== 'object') throw new InvalidOptionError(`codecWorkers must be true, false or { threads?, threshold?, adaptive? } (got ${describe(cw)}).`)
    codecWorkers = { threads: cw.threads, threshold: cw.threshold === undefined ? undefined : parseBytes(cw.threshold, 'codecWorkers.threshold', 0), adaptive: cw.adaptive ?? false }
  }
  const invalidation = resolveInvalidation(o.invalidation)
  if (o.batchGets !== undefined && typeof o.batchGets !== 'boolean') {
    throw new InvalidOptionError(`batchGets must be true or false (got ${describe(o.batchGets)}).`)
  }
  return {
    redis,
    namespace: validateNamespace(o.namespace ?? 'nc'),
    ttl: o.ttl === Infinity ? undefined : parseDuration(o.ttl, 'ttl'),
    ttlJitter,
    l1,
    maxKeyBytes,
    maxValueBytes: parseBytes(o.maxValueBytes, 'maxValueBytes', 16 * 1024 * 1024, MAX_VALUE_BYTES),
    compressThreshold: o.compressThreshold === false ? Infinity : parseBytes(o.compressThreshold, 'compressThreshold', 1024),
    connectTimeout: parseDuration(o.connectTimeout ?? 5000, 'connectTimeout', MAX_TIMER_MS) as number,
    commandTimeout: parseDuration(o.commandTimeout ?? 5000, 'commandTimeout', MAX_TIMER_MS) as number,
    clock,
    batchGets: o.batchGets,
    maxInFlight,
    invalidation,
    circuitBreaker,
    stampedeLock,
    writeBehind,
    writer: o.writer,
    suppressL2Errors: o.suppressL2Errors ?? false,
    onError: o.onError,
    codecWorkers,
  }
}

function resolveInvalidation(x: unknown): ResolvedOptions['invalidation'] {
  if (x === undefined || x === true) return { legacyChannel: false }
  if (x === false) return false
  const bad = () => new InvalidOptionError(`invalidation must be true, false or { legacyChannel?: boolean } (got ${describe(x)}).`)
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw bad()
  for (const k of Object.keys(x)) if (k !== 'legacyChannel') throw bad()
  const legacy = (x as { legacyChannel?: unknown }).legacyChannel
  if (legacy !== undefined && typeof legacy !== 'boolean') throw bad()
  return { legacyChannel: legacy === true }
}
