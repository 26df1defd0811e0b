import { randomUUID } from 'node:crypto'
import type { EventEmitter } from 'node:events'
import type { CodecPool } from '../codec/codec_pool.js'
import { clonePlain } from '../codec/decode_memo.js'
import type { DecodeMemo, Memo } from '../codec/decode_memo.js'
import { deepEqual } from '../codec/deep_equal.js'
import type { TagStamp } from '../codec/envelope.js'
import { deserialize } from '../codec/value_codec.js'
import { buildEnvelope, decodeValue, effectiveTtl, parseEntry, payloadBytes, prepareValue } from '../codec/entry.js'
import type { Envelope, PreparedValue } from '../codec/entry.js'
import { CacheClosedError, ConflictError, CorruptEntryError, InvalidOptionError } from '../errors.js'
import type { CacheError } from '../errors.js'
import type { CacheHandle } from '../threads/handle.js'
import { dataKey, namespacePrefixes, tagKey, validateKey, validateKeys, validateTags } from '../keys.js'
import { sha1 } from '../util/sha1.js'
import { validateNamespace } from '../options/options.js'
import type { ResolvedOptions } from '../options/options.js'
import { eventStream } from '../observability/event_stream.js'
import type { CacheEventType, EventStream, EventStreamOptions, EvictionDetail, InvalidationNotice } from '../observability/event_stream.js'
import { healthReport } from '../observability/health.js'
import type { HealthReport } from '../observability/health.js'
import { renderPrometheus } from '../observability/prometheus.js'
import { channels, OPERATIONS, traced } from '../observability/tracing.js'
import { Field, NsField, ProcField } from '../observability/stats.js'
import type { CacheStats, Meter, NamespaceMeter, StatsBlock } from '../observability/stats.js'
import type { Tier, TierWrite } from '../tiers/tier.js'
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

interface StateRead {
  loaded: Loaded
  env: Envelope
  /** Expired, but within its grace. */
  stale: boolean
}

interface Freshness {
  softTtl?: number
  grace?: number
  earlyRefresh?: number
}

/** State shared by a cache and every namespace made from it. */
export interface SharedState {
  readonly opts: ResolvedOptions
  readonly tier: Tier
  /** The meter corrupt entries count against: L2 when there is one, else L1. */
  readonly primary: Meter
  readonly stats: () => CacheStats
  /** The shared counters; each cache (namespace) takes its own meter from it. */
  readonly meters: StatsBlock
  /** Whether the tier has an L1: then answers from `peek` (and `mget`'s fromL1) came from L1. */
  readonly hasL1: boolean
  /** Redis Cluster only, in the thread that owns the connections: CLUSTER INFO's state. */
  readonly clusterState: (() => Promise<string | undefined>) | undefined
  readonly emitter: EventEmitter
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
}

interface Loaded {
  value: unknown
  /** msgpack bytes for the other callers to decode their own copy from; undefined = missing. */
  raw: Uint8Array | undefined
}

const MAX_CAS_ATTEMPTS = 32
const SET_KEYS = new Set(['ttl', 'tags', 'nx', 'xx'])

/**
 * The cache facade: validation, encoding, TTL and tags over one tier of envelope
 * bytes. Create it with `createCache()`; `namespace()` makes children that share
 * the connections.
 */
export class NearCache {
  readonly #s: SharedState
  readonly #ns: string
  readonly #root: boolean
  /** This namespace's counters (shared by every cache object of the namespace in this thread). */
  readonly #m: NamespaceMeter
  #closed = false

  /** @internal use createCache() */
  constructor(shared: SharedState, ns: string, root: boolean) {
    this.#s = shared
    this.#ns = ns
    this.#root = root
    this.#m = shared.meters.namespace(ns)
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

  async get<V = unknown>(key: string): Promise<V | undefined> {
    this.#open()
    const k = dataKey(this.#ns, validateKey(key, this.#s.opts.maxKeyBytes))
    const tier = this.#s.tier
    const m = this.#m
    let start = m.sampleStart()
    const peeked = tier.peek(k)
    let raw: Buffer | null
    if (peeked !== undefined) raw = peeked
    else {
      start = performance.now()
      raw = await this.#absorb(this.#l2(tier.get(k)), null)
    }
    let value = this.#valueOf(k, raw)
    if (value instanceof Promise) value = await value
    m.lookup(peeked !== undefined && this.#s.hasL1, value !== undefined, start)
    return value as V | undefined
  }

  /** The value of a get's raw bytes (undefined = miss); synchronous on the hot path. */
  #valueOf(k: string, raw: Buffer | null): unknown {
    if (raw === null) return undefined
    // The hot path: bytes already decoded in this thread skip parsing and decoding.
    const memo = this.#s.memo.find(k, raw)
    const env = memo ? memo.env : this.#parseRaw(k, raw)
    if (env === undefined) return undefined
    if (env.expiresAt !== 0 && env.expiresAt <= this.#s.opts.clock.now()) {
      this.#m.add(NsField.Expirations)
      return undefined
    }
    if (env.tags !== undefined) return this.#liveness([env]).then(([live]) => (live ? this.#decodeLive(k, raw, env, memo) : undefined))
    return this.#decodeLive(k, raw, env, memo)
  }

  /** A live entry's value for a get: a copy of the memo's (when `memo` is the key's), else decoded. */
  #decodeLive(k: string, raw: Buffer, env: Envelope, memo: Memo | undefined): unknown {
    if (memo) return clonePlain(memo.value)
    // Large compressed values inflate in the codec worker pool when there is one.
    if (this.#s.pool && env.compressed) {
      return this.#s.pool.decode(env.payload, true, this.#s.opts.maxValueBytes).catch((err: unknown) => {
        this.#corrupt(k, err)
        return undefined
      })
    }
    return this.#decodeFresh(k, raw, env)
  }

  async has(key: string): Promise<boolean> {
    this.#open()
    const k = dataKey(this.#ns, validateKey(key, this.#s.opts.maxKeyBytes))
    const tier = this.#s.tier
    const peeked = tier.peek(k)
    const raw = peeked !== undefined ? peeked : await this.#absorb(this.#l2(tier.get(k)), null)
    const env = this.#parse(k, raw)
    this.#countExpired([env])
    const [live] = await this.#liveness([env])
    this.#m.lookup(peeked !== undefined && this.#s.hasL1, live === true, 0)
    return live === true
  }

  async getMany<V = unknown>(keys: string[]): Promise<(V | undefined)[]> {
    this.#open()
    const ks = validateKeys(keys, this.#s.opts.maxKeyBytes).map((key) => dataKey(this.#ns, key))
    if (ks.length === 0) return []
    const fromL1: boolean[] = []
    const raws = await this.#absorb(this.#l2(this.#s.tier.mget(ks, fromL1)), () => ks.map(() => null))
    const envs = raws.map((raw, i) => this.#parse(ks[i] as string, raw))
    this.#countExpired(envs)
    const live = await this.#liveness(envs)
    const values = envs.map((env, i) => (live[i] && env ? this.#decodeHit(ks[i] as string, raws[i] as Buffer, env) : undefined) as V | undefined)
    const l1 = this.#s.hasL1
    values.forEach((v, i) => this.#m.lookup(l1 && fromL1[i] === true, v !== undefined, 0))
    return values
  }

  async set(key: string, value: unknown, options?: SetOptions): Promise<boolean> {
    this.#open()
    const k = dataKey(this.#ns, validateKey(key, this.#s.opts.maxKeyBytes))
    const o = this.#checkOptions(options, SET_KEYS, 'set')
    if (o.nx !== undefined && typeof o.nx !== 'boolean') throw new InvalidOptionError(`nx must be true or false (got ${describe(o.nx)}).`)
    if (o.xx !== undefined && typeof o.xx !== 'boolean') throw new InvalidOptionError(`xx must be true or false (got ${describe(o.xx)}).`)
    if (o.nx && o.xx) throw new InvalidOptionError('nx and xx cannot both be true: nx writes only missing keys, xx only existing ones.')
    const ttl = this.#ttl(o.ttl)
    const tags = o.tags === undefined ? undefined : validateTags(o.tags, this.#s.opts.maxKeyBytes)
    const prepared = await this.#prepare(value)
    const [write] = await this.#writes([{ k, prepared, ttl, tags }])
    if (o.nx) return this.#conditional(write as TierWrite, (live) => !live)
    if (o.xx) return this.#conditional(write as TierWrite, (live) => live)
    await this.#writeThrough([{ key, value }])
    await this.#l2(this.#s.tier.set([write as TierWrite]))
    this.#m.add(NsField.Sets)
    return true
  }

  /** Encodes a value: inline, or with large values compressed in the codec worker pool (codecWorkers). */
  #prepare(value: unknown): Promise<PreparedValue> | PreparedValue {
    const pool = this.#s.pool
    const o = this.#s.opts
    return pool ? pool.encode(value, o.maxValueBytes, o.compressThreshold) : prepareValue(value, o)
  }

  /** With `suppressL2Errors`, a read that Redis cannot answer is a miss (and an 'error' event) instead of a rejection. */
  async #absorb<T>(p: Promise<T>, miss: T | (() => T)): Promise<T> {
    if (!this.#s.opts.suppressL2Errors) return p
    try {
      return await p
    } catch (err) {
      if ((err as CacheError).code !== 'E_L2_UNAVAILABLE') throw err
      if (this.#s.emitter.listenerCount('error') > 0) this.#s.emitter.emit('error', err)
      return typeof miss === 'function' ? (miss as () => T)() : miss
    }
  }

  /**
   * An L2 operation whose failure counts once against this namespace's errors (and
   * still rejects). Every tier call that can reach Redis goes through it exactly once.
   */
  #l2<T>(p: Promise<T>): Promise<T> {
    return p.catch((err: unknown) => {
      const code = (err as CacheError | undefined)?.code
      if (code === 'E_L2_UNAVAILABLE' || code === 'E_L2_ERROR') this.#m.add(NsField.Errors)
      throw err
    })
  }

  /** Write-through: the data source (the `writer` option) takes the change before the cache does. */
  async #writeThrough(changes: WriteChange[]): Promise<void> {
    const writer = this.#s.opts.writer
    if (writer && changes.length > 0) await writer(changes.map((c) => ({ namespace: this.#ns, ...c })))
  }

  async setMany(entries: SetManyEntry[]): Promise<void> {
    this.#open()
    if (!Array.isArray(entries)) throw new InvalidOptionError(`setMany takes an array of { key, value, ttl?, tags? } (got ${describe(entries)}).`)
    const items = entries.map((e) => {
      if (typeof e !== 'object' || e === null) throw new InvalidOptionError(`Each setMany entry must be an object { key, value, ttl?, tags? } (got ${describe(e)}).`)
      const k = dataKey(this.#ns, validateKey(e.key, this.#s.opts.maxKeyBytes))
      const tags = e.tags === undefined ? undefined : validateTags(e.tags, this.#s.opts.maxKeyBytes)
      return { k, value: e.value, ttl: this.#ttl(e.ttl), tags }
    })
    const prepared = await Promise.all(items.map((i) => this.#prepare(i.value)))
    if (items.length === 0) return
    const writes = await this.#writes(items.map((i, n) => ({ ...i, prepared: prepared[n] as PreparedValue })))
    await this.#writeThrough(entries.map((e) => ({ key: e.key, value: e.value })))
    await this.#l2(this.#s.tier.set(writes))
    this.#m.add(NsField.Sets, writes.length)
  }

  async delete(key: string): Promise<boolean> {
    return (await this.deleteMany([key])) === 1
  }

  async deleteMany(keys: string[]): Promise<number> {
    this.#open()
    const unique = [...new Set(validateKeys(keys, this.#s.opts.maxKeyBytes))]
    const ks = unique.map((key) => dataKey(this.#ns, key))
    if (ks.length === 0) return 0
    await this.#writeThrough(unique.map((key) => ({ key, deleted: true })))
    const raws = await this.#l2(this.#s.tier.take(ks))
    const live = await this.#liveness(raws.map((raw, i) => this.#parse(ks[i] as string, raw)))
    const n = live.filter(Boolean).length
    this.#m.add(NsField.Deletes, n)
    return n
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
    const o = this.#checkOptions(options, new Set(['ttl', 'tags', 'softTtl', 'grace', 'earlyRefresh']), 'getOrSet')
    const ttl = this.#ttl(o.ttl)
    const tags = o.tags === undefined ? undefined : validateTags(o.tags, this.#s.opts.maxKeyBytes)
    const fresh: Freshness = {
      softTtl: parseDuration(o.softTtl, 'softTtl'),
      grace: parseDuration(o.grace, 'grace'),
      earlyRefresh: o.earlyRefresh as number | undefined,
    }
    if (fresh.earlyRefresh !== undefined && !(typeof fresh.earlyRefresh === 'number' && fresh.earlyRefresh > 0 && fresh.earlyRefresh <= 10)) {
      throw new InvalidOptionError(`earlyRefresh is a strength above 0 and at most 10, usually 1 (got ${describe(fresh.earlyRefresh)}).`)
    }
    const pending = this.#s.inflight.get(k)
    if (pending) {
      this.#m.add(NsField.Coalesced)
      const r = await pending
      return (r.raw === undefined ? undefined : deserialize(r.raw)) as V
    }
    const p = this.#load(k, loader, ttl, tags, fresh).finally(() => this.#s.inflight.delete(k))
    this.#s.inflight.set(k, p)
    return (await p).value as V
  }

  /**
   * Atomically replaces the value of `key` with `next` if it currently equals
   * `expected` (structural equality; `undefined` = the key must be missing).
   */
  async compareAndSet(key: string, expected: unknown, next: unknown, options?: { ttl?: number | string }): Promise<boolean> {
    this.#open()
    const k = dataKey(this.#ns, validateKey(key, this.#s.opts.maxKeyBytes))
    const o = this.#checkOptions(options, new Set(['ttl']), 'compareAndSet')
    const prepared = await this.#prepare(next)
    const [write] = await this.#writes([{ k, prepared, ttl: this.#ttl(o.ttl), tags: undefined }])
    return this.#conditional(write as TierWrite, (live, env) => {
      if (expected === undefined) return !live
      if (!live || !env) return false
      let current: unknown
      try {
        current = decodeValue(env, this.#s.opts.maxValueBytes)
      } catch (err) {
        this.#corrupt(k, err) // a bad payload reads as missing, so it equals no expected value
        return false
      }
      return deepEqual(current, expected)
    })
  }

  /** Every entry carrying any of these tags reads as missing afterwards. */
  async invalidateTags(tags: string[]): Promise<void> {
    this.#open()
    const ts = validateTags(tags, this.#s.opts.maxKeyBytes)
    if (ts.length === 0) return
    await this.#l2(this.#s.tier.counters(ts.map((t) => tagKey(this.#ns, t)), 'bump'))
    this.#m.add(NsField.TagInvalidations, ts.length)
  }

  /** Removes every key starting with `prefix` (on every Cluster master); answers how many were stored. */
  async invalidatePrefix(prefix: string): Promise<number> {
    this.#open()
    if (typeof prefix !== 'string' || Buffer.byteLength(prefix) > this.#s.opts.maxKeyBytes) {
      throw new InvalidOptionError(`invalidatePrefix takes a string of at most maxKeyBytes bytes (got ${describe(prefix)}).`)
    }
    // A lone surrogate would become U+FFFD and match other keys: the key rule applies to prefixes too.
    if (prefix.length > 0) validateKey(prefix, this.#s.opts.maxKeyBytes)
    const n = await this.#l2(this.#s.tier.deletePrefixes([dataKey(this.#ns, prefix)]))
    this.#m.add(NsField.PrefixInvalidations)
    return n
  }

  /** Removes every entry and tag of this namespace and its child namespaces; other namespaces are untouched. */
  async clear(): Promise<void> {
    this.#open()
    await this.#l2(this.#s.tier.deletePrefixes(namespacePrefixes(this.#ns)))
    this.#m.add(NsField.PrefixInvalidations)
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
  async health(): Promise<HealthReport> {
    let l2Ping: number | undefined
    let clusterState: string | undefined
    const stats = this.#s.stats()
    if (stats.l2.enabled && stats.circuit !== 'open') {
      const t = performance.now()
      const ok = await this.#s.tier.get(`__nc|ping|${this.#ns}`, true).then(() => true, () => false)
      if (ok) l2Ping = Math.round((performance.now() - t) * 1000) / 1000
      clusterState = await this.#s.clusterState?.().catch(() => 'unreachable')
    }
    const after = this.#s.stats()
    return healthReport({
      stats: after,
      l2Ping,
      ...(clusterState !== undefined ? { clusterState } : {}),
      ...(after.l1.capacity > 0 ? { l1MaxBytes: after.l1.capacity } : {}),
    })
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

  // ── internals ────────────────────────────────────────────────────────────

  #open(): void {
    if (this.#closed || this.#s.closed) throw new CacheClosedError()
  }

  #checkOptions(options: unknown, known: Set<string>, op: string): Record<string, unknown> {
    if (options === undefined) return {}
    if (typeof options !== 'object' || options === null || Array.isArray(options)) {
      throw new InvalidOptionError(`${op} options must be an object (got ${describe(options)}).`)
    }
    for (const k of Object.keys(options)) {
      if (!known.has(k)) throw new InvalidOptionError(`Unknown ${op} option '${k}'. Known: ${[...known].join(', ')}.`)
    }
    return options as Record<string, unknown>
  }

  #ttl(ttl: unknown): number | undefined {
    if (ttl === Infinity) return undefined
    return effectiveTtl(ttl === undefined ? this.#s.opts.ttl : parseDuration(ttl, 'ttl'), this.#s.opts.ttlJitter)
  }

  /** Envelopes for a batch of writes, reading (creating) the epochs of their tags once. */
  async #writes(items: { k: string; prepared: PreparedValue; ttl: number | undefined; tags: string[] | undefined; fresh?: Freshness }[]): Promise<TierWrite[]> {
    const tagNames = [...new Set(items.flatMap((i) => i.tags ?? []))]
    const epochs = new Map<string, number>()
    if (tagNames.length > 0) {
      const values = await this.#l2(this.#s.tier.counters(tagNames.map((t) => tagKey(this.#ns, t)), 'init'))
      tagNames.forEach((t, i) => epochs.set(t, values[i] as number))
    }
    const now = this.#s.opts.clock.now()
    const proc = this.#s.meters.process
    proc.add(ProcField.ValuesWritten, items.length)
    for (const i of items) {
      proc.add(ProcField.ValueBytes, i.prepared.raw.length)
      proc.add(ProcField.StoredBytes, i.prepared.stored.length)
    }
    return items.map(({ k, prepared, ttl, tags, fresh }) => {
      const stamps: TagStamp[] | undefined = tags?.length ? tags.map((name) => ({ name, epoch: epochs.get(name) as number })) : undefined
      // Redis keeps an entry through its grace period, so that it can stand in on failures.
      const px = ttl === undefined ? undefined : ttl + (fresh?.grace ?? 0)
      return { key: k, bytes: buildEnvelope(prepared, now, ttl, stamps, fresh), px }
    })
  }

  /** An envelope, or undefined for a miss; a foreign or corrupt value is a miss plus an error event. */
  #parse(k: string, raw: Buffer | null): Envelope | undefined {
    if (raw === null) return undefined
    const memo = this.#s.memo.find(k, raw)
    return memo ? memo.env : this.#parseRaw(k, raw)
  }

  /** Parses and verifies envelope bytes, and that their declared size is within maxValueBytes (the memo was already asked). */
  #parseRaw(k: string, raw: Buffer): Envelope | undefined {
    try {
      return parseEntry(raw, this.#s.opts.maxValueBytes)
    } catch (err) {
      this.#corrupt(k, err)
      return undefined
    }
  }

  #corrupt(k: string, err: unknown): void {
    this.#s.primary.add(Field.Errors)
    this.#m.add(NsField.Errors)
    const why = err instanceof Error ? err.message : String(err)
    const e = new CorruptEntryError(k, `The entry at '${k}' is not a valid nearcache entry (${why}); it reads as missing. Another program may be writing under this namespace.`, err)
    if (this.#s.emitter.listenerCount('error') > 0) this.#s.emitter.emit('error', e)
  }

  /** Counts the entries a read found past their expiry. */
  #countExpired(envs: (Envelope | undefined)[]): void {
    const now = this.#s.opts.clock.now()
    let n = 0
    for (const e of envs) if (e !== undefined && e.expiresAt !== 0 && e.expiresAt <= now) n++
    if (n > 0) this.#m.add(NsField.Expirations, n)
  }

  /** Whether each envelope is live: present, not expired by the clock, and all its tags at the epoch it was written with. */
  async #liveness(envs: (Envelope | undefined)[]): Promise<boolean[]> {
    const now = this.#s.opts.clock.now()
    const live = envs.map((e) => e !== undefined && (e.expiresAt === 0 || e.expiresAt > now))
    const names = new Set<string>()
    envs.forEach((e, i) => live[i] && e?.tags?.forEach((t) => names.add(t.name)))
    if (names.size === 0) return live
    const list = [...names]
    const values = await this.#l2(this.#s.tier.counters(list.map((t) => tagKey(this.#ns, t)), 'read'))
    const current = new Map(list.map((t, i) => [t, values[i]]))
    envs.forEach((e, i) => {
      if (live[i] && e?.tags?.some((t) => current.get(t.name) !== t.epoch)) live[i] = false
    })
    return live
  }

  /** The value of a live entry, a private copy for the caller; a bad payload is a miss plus an error event. */
  #decodeHit(k: string, raw: Buffer, env: Envelope): unknown {
    const memo = this.#s.memo.find(k, raw)
    return memo ? clonePlain(memo.value) : this.#decodeFresh(k, raw, env)
  }

  /** Decodes (the memo was already asked); the value may become the key's memo. */
  #decodeFresh(k: string, raw: Buffer, env: Envelope): unknown {
    try {
      const value = decodeValue(env, this.#s.opts.maxValueBytes)
      return this.#s.memo.remember(k, raw, env, value) ? clonePlain(value) : value
    } catch (err) {
      this.#corrupt(k, err)
      return undefined
    }
  }

  /** Repeats read → decide → compare-and-swap until the swap lands or `decide` says no. */
  async #conditional(write: TierWrite, decide: (live: boolean, env: Envelope | undefined) => boolean): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const raw = await this.#l2(this.#s.tier.get(write.key, true))
      const env = this.#parse(write.key, raw)
      const [live] = await this.#liveness([env])
      if (!decide(live === true, env)) return false
      if (await this.#l2(this.#s.tier.casSet(write, raw === null ? null : sha1(raw)))) return true
    }
    throw new ConflictError(`The key '${write.key}' changed ${MAX_CAS_ATTEMPTS} times while a conditional write was trying to land; retry later.`)
  }

  /** A stored entry's state: fresh, stale (expired but within its grace), or gone. */
  async #readState(k: string, raw: Buffer | null): Promise<StateRead | undefined> {
    const env = this.#parse(k, raw)
    if (!env) return undefined
    const now = this.#s.opts.clock.now()
    const expired = env.expiresAt !== 0 && env.expiresAt <= now
    if (expired) this.#m.add(NsField.Expirations)
    if (expired && !(env.staleUntil > now)) return undefined
    if (env.tags && !(await this.#liveness([{ ...env, expiresAt: 0 }]))[0]) return undefined
    try {
      const bytes = payloadBytes(env, this.#s.opts.maxValueBytes)
      return { loaded: { value: deserialize(bytes), raw: bytes }, env, stale: expired }
    } catch (err) {
      this.#corrupt(k, err)
      return undefined
    }
  }

  /** A live (fresh) entry's value and msgpack bytes, or undefined. */
  async #readLive(k: string, raw: Buffer | null): Promise<Loaded | undefined> {
    const r = await this.#readState(k, raw)
    return r && !r.stale ? r.loaded : undefined
  }

  #refreshDue(env: Envelope, f: Freshness, now: number): boolean {
    if (env.softExpiresAt !== 0 && now >= env.softExpiresAt) return true
    if (!f.earlyRefresh || env.expiresAt === 0) return false
    // XFetch: refresh early with a probability that grows as expiry nears (delta = 1% of the TTL).
    const delta = (env.expiresAt - env.createdAt) * 0.01
    return now - delta * f.earlyRefresh * Math.log(Math.random()) >= env.expiresAt
  }

  /** At most one background refresh per key at a time; its failures go to the 'error' event. */
  #refresh(k: string, loader: () => unknown, ttl: number | undefined, tags: string[] | undefined, f: Freshness): void {
    const key = `${k}`
    if (this.#s.refreshing.has(key)) return
    this.#s.refreshing.add(key)
    this.#runLoader(k, loader, ttl, tags, f)
      .catch((err: unknown) => {
        if (this.#s.emitter.listenerCount('error') > 0) this.#s.emitter.emit('error', err)
      })
      .finally(() => this.#s.refreshing.delete(key))
  }

  async #load(k: string, loader: () => unknown, ttl: number | undefined, tags: string[] | undefined, f: Freshness = {}): Promise<Loaded> {
    let found: StateRead | undefined
    let l2Failure: unknown
    const tier = this.#s.tier
    let start = this.#m.sampleStart()
    const peeked = tier.peek(k)
    try {
      let raw = peeked
      if (raw === undefined) {
        start = performance.now()
        raw = await this.#l2(tier.get(k))
      }
      found = await this.#readState(k, raw)
    } catch (err) {
      l2Failure = err
    }
    if (l2Failure === undefined) this.#m.lookup(peeked !== undefined && this.#s.hasL1, found !== undefined && !found.stale, start)
    if (found && !found.stale) {
      if (this.#refreshDue(found.env, f, this.#s.opts.clock.now())) this.#refresh(k, loader, ttl, tags, f)
      return found.loaded
    }
    const stale = found?.loaded
    try {
      if (l2Failure !== undefined && !this.#s.opts.suppressL2Errors) throw l2Failure
      if (l2Failure !== undefined) return await this.#runLoader(k, loader, ttl, tags, f)
      return await this.#loadLocked(k, loader, ttl, tags, f)
    } catch (err) {
      // Stale-if-error: an expired value within its grace stands in for a failed load.
      if (stale) return stale
      throw err
    }
  }

  async #loadLocked(k: string, loader: () => unknown, ttl: number | undefined, tags: string[] | undefined, f: Freshness): Promise<Loaded> {
    const lock = this.#s.opts.stampedeLock
    if (!lock) return this.#runLoader(k, loader, ttl, tags, f)
    // Across threads and processes: one caller holds a short Redis lock and loads;
    // the others poll L2 for its result, and load themselves if it takes too long.
    const lockKey = `__nc|l|${k}`
    const token = randomUUID()
    const giveUpAt = Date.now() + lock.waitTimeout
    for (let pause = 10; ; pause = Math.min(pause * 2, 100)) {
      if (await this.#s.tier.lock(lockKey, token, lock.lease)) {
        try {
          // Someone may have finished loading between our read and our lock.
          return (await this.#readLive(k, await this.#l2(this.#s.tier.get(k, true)))) ?? (await this.#runLoader(k, loader, ttl, tags, f))
        } finally {
          await this.#s.tier.unlock(lockKey, token).catch(() => {})
        }
      }
      await new Promise((r) => setTimeout(r, pause))
      const loaded = await this.#readLive(k, await this.#l2(this.#s.tier.get(k, true)))
      if (loaded) return loaded
      if (Date.now() > giveUpAt) return this.#runLoader(k, loader, ttl, tags, f)
    }
  }

  async #runLoader(k: string, loader: () => unknown, ttl: number | undefined, tags: string[] | undefined, f: Freshness = {}): Promise<Loaded> {
    this.#m.add(NsField.Loads)
    const value = await loader()
    if (value === undefined) return { value, raw: undefined }
    const prepared = await this.#prepare(value)
    // With suppressL2Errors the loaded value is returned even when it cannot be cached.
    await this.#absorb(
      this.#writes([{ k, prepared, ttl, tags, fresh: f }])
        .then((writes) => this.#l2(this.#s.tier.set(writes)))
        .then(() => this.#m.add(NsField.Sets)),
      undefined,
    )
    // The caller gets a copy too: the loader may hand the same object to others.
    return { value: deserialize(prepared.raw), raw: prepared.raw }
  }
}

/**
 * Tracing through node:diagnostics_channel ('nearcache:get', 'nearcache:set', …):
 * each public operation publishes start/end/error, but only while someone
 * subscribes to its channel; otherwise the wrapper is one property check.
 */
for (const op of OPERATIONS) {
  const proto = NearCache.prototype as unknown as Record<string, (...args: unknown[]) => unknown>
  const original = proto[op] as (...args: unknown[]) => unknown
  proto[op] = function (this: NearCache, ...args: unknown[]) {
    if (!channels[op].hasSubscribers) return original.apply(this, args)
    return traced(op, { namespace: this.prefix, key: typeof args[0] === 'string' ? args[0] : undefined }, () => original.apply(this, args))
  }
}
