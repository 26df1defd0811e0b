import { kMinBytes } from '../l1/layout.js'
import { describe, MAX_TIMER_MS } from '../util/units.js'
import { checkFsync } from '../wal/fsync.js'
import { bytes, duration, fail, flag, func, group, optional, wholeNumber } from './declare.js'
import type { Decl, Decls } from './declare.js'
import { validateNamespace } from './namespace.js'
import { Keyring } from '../security/keyring.js'
import { AUDIT } from '../access/audit_options.js'
import { parseAccess } from '../access/principals.js'
import { LEGACY_UNSIGNED } from '../l2/bus_protocol.js'
import type { Clock, RedisOption, ResolvedOptions } from './types.js'

// Every option of createCache, declared once: its default and its rule, grouped by
// what it configures. The walk over these (resolveGroup) refuses unknown names,
// so the list of known options is this table. What each option means is documented
// on CacheOptions (types.ts); `default` here is the `@default` there.

/** Largest `maxValueBytes`: Redis' largest string (proto-max-bulk-len, 512 MiB). */
export const MAX_VALUE_BYTES = 512 * 1024 * 1024
/**
 * Largest `l1.maxBytes`: 2 GiB. The table addresses its bytes with 32-bit
 * offsets today, so a larger one would corrupt reads; refused until it does not.
 */
export const MAX_L1_BYTES = 2 * 1024 * 1024 * 1024

type On<K extends keyof ResolvedOptions> = Exclude<ResolvedOptions[K], false>
/** A slice of the table: some of createCache's options (the full table is checked below). */
type Part<K extends keyof ResolvedOptions> = { readonly [P in K]-?: Decl<ResolvedOptions[P]> }

/** A TTL: at most 2^47 ms (MAX_TTL_MS). */
const ttlMs = duration()
/** A duration that a Node.js timer waits for (timeouts, intervals): at most about 24.8 days. */
const timer = duration(MAX_TIMER_MS)

// ---------------------------------------------------------------- core: keys, values, expiry

const percent = (v: unknown, name: string): number =>
  typeof v === 'number' && v >= 0 && v <= 100 ? v : fail(`${name} is a percentage from 0 to 100 (got ${describe(v)}).`)

const CORE: Part<'namespace' | 'ttl' | 'ttlJitter' | 'maxKeyBytes' | 'maxValueBytes' | 'compressThreshold' | 'clock'> = {
  namespace: { default: 'nc', parse: validateNamespace },
  ttl: { parse: (v, name) => (v === undefined || v === Infinity ? undefined : ttlMs(v, name)) },
  ttlJitter: { default: 0, parse: percent },
  maxKeyBytes: { default: 1024, parse: wholeNumber(1, 65_535) },
  maxValueBytes: { default: '16mb', parse: bytes(MAX_VALUE_BYTES) },
  compressThreshold: { default: '1kb', parse: (v, name) => (v === false ? Infinity : bytes()(v, name)) },
  clock: {
    default: Date,
    parse: (v, name) => {
      if ((typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as Partial<Clock>).now === 'function') return v as Clock
      return fail(`${name} must be an object with a now() method returning milliseconds (got ${describe(v)}).`)
    },
  },
}

// ---------------------------------------------------------------- l1: the shared in-process tier

const L1: Decls<On<'l1'>> = {
  maxBytes: {
    default: '64mb',
    parse: (v, name) => {
      const n = bytes(MAX_L1_BYTES)(v, name)
      return n >= kMinBytes ? n : fail(`${name} must be at least ${kMinBytes} bytes (256kb) (got ${n}).`)
    },
  },
  maxEntryBytes: { default: '1mb', parse: bytes() },
  negativeTtl: { default: '1s', parse: (v, name) => (v === 0 ? 0 : ttlMs(v, name)) },
  ttl: { default: '10s', parse: (v, name) => (v === Infinity ? 0 : ttlMs(v, name)) },
  ttlJitter: { default: 20, parse: percent },
  shareValues: { default: false, parse: flag },
}

const L1_GROUP: Part<'l1'> = {
  l1: { default: {}, parse: group(L1, false) },
}

// ---------------------------------------------------------------- redis: the L2 connection and how it is used

const INVALIDATION: Decls<On<'invalidation'>> = {
  legacyChannel: { default: false, parse: flag },
}

const CIRCUIT_BREAKER: Decls<On<'circuitBreaker'>> = {
  threshold: { default: 5, parse: wholeNumber(1) },
  resetTimeout: { default: '5s', parse: timer },
}

const REDIS: Part<'redis' | 'connectTimeout' | 'commandTimeout' | 'batchGets' | 'clusterReadScript' | 'workerConnections' | 'maxInFlight' | 'invalidation' | 'circuitBreaker' | 'suppressL2Errors'> = {
  redis: {
    // The default is read from the environment at each call, not once.
    parse: (v) => {
      const redis = v === undefined ? process.env.NEARCACHE_REDIS_URL || false : v
      if (redis !== false && typeof redis !== 'string' && !(typeof redis === 'object' && redis !== null)) {
        fail(`redis must be a redis:// URL, ioredis options, { cluster: [...] }, an ioredis client, or false (got ${describe(redis)}).`)
      }
      if (typeof redis === 'string' && !/^rediss?:\/\//.test(redis)) fail(`redis URL must start with redis:// or rediss:// (got ${JSON.stringify(redis)}).`)
      return redis as RedisOption
    },
  },
  connectTimeout: { default: '5s', parse: timer },
  commandTimeout: { default: '5s', parse: timer },
  batchGets: { parse: optional(flag) },
  clusterReadScript: { default: true, parse: flag },
  workerConnections: { default: 'own', parse: (v, name) => (v === 'own' || v === 'owner' ? v : fail(`${name} is 'own' or 'owner' (got ${describe(v)}).`)) },
  maxInFlight: { default: 10_000, parse: wholeNumber(1) },
  invalidation: { default: true, parse: group(INVALIDATION, true) },
  circuitBreaker: { default: {}, parse: group(CIRCUIT_BREAKER, false) },
  suppressL2Errors: { default: false, parse: flag },
}

// ---------------------------------------------------------------- getOrSet

const STAMPEDE_LOCK: Decls<On<'stampedeLock'>> = {
  lease: { default: '10s', parse: timer },
  waitTimeout: { default: '5s', parse: timer },
}

const GET_OR_SET: Part<'stampedeLock'> = {
  stampedeLock: { default: false, parse: group(STAMPEDE_LOCK, true) },
}

// ---------------------------------------------------------------- write-behind

const WRITE_BEHIND: Decls<On<'writeBehind'>> = {
  dir: { required: true, parse: (v, name) => (typeof v === 'string' && v.length > 0 ? v : fail(`${name} must be a directory path (got ${describe(v)}).`)) },
  fsync: { default: 'batch', parse: checkFsync },
  batchSize: { default: 500, parse: wholeNumber(1) },
  flushIntervalMs: { from: 'flushInterval', default: 50, parse: timer },
  maxQueue: { default: 100_000, parse: wholeNumber(1) },
  maxAttempts: { default: 5, parse: wholeNumber(1, 100) },
  maxDeadLetterBytes: { default: '64mb', parse: bytes() },
}

const WRITES: Part<'writeBehind' | 'writer'> = {
  writeBehind: { default: false, parse: group(WRITE_BEHIND, false) },
  writer: { parse: optional(func<NonNullable<ResolvedOptions['writer']>>('an async function (changes) => void')) },
}

// ---------------------------------------------------------------- codec workers

const CODEC_WORKERS: Decls<On<'codecWorkers'>> = {
  threads: { parse: optional(wholeNumber(1)) },
  threshold: { parse: optional(bytes()) },
  adaptive: { default: false, parse: flag },
}

const CODEC: Part<'codecWorkers'> = {
  codecWorkers: { default: false, parse: group(CODEC_WORKERS, true) },
}

// ---------------------------------------------------------------- security

const ENCRYPTION: Decls<On<'encryption'>> = {
  keyring: { from: 'keys', required: true, parse: (v, name) => Keyring.from(v, name) },
  acceptPlaintext: { default: false, parse: flag },
}

const SECURITY: Part<'encryption' | 'access' | 'audit'> = {
  encryption: { default: false, parse: group(ENCRYPTION, false) },
  access: { default: false, parse: parseAccess },
  audit: { default: false, parse: group(AUDIT, false) },
}

// ---------------------------------------------------------------- events

const EVENTS: Part<'onError'> = {
  onError: { parse: optional(func<NonNullable<ResolvedOptions['onError']>>('a function (err) => void')) },
}

/** Every option of createCache, in the order they are read (the first bad one is reported). */
export const OPTIONS: Decls<ResolvedOptions> = { ...REDIS, ...CORE, ...L1_GROUP, ...GET_OR_SET, ...WRITES, ...CODEC, ...SECURITY, ...EVENTS }

/** The options whose values are groups of options, by name, for tests and docs. */
export const GROUPS = { l1: L1, invalidation: INVALIDATION, circuitBreaker: CIRCUIT_BREAKER, stampedeLock: STAMPEDE_LOCK, writeBehind: WRITE_BEHIND, codecWorkers: CODEC_WORKERS, encryption: ENCRYPTION, audit: AUDIT } as const

/** Rules that relate options to each other, checked after each option is read. */
export const CROSS_CHECKS: readonly ((o: ResolvedOptions) => string | undefined)[] = [
  (o) => (o.redis === false && o.l1 === false ? 'With redis: false and l1: false the cache has no tier at all; enable one of them.' : undefined),
  (o) => (o.writeBehind !== false && o.redis === false ? 'writeBehind writes behind to Redis: it needs the redis option.' : undefined),
  (o) => {
    const d = o.access ? o.access.principals.find((p) => p.rateLimit?.distributed) : undefined
    return d && o.redis === false ? `access.principals.${d.name}.rateLimit.distributed keeps the budget in Redis: it needs the redis option.` : undefined
  },
  (o) => {
    if (!o.audit) return undefined
    if (o.audit.hashKeys && !o.audit.hashKey && !o.encryption) return 'audit.hashKeys needs a key: give audit.hashKey (32 bytes), or configure encryption (the audit key is then derived from its first key).'
    return undefined
  },
  (o) => (o.encryption !== false && o.invalidation !== false && o.invalidation.legacyChannel ? LEGACY_UNSIGNED : undefined),
]
