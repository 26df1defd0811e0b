import type { DecodeMemo, Memo } from '../codec/decode_memo.js'
import { RecordStamp } from '../l1/table_index.js'
import type { Clock } from '../options/options.js'
import type { NamespaceMeter } from '../observability/stats.js'
import { decodeValue, parseEntry } from '../codec/entry.js'
import type { Envelope } from '../codec/entry.js'
import { CorruptEntryError } from '../errors.js'
import { tagKey } from '../keys.js'
import { Field, NsField } from '../observability/stats.js'
import { emitError } from './context.js'
import type { Scope } from './context.js'
import { l2 } from './l2_outcome.js'

/** What stored bytes are at a moment: see {@link ReadPath.state}. */
export type EntryState = 'fresh' | 'stale' | 'gone'

/** Stored bytes read: their envelope, and this thread's memo of their value when it has one. */
export interface Entry {
  env: Envelope
  memo: Memo | undefined
}

/**
 * The one read path: from stored bytes to an envelope, its state (fresh, stale
 * within its grace, or gone: missing, corrupt, expired, tag-invalidated) and the
 * caller's own copy of its value. get, has, getMany, getOrSet and conditional
 * writes all read through here, so a rule about entries (expiry, tags, integrity,
 * limits, the decode memo, the codec pool) is written once.
 *
 * A corrupt or foreign entry is a miss plus an E_CORRUPT_ENTRY 'error' event.
 */
export class ReadPath {
  // What the hot path touches, one property load away.
  private readonly memo: DecodeMemo
  private readonly clock: Clock
  private readonly m: NamespaceMeter
  /** l1.shareValues: JSON-like values are frozen and shared through the memo. */
  private readonly share: boolean

  constructor(private readonly sc: Scope) {
    this.memo = sc.s.memo
    this.clock = sc.s.opts.clock
    this.m = sc.m
    const l1 = sc.s.opts.l1
    this.share = l1 !== false && l1.shareValues
  }

  /** The envelope of stored bytes (undefined for a miss or a corrupt entry), with the memo when this thread decoded them before. */
  entry(k: string, raw: Buffer | null): Entry | undefined {
    if (raw === null) return undefined
    const memo = this.memo.find(k, raw)
    if (memo) return { env: memo.env, memo }
    const env = this.parse(k, raw)
    return env === undefined ? undefined : { env, memo: undefined }
  }

  /**
   * The state of an envelope by the cache's clock: fresh, stale (expired, but
   * `allowStale` and within its grace) or gone. Counts an expiry (unless `count` is
   * false). The clock is read only for entries that can expire.
   */
  state(env: Envelope, allowStale = false, count = true): EntryState {
    if (env.expiresAt === 0) return 'fresh'
    const now = this.clock.now()
    if (env.expiresAt > now) return 'fresh'
    if (count) this.m.add(NsField.Expirations)
    return allowStale && env.staleUntil > now ? 'stale' : 'gone'
  }

  /** Whether each entry's tags are all still at the epochs it was written with (entries without tags: true). */
  async tagsLive(envs: (Envelope | undefined)[]): Promise<boolean[]> {
    const names = new Set<string>()
    for (const e of envs) e?.tags?.forEach((t) => names.add(t.name))
    if (names.size === 0) return envs.map(() => true)
    const list = [...names]
    const { s, ns } = this.sc
    const values = await l2(this.sc, s.tier.counters(list.map((t) => tagKey(ns, t)), 'read'))
    const current = new Map(list.map((t, i) => [t, values[i]]))
    return envs.map((e) => !e?.tags?.some((t) => current.get(t.name) !== t.epoch))
  }

  /** The stored values that are live now (present, valid, not expired, tags current); undefined for the others. */
  async live(keys: string[], raws: (Buffer | null)[], countExpired = true): Promise<(Entry | undefined)[]> {
    let tagged = false
    const entries = raws.map((raw, i) => {
      const e = this.entry(keys[i] as string, raw)
      if (e === undefined || this.state(e.env, false, countExpired) === 'gone') return undefined
      if (e.env.tags !== undefined) tagged = true
      return e
    })
    if (!tagged) return entries
    const tags = await this.tagsLive(entries.map((e) => e?.env))
    return entries.map((e, i) => (tags[i] ? e : undefined))
  }

  /**
   * get's path, synchronous on the L1 hit: the caller's copy of a stored value, or
   * undefined. A Promise only when tags must be checked or the codec pool decodes.
   * `stamp`: the L1 record `raw` was read from (then the memo remembers it, so the
   * next read of that record copies no bytes).
   */
  value(k: string, raw: Buffer | null, stamp?: RecordStamp): unknown {
    if (raw === null) return undefined
    // Bytes already decoded in this thread skip parsing and decoding.
    const memo = this.memo.find(k, raw)
    if (memo !== undefined && stamp !== undefined) memo.stamp.copyFrom(stamp)
    const env = memo ? memo.env : this.parse(k, raw)
    if (env === undefined || this.state(env) === 'gone') return undefined
    if (env.tags !== undefined) {
      // The table's stamp is only valid until its next call: keep a copy across the wait.
      const kept = memo === undefined && stamp !== undefined ? copyOf(stamp) : undefined
      return this.tagsLive([env]).then(([live]) => (live ? this.decode(k, raw, env, memo, kept) : undefined))
    }
    return this.decode(k, raw, env, memo, stamp)
  }

  /** get's path when L1 still holds the very record `memo` was made from (nothing was copied). */
  known(memo: Memo): unknown {
    const env = memo.env
    if (this.state(env) === 'gone') return undefined
    if (env.tags !== undefined) return this.tagsLive([env]).then(([live]) => (live ? memo.copy() : undefined))
    return memo.copy()
  }

  /** getSync's `known`: undefined where `known` would wait (tags not in L1). */
  knownSync(memo: Memo): unknown {
    const env = memo.env
    if (this.state(env) === 'gone' || !this.tagsLiveSync(env)) return undefined
    return memo.copy()
  }

  /** getSync's `value`: undefined where `value` would wait (tags not in L1); decodes inline. */
  valueSync(k: string, raw: Buffer, stamp: RecordStamp | undefined): unknown {
    const memo = this.memo.find(k, raw)
    if (memo !== undefined && stamp !== undefined) memo.stamp.copyFrom(stamp)
    const env = memo ? memo.env : this.parse(k, raw)
    if (env === undefined || this.state(env) === 'gone' || !this.tagsLiveSync(env)) return undefined
    return this.decode(k, raw, env, memo, stamp, true)
  }

  /** Whether the entry's tags are current, from the epochs L1 holds; false when L1 cannot tell. */
  private tagsLiveSync(env: Envelope): boolean {
    const tags = env.tags
    if (tags === undefined) return true
    const { s, ns } = this.sc
    const current = s.tier.peekCounters?.(tags.map((t) => tagKey(ns, t.name)))
    return current !== undefined && tags.every((t, i) => current[i] === t.epoch)
  }

  /**
   * The caller's own copy of a live entry's value: the memo's copy when `memo` is
   * the entry's (its shape's cloner, or the shared frozen value), the codec pool for
   * large compressed values, else a decode (which may become the memo). Undefined
   * (plus an event) for a bad payload. `inline`: never the codec pool (getSync).
   */
  decode(k: string, raw: Buffer, env: Envelope, memo: Memo | undefined, stamp?: RecordStamp, inline = false): unknown {
    if (memo) return memo.copy()
    const { s } = this.sc
    if (s.pool && env.compressed && !inline) {
      return s.pool.decode(env.payload, true, s.opts.maxValueBytes).catch((err: unknown) => {
        this.corrupt(k, err)
        return undefined
      })
    }
    try {
      const value = decodeValue(env, s.opts.maxValueBytes)
      const kept = s.memo.remember(k, raw, env, value, stamp, this.share, this.sc.ns)
      return kept ? kept.copy() : value
    } catch (err) {
      this.corrupt(k, err)
      return undefined
    }
  }

  /** Parses and verifies envelope bytes, and that their declared size is within maxValueBytes. */
  private parse(k: string, raw: Buffer): Envelope | undefined {
    try {
      return parseEntry(raw, this.sc.s.opts.maxValueBytes)
    } catch (err) {
      this.corrupt(k, err)
      return undefined
    }
  }

  corrupt(k: string, err: unknown): void {
    const { s, m } = this.sc
    s.primary.add(Field.Errors)
    m.add(NsField.Errors)
    const why = err instanceof Error ? err.message : String(err)
    emitError(s, new CorruptEntryError(k, `The entry at '${k}' is not a valid nearcache entry (${why}); it reads as missing. Another program may be writing under this namespace.`, err))
  }
}

function copyOf(stamp: RecordStamp): RecordStamp {
  const c = new RecordStamp()
  c.copyFrom(stamp)
  return c
}
