import { deepEqual } from '../codec/deep_equal.js'
import type { TagStamp } from '../codec/envelope.js'
import { buildEnvelope, prepareValue } from '../codec/entry.js'
import type { Freshness, PreparedValue } from '../codec/entry.js'
import { ConflictError } from '../errors.js'
import { tagKey } from '../keys.js'
import { NsField, ProcField } from '../observability/stats.js'
import type { TierWrite } from '../tiers/tier.js'
import { sha1 } from '../util/sha1.js'
import type { WriteChange, WriteOptions } from './call_options.js'
import { emitError } from './context.js'
import type { Scope } from './context.js'
import { l2 } from './l2_outcome.js'
import type { Entry, ReadPath } from './read_path.js'

const MAX_CAS_ATTEMPTS = 32

/** One entry to write: full key, encoded value, TTL, tags, getOrSet's freshness. */
export interface WriteItem extends WriteOptions {
  k: string
  prepared: PreparedValue
  fresh?: Freshness
}

/**
 * The one write path: encode (inline or in the codec pool), stamp tags with their
 * current epochs, build the envelope, hand the change to the `writer` (write-through)
 * and store it in the tier. Conditional writes (nx, xx, compareAndSet) decide on
 * what the authoritative tier holds, through the read path, and land by
 * compare-and-swap.
 *
 * Write-through: for a plain write or delete, the data source (the `writer`) takes
 * the change first, then the cache; a writer that throws leaves the cache untouched.
 * For a conditional write the cache is the arbiter: the writer is called only once
 * the condition held and the swap landed, so the data source sees exactly the
 * conditional writes that won. If the writer then throws, the entry is removed from
 * the cache again (the next read goes to the data source) and the call rejects with
 * the writer's error: the cache never keeps a value the data source refused.
 */
export class WritePath {
  constructor(
    private readonly sc: Scope,
    private readonly read: ReadPath,
  ) {}

  /** Encodes a value: inline, or with large values compressed in the codec worker pool (codecWorkers). */
  prepare(value: unknown): Promise<PreparedValue> | PreparedValue {
    const { pool, opts } = this.sc.s
    return pool ? pool.encode(value, opts.maxValueBytes, opts.compressThreshold) : prepareValue(value, opts)
  }

  /** Envelopes for a batch of writes, reading (creating) the epochs of their tags once. */
  async envelopes(items: WriteItem[]): Promise<TierWrite[]> {
    const { s, ns } = this.sc
    const tagNames = [...new Set(items.flatMap((i) => i.tags ?? []))]
    const epochs = new Map<string, number>()
    if (tagNames.length > 0) {
      const values = await l2(this.sc, s.tier.counters(tagNames.map((t) => tagKey(ns, t)), 'init'))
      tagNames.forEach((t, i) => epochs.set(t, values[i] as number))
    }
    const now = s.opts.clock.now()
    const proc = s.meters.process
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

  /** One value's envelope. */
  private async envelope(k: string, value: unknown, opts: WriteOptions): Promise<TierWrite> {
    const [write] = await this.envelopes([{ k, ...opts, prepared: await this.prepare(value) }])
    return write as TierWrite
  }

  /** Stores envelopes (after the writer took them, for user writes). */
  async store(writes: TierWrite[]): Promise<void> {
    await l2(this.sc, this.sc.s.tier.set(writes))
    this.sc.m.add(NsField.Sets, writes.length)
  }

  /** Write-through: hands changes to the `writer` option, if any. */
  async writeThrough(changes: WriteChange[]): Promise<void> {
    const writer = this.sc.s.opts.writer
    if (writer && changes.length > 0) await writer(changes.map((c) => ({ namespace: this.sc.ns, ...c })))
  }

  /** set and setMany: the writer first, then the cache. */
  async setMany(items: { key: string; k: string; value: unknown; opts: WriteOptions }[]): Promise<void> {
    const prepared = await Promise.all(items.map((i) => this.prepare(i.value)))
    if (items.length === 0) return
    const writes = await this.envelopes(items.map((i, n) => ({ k: i.k, ...i.opts, prepared: prepared[n] as PreparedValue })))
    await this.writeThrough(items.map((i) => ({ key: i.key, value: i.value })))
    await this.store(writes)
  }

  /** set with nx (only a missing key) or xx (only a live key). */
  async setIf(condition: 'nx' | 'xx', key: string, k: string, value: unknown, opts: WriteOptions): Promise<boolean> {
    return this.conditional(await this.envelope(k, value, opts), { key, value }, (live) => (condition === 'nx' ? live === undefined : live !== undefined))
  }

  /** Replaces the value with `next` if it equals `expected` (undefined: the key must be missing). */
  async compareAndSet(key: string, k: string, expected: unknown, next: unknown, opts: WriteOptions): Promise<boolean> {
    return this.conditional(await this.envelope(k, next, opts), { key, value: next }, async (live, raw) => {
      if (expected === undefined) return live === undefined
      if (live === undefined || raw === null) return false
      // A bad payload reads as missing (plus an event), so it equals no expected value.
      const current = await this.read.decode(k, raw, live.env, live.memo)
      return current !== undefined && deepEqual(current, expected)
    })
  }

  /** Removes keys (the writer first); answers how many were live. */
  async deleteMany(keys: string[], ks: string[]): Promise<number> {
    await this.writeThrough(keys.map((key) => ({ key, deleted: true })))
    const raws = await l2(this.sc, this.sc.s.tier.take(ks))
    const live = await this.read.live(ks, raws, false)
    const n = live.filter((e) => e !== undefined).length
    this.sc.m.add(NsField.Deletes, n)
    return n
  }

  /** Bumps the tags' epochs: every entry stamped with an older epoch reads as missing. */
  async invalidateTags(tags: string[]): Promise<void> {
    await l2(this.sc, this.sc.s.tier.counters(tags.map((t) => tagKey(this.sc.ns, t)), 'bump'))
    this.sc.m.add(NsField.TagInvalidations, tags.length)
  }

  /** Removes every key under the prefixes; answers how many were stored. */
  async deletePrefixes(prefixes: string[]): Promise<number> {
    const n = await l2(this.sc, this.sc.s.tier.deletePrefixes(prefixes))
    this.sc.m.add(NsField.PrefixInvalidations)
    return n
  }

  /**
   * Repeats read → decide → compare-and-swap until the swap lands or `decide` says
   * no; then the writer takes the change (see the class comment).
   */
  private async conditional(write: TierWrite, change: WriteChange, decide: (live: Entry | undefined, raw: Buffer | null) => boolean | Promise<boolean>): Promise<boolean> {
    const tier = this.sc.s.tier
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const raw = await l2(this.sc, tier.get(write.key, true))
      const [live] = await this.read.live([write.key], [raw], false)
      if (!(await decide(live, raw))) return false
      if (await l2(this.sc, tier.casSet(write, raw === null ? null : sha1(raw)))) {
        this.sc.m.add(NsField.Sets)
        await this.landed(write.key, change)
        return true
      }
    }
    throw new ConflictError(`The key '${write.key}' changed ${MAX_CAS_ATTEMPTS} times while a conditional write was trying to land; retry later.`)
  }

  /** A conditional write landed: the writer takes it, or the cache lets it go again. */
  private async landed(k: string, change: WriteChange): Promise<void> {
    try {
      await this.writeThrough([change])
    } catch (err) {
      await this.sc.s.tier.take([k]).catch((e: unknown) => emitError(this.sc.s, e))
      throw err
    }
  }
}
