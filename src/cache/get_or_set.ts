import { randomUUID } from 'node:crypto'
import type { Envelope, Freshness } from '../codec/entry.js'
import { deserialize } from '../codec/value_codec.js'
import { lockKey } from '../keys.js'
import { NsField } from '../observability/stats.js'
import type { WriteOptions } from './call_options.js'
import { emitError } from './context.js'
import type { Loaded, Scope } from './context.js'
import { absorbed, l2 } from './l2_outcome.js'
import type { ReadPath } from './read_path.js'
import type { WritePath } from './write_path.js'

/** What getOrSet found in the cache. */
interface Found {
  loaded: Loaded
  env: Envelope
  /** Expired, but within its grace. */
  stale: boolean
}

/** A load's parameters: the full key, the loader, and the write's options. */
interface Job {
  k: string
  loader: () => unknown
  opts: WriteOptions
  fresh: Freshness
}

/**
 * Read-through (`getOrSet`): coalescing of concurrent calls in this thread, the
 * stampede lock across threads and processes, stale-while-revalidate (`softTtl`),
 * probabilistic early refresh (`earlyRefresh`) and stale-if-error (`grace`).
 * Reads go through the read path, writes through the write path.
 */
export class GetOrSet {
  constructor(
    private readonly sc: Scope,
    private readonly read: ReadPath,
    private readonly write: WritePath,
  ) {}

  /** The cached value or the loader's; concurrent calls for one key share one load and get their own copies. */
  run(k: string, loader: () => unknown, opts: WriteOptions, fresh: Freshness): Promise<unknown> {
    const { s, m } = this.sc
    const pending = s.inflight.get(k)
    if (pending) {
      m.add(NsField.Coalesced)
      return pending.then((r) => r.copy())
    }
    const p = this.load({ k, loader, opts, fresh }).finally(() => s.inflight.delete(k))
    s.inflight.set(k, p)
    return p.then((r) => r.value)
  }

  /**
   * An entry's state for getOrSet: fresh or stale (within its grace), with the
   * caller's value; undefined when gone. Synchronous unless tags or the codec pool
   * must be awaited.
   */
  private found(k: string, raw: Buffer | null): Found | undefined | Promise<Found | undefined> {
    const e = this.read.entry(k, raw)
    if (e === undefined || raw === null) return undefined
    const { env } = e
    const state = this.read.state(env, true)
    if (state === 'gone') return undefined
    const finish = (value: unknown): Found | undefined => {
      if (value === undefined) return undefined
      // Other callers of a coalesced load decode their own copy (a memo clone when this thread has one).
      const copy = () => this.read.decode(k, raw, env, this.sc.s.memo.find(k, raw))
      return { loaded: { value, copy }, env, stale: state === 'stale' }
    }
    const decode = () => {
      const value = this.read.decode(k, raw, env, e.memo)
      return value instanceof Promise ? value.then(finish) : finish(value)
    }
    if (env.tags === undefined) return decode()
    return this.read.tagsLive([env]).then(([live]) => (live ? decode() : undefined))
  }

  /** A live (fresh) entry, or undefined. */
  private async freshLoaded(k: string, raw: Buffer | null): Promise<Loaded | undefined> {
    const f = await this.found(k, raw)
    return f && !f.stale ? f.loaded : undefined
  }

  private refreshDue(env: Envelope, f: Freshness, now: number): boolean {
    if (env.softExpiresAt !== 0 && now >= env.softExpiresAt) return true
    if (!f.earlyRefresh || env.expiresAt === 0) return false
    // XFetch: refresh early with a probability that grows as expiry nears (delta = 1% of the TTL).
    const delta = (env.expiresAt - env.createdAt) * 0.01
    return now - delta * f.earlyRefresh * Math.log(Math.random()) >= env.expiresAt
  }

  /** At most one background refresh per key at a time; its failures go to the 'error' event. */
  private refresh(job: Job): void {
    const { s } = this.sc
    if (s.refreshing.has(job.k)) return
    s.refreshing.add(job.k)
    this.runLoader(job)
      .catch((err: unknown) => emitError(s, err))
      .finally(() => s.refreshing.delete(job.k))
  }

  private async load(job: Job): Promise<Loaded> {
    const { s, m } = this.sc
    const { k } = job
    let found: Found | undefined
    let l2Failure: unknown
    let start = m.sampleStart()
    const peeked = s.tier.peek(k)
    try {
      let raw = peeked
      if (raw === undefined) {
        start = performance.now()
        raw = await l2(this.sc, s.tier.get(k))
      }
      const f = this.found(k, raw)
      found = f instanceof Promise ? await f : f
    } catch (err) {
      l2Failure = err
    }
    if (l2Failure === undefined) m.lookup(peeked !== undefined && s.hasL1, found !== undefined && !found.stale, start)
    if (found && !found.stale) {
      if (this.refreshDue(found.env, job.fresh, s.opts.clock.now())) this.refresh(job)
      return found.loaded
    }
    const stale = found?.loaded
    try {
      if (l2Failure !== undefined && !s.opts.suppressL2Errors) throw l2Failure
      if (l2Failure !== undefined) return await this.runLoader(job)
      return await this.loadLocked(job)
    } catch (err) {
      // Stale-if-error: an expired value within its grace stands in for a failed load.
      if (stale) return stale
      throw err
    }
  }

  private async loadLocked(job: Job): Promise<Loaded> {
    const { s } = this.sc
    const lock = s.opts.stampedeLock
    if (!lock) return this.runLoader(job)
    // Across threads and processes: one caller holds a short Redis lock and loads;
    // the others poll L2 for its result, and load themselves if it takes too long.
    const lock_ = lockKey(job.k)
    const token = randomUUID()
    const giveUpAt = Date.now() + lock.waitTimeout
    for (let pause = 10; ; pause = Math.min(pause * 2, 100)) {
      if (await s.tier.lock(lock_, token, lock.lease)) {
        try {
          // Someone may have finished loading between our read and our lock.
          return (await this.freshLoaded(job.k, await l2(this.sc, s.tier.get(job.k, true)))) ?? (await this.runLoader(job))
        } finally {
          await s.tier.unlock(lock_, token).catch(() => {})
        }
      }
      await new Promise((r) => setTimeout(r, pause))
      const loaded = await this.freshLoaded(job.k, await l2(this.sc, s.tier.get(job.k, true)))
      if (loaded) return loaded
      if (Date.now() > giveUpAt) return this.runLoader(job)
    }
  }

  private async runLoader(job: Job): Promise<Loaded> {
    this.sc.m.add(NsField.Loads)
    const value = await job.loader()
    if (value === undefined) return { value, copy: () => undefined }
    const prepared = await this.write.prepare(value)
    // With suppressL2Errors the loaded value is returned even when it cannot be cached.
    const cached = this.write.envelopes([{ k: job.k, prepared, ...job.opts, fresh: job.fresh }]).then((writes) => this.write.store(writes))
    await cached.catch((err: unknown) => absorbed(this.sc, err, () => undefined))
    // The callers get copies too: the loader may hand the same object to others.
    const copy = () => deserialize(prepared.raw)
    return { value: copy(), copy }
  }
}
