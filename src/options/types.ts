import type { EncryptionKeyInput, Keyring } from '../security/keyring.js'
import type { Cluster, ClusterNode, ClusterOptions, Redis, RedisOptions } from 'ioredis'
import type { CacheError } from '../errors.js'
import type { FsyncPolicy } from '../wal/fsync.js'
import type { AccessInput, ResolvedAccess } from '../access/principals.js'
import type { AuditInput, ResolvedAudit } from '../access/audit_options.js'

// The shapes of createCache's options: what a user passes (CacheOptions, documented
// here) and what the cache runs with (ResolvedOptions). Defaults and validation are
// declared in declarations.ts, one entry per option.

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
  /**
   * Entries larger than this (encoded) stay in L2 only. Not used without L2: there
   * an entry larger than one L1 shard holds is refused with E_VALUE_TOO_LARGE.
   * @default '1mb' (capped by what one L1 shard holds)
   */
  maxEntryBytes?: ByteSize
  /**
   * How long a key found missing in L2 is remembered in L1, so that repeated
   * lookups of it cost no Redis round trip. A write or delete of the key clears it
   * at once: in this process directly, in the others through the invalidation bus
   * (see `invalidation`). `0` turns negative caching off. Not used without L2.
   * @default '1s'
   */
  negativeTtl?: Duration | 0
  /**
   * Longest time an L1 copy of an L2 entry (read or written) is served before L2
   * is read again. Changes other processes make reach L1 through the invalidation
   * bus (see `invalidation`), which drops the stale copies when the announcement
   * arrives; L1 is emptied when the bus disconnects or sees a gap in a publisher's
   * messages. `l1.ttl` bounds how stale L1 can be when an announcement is lost and
   * nothing shows it (a publisher's last message, or a publish while the
   * subscription is being re-established), and it is the only bound with
   * `invalidation: false`. `Infinity` = until the entry's own TTL. Not used
   * without L2. @default '10s'
   */
  ttl?: Duration
  /**
   * Jitter of `l1.ttl` in percent (0–100): each L1 copy is kept `l1.ttl` shortened
   * by a random amount up to this share, so copies filled together do not all expire
   * (and go back to Redis) together. `l1.ttl` stays the upper bound. @default 20
   */
  ttlJitter?: number
  /**
   * Return one shared, deep-frozen value per thread and key from L1 hits instead of
   * each caller's own copy: lru-cache speed for read-only data. A caller that tries
   * to change such a value gets a TypeError (strict mode) or nothing happens.
   * @default false
   */
  shareValues?: boolean
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
  /** Longest key accepted, in UTF-8 bytes (1 to 65535). @default 1024 */
  maxKeyBytes?: number
  /** Largest value accepted, measured as its encoded (serialized, uncompressed) size; at most '512mb' (Redis' largest string). @default '16mb' */
  maxValueBytes?: ByteSize
  /** Encoded values at least this large are compressed with LZ4 (kept only when smaller). `false` disables compression. @default '1kb' */
  compressThreshold?: ByteSize | false
  /** Time allowed to connect to Redis in `createCache`. @default '5s' */
  connectTimeout?: Duration
  /** Time allowed for one Redis command on a client nearcache creates. @default '5s' */
  commandTimeout?: Duration
  /** The clock used for expiry (entry TTLs, `l1.ttl`, negative entries). @default Date */
  clock?: Clock
  /**
   * Coalesce the `get`s issued in one tick (true) or send one read each (false). A
   * standalone server gets one `MGET` per tick; a Cluster one read script per master
   * (`clusterReadScript`) or, with that off, one `MGET` per slot. Measured in
   * bench/get_batching and bench/cluster_reads.
   * @default true, except on a Cluster with `clusterReadScript: false` (distinct keys
   * fall in distinct slots there, so per-slot batches coalesce nothing)
   */
  batchGets?: boolean
  /**
   * On a Cluster, read the keys each tick's batched `get`s need from one master with
   * one read-only script per master (Redis 7 `no-writes`, `allow-cross-slot-keys`)
   * instead of one command per key. Any redirection or script error (MOVED, ASK,
   * TRYAGAIN, CROSSSLOT, NOSCRIPT, a slot in migration, a server older than 7.0)
   * falls back to per-key reads, so a read never answers from a node that does not
   * own the key. `false` always reads per key. @default true
   */
  clusterReadScript?: boolean
  /**
   * How threads attached with `attachCache`/`workerCache` reach Redis for reads:
   * `'own'` opens connections in each attached thread (faster, more connections per
   * process); `'owner'` sends every read to the thread that created the cache. Writes,
   * locks and everything else always go through the owner. Attached threads use the
   * owner for reads too when the owner was given a client object, or uses
   * `encryption` or `writeBehind`. @default 'own'
   */
  workerConnections?: 'own' | 'owner'
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
   * expire or OOM) is tried `maxAttempts` times (1 to 100) with backoff, then moved to
   * `<dir>/dead-letter.jsonl` (at most `maxDeadLetterBytes`; past it new dead letters
   * are dropped) with an 'error' event; `nearcache dead-letter` shows and replays it.
   * @default false (fsync 'batch', batchSize 500, flushInterval 50 ms, maxQueue 100 000, maxAttempts 5, maxDeadLetterBytes '64mb')
   */
  writeBehind?: { dir: string; fsync?: FsyncPolicy; batchSize?: number; flushInterval?: Duration; maxQueue?: number; maxAttempts?: number; maxDeadLetterBytes?: ByteSize } | false
  /**
   * Write-through: called with every `set`/`setMany`/`delete`/`deleteMany` change
   * before the cache is written; if it throws, the cache is left alone and the call
   * rejects with its error. Runs in the thread that made the change (threads attached
   * with attachCache do not call it). Conditional writes (`nx`, `xx`,
   * `compareAndSet`) call it once the condition held and the write landed in the
   * cache; if it then throws, the entry is removed from the cache again and the call
   * rejects with its error. @default none
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
   * A piscina pool of `threads` codec workers: values whose msgpack encoding is at
   * least `threshold` bytes are LZ4-compressed (and large compressed values inflated
   * on `get`) in a worker, with the bytes transferred, not copied; when the workers
   * already have more queued than the call would cost inline, it runs inline.
   * bench/codec_pool measured 0.72–1.17x inline for 100 KiB records (msgpackr stays
   * on the calling thread), 1.01–1.06x for 100 KiB text, 1.25x for 1 MiB text,
   * parity below 1 KiB; below ~64 KiB the hop does not pay and work stays inline.
   * `true` = the measured defaults (threads: available cores - 1, at least 1;
   * compress from 64 KiB, inflate from 256 KiB; `threshold` sets both; `adaptive` off).
   * @default false
   */
  codecWorkers?: boolean | { threads?: number; threshold?: ByteSize; adaptive?: boolean }
  /**
   * Authenticated encryption of every entry (AES-256-GCM). `keys`: 1 to 16
   * `{ id, key }`, where `key` is 32 bytes (a Buffer/Uint8Array or base64 text) and
   * `id` an integer from 0 to 65535 (stored in 2 bytes of each entry). The first
   * key encrypts; any listed key decrypts. `acceptPlaintext` reads entries written
   * without encryption (for the migration window; they are still written encrypted).
   * @default false
   */
  encryption?: { keys: EncryptionKeyInput[]; acceptPlaintext?: boolean } | false
  /**
   * Principals for `cache.as(name)`: each names what it `can` do ('read': get,
   * has, getMany; 'write': set, setMany; 'delete': delete, deleteMany; 'admin':
   * invalidateTags, invalidatePrefix, clear; getOrSet, compareAndSet and
   * `nx`/`xx` sets need read and write) and which `keys` (globs with `*`,
   * relative to the view's namespace: 'user:*'). A call outside them rejects with
   * E_FORBIDDEN before anything is read or written. `rateLimit: { rate, burst }`:
   * a token bucket (`rate` tokens per second, `burst` at most), one token per key,
   * shared by every thread of the process; past it, E_RATE_LIMITED with
   * `retryAfterMs`. `distributed: true` keeps one budget for every process in
   * Redis (GCRA, key `__nc|rl|<namespace>|<name>`); when Redis cannot answer,
   * `onL2Error` decides: 'local' (default: this process's own bucket),
   * 'deny' (the call rejects with the Redis error) or 'allow'. Names: 1-128 of
   * `[A-Za-z0-9_.@:-]`. The cache itself stays unrestricted. @default false
   */
  access?: AccessInput | false
  /**
   * An audit log of cache calls. `sink`: a file path (JSON lines, created 0600 in
   * a 0700 directory; at `maxFileBytes` it rotates to `file.1` … `file.<maxFiles>`)
   * or a function called with batches of records. Each record: time, principal
   * (null for the cache itself), operation, namespace, key / keys (at most 16,
   * plus keyCount) / tags / prefix, outcome ('ok' or the error code), durationMs,
   * thread. `operations`: 'all' or a list; admin operations (invalidateTags,
   * invalidatePrefix, clear) and denials (E_FORBIDDEN, E_RATE_LIMITED) are always
   * recorded. `hashKeys`: key names become HMAC-SHA-256 hashes under `hashKey`
   * (32 bytes) or, without it, a key derived from the first encryption key.
   * Calls never wait for the sink: at most `maxQueue` records wait, the rest are
   * dropped, counted in stats().process.auditDropped and reported (E_AUDIT_DROPPED,
   * at most once a second). Threads attached with `cache.handle` send their
   * records to this thread's log. @default false (operations 'all', maxQueue 10000, maxFileBytes '64mb', maxFiles 5)
   */
  audit?: AuditInput | false
}

/** The options a cache runs with: every default applied, durations in ms, sizes in bytes. */
export interface ResolvedOptions {
  redis: RedisOption
  namespace: string
  /** Default TTL in ms; undefined = no expiry. */
  ttl: number | undefined
  ttlJitter: number
  /** `ttl` 0 = until the entry's own TTL; `negativeTtl` 0 = no negative caching. */
  l1: { maxBytes: number; maxEntryBytes: number; negativeTtl: number; ttl: number; ttlJitter: number; shareValues: boolean } | false
  maxKeyBytes: number
  maxValueBytes: number
  /** Infinity = never compress. */
  compressThreshold: number
  connectTimeout: number
  commandTimeout: number
  clock: Clock
  /** undefined = decided by the topology (true on a standalone server, false on a Cluster). */
  batchGets: boolean | undefined
  clusterReadScript: boolean
  workerConnections: 'own' | 'owner'
  maxInFlight: number
  invalidation: { legacyChannel: boolean } | false
  circuitBreaker: { threshold: number; resetTimeout: number } | false
  stampedeLock: { lease: number; waitTimeout: number } | false
  writeBehind: { dir: string; fsync: FsyncPolicy; batchSize: number; flushIntervalMs: number; maxQueue: number; maxAttempts: number; maxDeadLetterBytes: number } | false
  onError: ((err: CacheError) => void) | undefined
  writer: CacheOptions['writer']
  suppressL2Errors: boolean
  /** `threads` and `threshold` undefined = the pool's measured defaults. */
  codecWorkers: { threads?: number; threshold?: number; adaptive: boolean } | false
  encryption: { keyring: Keyring; acceptPlaintext: boolean } | false
  access: ResolvedAccess | false
  audit: ResolvedAudit | false
}
