import { CacheClosedError, InvalidOptionError } from '../errors.js'
import { dataKey, namespacePrefixes, pingKey, validateKey, validateKeys, validateTags } from '../keys.js'
import { validateNamespace } from '../options/options.js'
import { eventStream } from '../observability/event_stream.js'
import type { CacheEventType, EventStream, EventStreamOptions, EvictionDetail, InvalidationNotice } from '../observability/event_stream.js'
import type { HealthReport } from '../observability/health.js'
import { probeHealth } from '../observability/health_probe.js'
import { instrument } from '../observability/instrument.js'
import { renderPrometheus } from '../observability/prometheus.js'
import type { CacheStats, NamespaceMeter } from '../observability/stats.js'
import type { CacheHandle } from '../threads/handle.js'
import { describe } from '../util/units.js'
import { casOptions, getOrSetOptions, setOptions, writeOptions } from './call_options.js'
import type { GetOrSetOptions, SetManyEntry, SetOptions } from './call_options.js'
import type { Scope, SharedState } from './context.js'
import { GetOrSet } from './get_or_set.js'
import { Lookups } from './lookups.js'
import { ReadPath } from './read_path.js'
import { WritePath } from './write_path.js'
import { auditCalls } from '../access/audit_calls.js'
import { AccessView } from '../access/view.js'

export type { GetOrSetOptions, SetManyEntry, SetOptions, WriteChange } from './call_options.js'
export type { SharedState } from './context.js'

/**
 * The cache facade: it validates each call and delegates to the lookups (get,
 * has, getMany), the write path and getOrSet (src/cache/). They share one read
 * path and work over one composed tier of envelope bytes (src/tiers/). Create it
 * with `createCache()`; `namespace()` makes children that share the connections.
 */
export class NearCache {
  readonly #s: SharedState
  readonly #ns: string
  readonly #root: boolean
  /** This namespace's counters (shared by every cache object of the namespace in this thread). */
  readonly #m: NamespaceMeter
  readonly #sc: Scope
  readonly #read: ReadPath
  readonly #write: WritePath
  readonly #load: GetOrSet
  readonly #lookups: Lookups
  #closed = false

  /** @internal use createCache() */
  constructor(shared: SharedState, ns: string, root: boolean) {
    this.#s = shared
    this.#ns = ns
    this.#root = root
    this.#m = shared.meters.namespace(ns)
    this.#sc = { s: shared, ns, m: this.#m }
    this.#read = new ReadPath(this.#sc)
    this.#write = new WritePath(this.#sc, this.#read)
    this.#load = new GetOrSet(this.#sc, this.#read, this.#write)
    this.#lookups = new Lookups(this.#sc, this.#read)
    // The application's own calls are audited too (principal null); without `audit` nothing is wrapped.
    if (shared.audit) auditCalls(this, shared.audit, ns)
  }

  /**
   * A view of this cache that acts for principal `name` (declared in the
   * `access` option): the same data calls, each checked against the principal's
   * operations, key patterns and rate limit first (E_FORBIDDEN, E_RATE_LIMITED),
   * and audited with its name. An undeclared name is E_INVALID_OPTION.
   */
  as(name: string): AccessView {
    this.#open()
    const access = this.#s.access
    if (!access) throw new InvalidOptionError(`cache.as(${describe(name)}): no principals are declared; pass createCache({ access: { principals: { ... } } }).`)
    const p = typeof name === 'string' ? access.principals.get(name) : undefined
    if (!p) throw new InvalidOptionError(`cache.as(${describe(name)}): no such principal; declared: ${[...access.principals.keys()].slice(0, 20).join(', ')}.`)
    return new AccessView(this, p, access, this.#s.opts.maxKeyBytes)
  }

  /**
   * Pass this to `attachCache()` in a worker thread (through `workerData`,
   * `postMessage` or a piscina task): it is plain data and SharedArrayBuffers. The
   * attached cache shares this process's L1 and reaches L2 through this thread.
   */
  get handle(): CacheHandle {
    this.#open()
    return this.#s.handle(this.#ns)
  }

  /** The full namespace: Redis keys of this cache start with `<prefix>:`. */
  get prefix(): string {
    return this.#ns
  }

  /**
   * Subscribes to cache events:
   * - `'error'`: a corrupt entry, an L2 client error, a failed background refresh;
   * - `'circuit'`: the L2 circuit breaker changed state ('open', 'half-open', 'closed');
   * - `'eviction'`: this thread's write evicted an L1 entry (`{ key }`, the full key);
   * - `'invalidation'`: an invalidation announcement this process sent, one it
   *   received from another process, or a full L1 flush (owner thread only).
   */
  on(event: 'error', listener: (err: Error) => void): this
  on(event: 'circuit', listener: (state: 'closed' | 'open' | 'half-open') => void): this
  on(event: 'eviction', listener: (detail: EvictionDetail) => void): this
  on(event: 'invalidation', listener: (notice: InvalidationNotice) => void): this
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  on(event: CacheEventType, listener: (arg: any) => void): this {
    this.#s.emitter.on(event, listener)
    return this
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  off(event: CacheEventType, listener: (arg: any) => void): this {
    this.#s.emitter.off(event, listener)
    return this
  }

  get<V = unknown>(key: string): Promise<V | undefined> {
    try {
      this.#open()
    } catch (err) {
      return Promise.reject(err)
    }
    // Returned as is (no async frame of its own): get is the hot path. The key is
    // validated and the full key built there, once (see Lookups.get).
    return this.#lookups.get(key) as Promise<V | undefined>
  }

  /**
   * The value of `key` if this process's L1 holds it, else undefined: synchronous,
   * never asks Redis (an L1 miss is undefined even when Redis has the key; use
   * `get` for that). It reads the same entries, with the same expiry and tag
   * checks, and hands out the same copy (or, with `l1.shareValues`, the same
   * frozen value) as `get`. Undefined too when it cannot tell without waiting: a
   * tagged entry whose tag epochs L1 does not hold, and always without an L1.
   */
  getSync<V = unknown>(key: string): V | undefined {
    this.#open()
    return this.#lookups.getSync(key) as V | undefined
  }

  async has(key: string): Promise<boolean> {
    this.#open()
    return this.#lookups.has(dataKey(this.#ns, validateKey(key, this.#s.opts.maxKeyBytes)))
  }

  async getMany<V = unknown>(keys: string[]): Promise<(V | undefined)[]> {
    this.#open()
    const ks = validateKeys(keys, this.#s.opts.maxKeyBytes).map((key) => dataKey(this.#ns, key))
    if (ks.length === 0) return []
    return (await this.#lookups.getMany(ks)) as (V | undefined)[]
  }

  async set(key: string, value: unknown, options?: SetOptions): Promise<boolean> {
    this.#open()
    const k = dataKey(this.#ns, validateKey(key, this.#s.opts.maxKeyBytes))
    const { opts, condition } = setOptions(options, this.#s.opts)
    if (condition) return this.#write.setIf(condition, key, k, value, opts)
    await this.#write.setMany([{ key, k, value, opts }])
    return true
  }

  async setMany(entries: SetManyEntry[]): Promise<void> {
    this.#open()
    if (!Array.isArray(entries)) throw new InvalidOptionError(`setMany takes an array of { key, value, ttl?, tags? } (got ${describe(entries)}).`)
    const items = entries.map((e) => {
      if (typeof e !== 'object' || e === null) throw new InvalidOptionError(`Each setMany entry must be an object { key, value, ttl?, tags? } (got ${describe(e)}).`)
      const k = dataKey(this.#ns, validateKey(e.key, this.#s.opts.maxKeyBytes))
      return { key: e.key, k, value: e.value, opts: writeOptions(e, this.#s.opts) }
    })
    await this.#write.setMany(items)
  }

  async delete(key: string): Promise<boolean> {
    return (await this.deleteMany([key])) === 1
  }

  async deleteMany(keys: string[]): Promise<number> {
    this.#open()
    const unique = [...new Set(validateKeys(keys, this.#s.opts.maxKeyBytes))]
    if (unique.length === 0) return 0
    return this.#write.deleteMany(
      unique,
      unique.map((key) => dataKey(this.#ns, key)),
    )
  }

  /**
   * Read-through: answers the cached value, or calls `loader`, caches what it
   * returns (unless `undefined`) and answers it. Concurrent calls for one key in
   * this process share one lookup and one loader call (the first caller's loader
   * and options); each gets its own copy.
   */
  async getOrSet<V>(key: string, loader: () => V | Promise<V>, options?: GetOrSetOptions): Promise<V> {
    this.#open()
    const k = dataKey(this.#ns, validateKey(key, this.#s.opts.maxKeyBytes))
    if (typeof loader !== 'function') throw new InvalidOptionError(`getOrSet needs a loader function (got ${describe(loader)}).`)
    const { opts, fresh } = getOrSetOptions(options, this.#s.opts)
    return this.#load.run(k, loader, opts, fresh) as Promise<V>
  }

  /**
   * Atomically replaces the value of `key` with `next` if it currently equals
   * `expected` (structural equality; `undefined` = the key must be missing).
   */
  async compareAndSet(key: string, expected: unknown, next: unknown, options?: { ttl?: number | string }): Promise<boolean> {
    this.#open()
    const k = dataKey(this.#ns, validateKey(key, this.#s.opts.maxKeyBytes))
    return this.#write.compareAndSet(key, k, expected, next, casOptions(options, this.#s.opts))
  }

  /** Every entry carrying any of these tags reads as missing afterwards. */
  async invalidateTags(tags: string[]): Promise<void> {
    this.#open()
    const ts = validateTags(tags, this.#s.opts.maxKeyBytes)
    if (ts.length > 0) await this.#write.invalidateTags(ts)
  }

  /** Removes every key starting with `prefix` (on every Cluster master); answers how many were stored. */
  async invalidatePrefix(prefix: string): Promise<number> {
    this.#open()
    if (typeof prefix !== 'string' || Buffer.byteLength(prefix) > this.#s.opts.maxKeyBytes) {
      throw new InvalidOptionError(`invalidatePrefix takes a string of at most maxKeyBytes bytes (got ${describe(prefix)}).`)
    }
    // A lone surrogate would become U+FFFD and match other keys: the key rule applies to prefixes too.
    if (prefix.length > 0) validateKey(prefix, this.#s.opts.maxKeyBytes)
    return this.#write.deletePrefixes([dataKey(this.#ns, prefix)])
  }

  /** Removes every entry and tag of this namespace and its child namespaces; other namespaces are untouched. */
  async clear(): Promise<void> {
    this.#open()
    await this.#write.deletePrefixes(namespacePrefixes(this.#ns))
  }

  /** A cache over the same connections whose keys live under `<prefix>:<name>:`. */
  namespace(name: string): NearCache {
    this.#open()
    return new NearCache(this.#s, `${this.#ns}:${validateNamespace(name, 'namespace name')}`, false)
  }

  stats(): CacheStats {
    return this.#s.stats()
  }

  /**
   * How the cache is doing: L2 reachability and round trip, the circuit, L1 fill,
   * and plain-language recommendations when figures look wrong.
   */
  health(): Promise<HealthReport> {
    return probeHealth(this.#s, pingKey(this.#ns))
  }

  /** An async iterator of this cache's events (error, circuit, eviction, invalidation; bounded, oldest dropped first). */
  events(options?: EventStreamOptions): EventStream {
    return eventStream(this, options)
  }

  /** The figures of stats() in the Prometheus text format (labels: tier, namespace). */
  metrics(): string {
    return renderPrometheus(this.#s.stats())
  }

  /**
   * Closes this cache. The cache made by createCache also waits for in-flight
   * loads and closes the connections it opened (never a client it was handed);
   * its namespaces stop working with it. Closing a namespace closes only that view.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (!this.#root || this.#s.closed) return
    await Promise.allSettled([...this.#s.inflight.values()])
    this.#s.closed = true
    await this.#s.shutdown()
  }

  #open(): void {
    if (this.#closed || this.#s.closed) throw new CacheClosedError()
  }
}

instrument(NearCache.prototype)
