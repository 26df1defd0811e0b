import type { Clock } from '../options/options.js'
import { Field } from '../observability/stats.js'
import type { Meter } from '../observability/stats.js'
import { storedUntil } from '../codec/envelope.js'
import { TierLayer } from './layer.js'
import { UNCHANGED } from './tier.js'
import type { CounterOp, KnownRecord, Tier, TierWrite } from './tier.js'
import { NEGATIVE, SAME } from '../l1/shared_table.js'
import type { ReadTime, RecordStamp, SharedTable } from '../l1/shared_table.js'
import type { KeyRef } from '../l1/key_ref.js'

export interface TieredOptions {
  /** How long a key confirmed missing in L2 is remembered in L1 (0 = not at all). */
  negativeTtl: number
  /** Longest an L1 copy of an L2 entry is served before L2 is asked again (0 = until the entry expires). */
  l1Ttl: number
  /** Entries larger than this stay in L2 only. */
  maxEntryBytes: number
  /**
   * Percent (0–100): each L1 copy's l1Ttl cap is shortened by a random share up to
   * this, so copies filled together do not all expire together (0 = exactly l1Ttl).
   */
  ttlJitter?: number
  /** Random numbers in [0, 1) for the jitter (tests); Math.random by default. */
  random?: () => number
}

/** A `get` of one key in flight to L2, joined by concurrent gets whose guards match. */
interface InFlight {
  epoch: number
  trust: number
  promise: Promise<Buffer | null>
}

const SAMPLE = 15

/**
 * The shared L1 table in front of an L2 tier. Reads try L1 first; an L1 miss goes
 * to L2 and fills L1 with the answer (a negative entry when L2 has nothing).
 *
 * Races inside the process are closed with the table's epoch words: a fill reads
 * the key's epoch before asking L2 and lands only if no write or delete of that key
 * (or one sharing its epoch word) happened meanwhile; a write reads it before
 * writing L2 and, when another write raced it, removes the key from L1 instead of
 * guessing which write L2 kept. Deletes and invalidations remove L1 copies after L2
 * has changed, which also voids every fill that started before.
 */
export class TieredStore extends TierLayer {
  private ops = 0
  /** Per key, the L2 read a concurrent `get` may join (see `get`). */
  private readonly inflight = new Map<string, InFlight>()
  private readonly jitter: number
  private readonly random: () => number

  constructor(
    readonly table: SharedTable,
    l2: Tier,
    private readonly clock: Clock,
    private readonly opts: TieredOptions,
    private readonly meter: Meter,
  ) {
    super(l2)
    this.jitter = Math.min(100, Math.max(0, opts.ttlJitter ?? 0)) / 100
    this.random = opts.random ?? Math.random
  }

  /**
   * How long L1 may keep bytes: until the entry's end (expiry or grace), capped by
   * l1.ttl shortened by up to ttlJitter percent (so copies filled at one moment do
   * not all expire at one moment; l1.ttl stays the upper bound).
   */
  private deadlineOf(bytes: Buffer, now: number): number {
    const expires = storedUntil(bytes)
    const ttl = this.opts.l1Ttl
    const cap = ttl > 0 ? now + (this.jitter > 0 ? ttl - Math.floor(ttl * this.jitter * this.random()) : ttl) : 0
    if (expires === 0) return cap
    return cap === 0 ? expires : Math.min(expires, cap)
  }

  private fill(key: KeyRef, value: Buffer | null, epoch: number, now: number, trust: number): void {
    // While cross-process invalidations may be missing, or if trust changed since the
    // L2 read began, L1 is not filled (it was flushed, and the value may be stale).
    if (!this.table.trusted || this.table.trustEpoch() !== trust) return
    let stored = false
    if (value === null) {
      if (this.opts.negativeTtl > 0) stored = this.table.put(key, null, now + this.opts.negativeTtl, now, { epoch, removeOnRace: false, bump: false })
    } else if (value.length <= this.opts.maxEntryBytes) {
      stored = this.table.put(key, value, this.deadlineOf(value, now), now, { epoch, removeOnRace: false, bump: false })
    }
    if (stored) this.meter.add(Field.Sets)
  }

  private l1Get(key: string | KeyRef, now: ReadTime, known?: RecordStamp): Uint8Array | null {
    const start = (++this.ops & SAMPLE) === 0 ? performance.now() : 0
    const v = this.table.lookup(key, now, known)
    this.meter.add(v === null ? Field.Misses : Field.Hits)
    if (start) this.meter.time(start)
    return v
  }

  get stamp(): RecordStamp {
    return this.table.stamp
  }

  override peek(key: string): Buffer | null | undefined {
    const hit = this.l1Get(key, this.clock.now())
    if (hit === null) return undefined
    // The table's bytes are a Buffer of their own already (lookup copies into one).
    return hit === NEGATIVE ? null : (hit as Buffer)
  }

  peekKnown(key: string, known: KnownRecord | undefined): Buffer | null | undefined | typeof UNCHANGED {
    if (known === undefined) return this.peek(key)
    const hit = this.l1Get((known.ref ??= this.table.ref(key)), this.clock, known.stamp)
    if (hit === null) return undefined
    if (hit === SAME) return UNCHANGED
    return hit === NEGATIVE ? null : (hit as Buffer)
  }

  /** Tag epochs from their L1 copies alone (see Tier.peekCounters); undefined when one is not in L1. */
  peekCounters(keys: string[]): (number | null)[] | undefined {
    const now = this.clock.now()
    const out: number[] = []
    for (const k of keys) {
      const hit = this.table.lookup(k, now)
      if (hit === null || hit === NEGATIVE) return undefined
      out.push(Number(Buffer.from(hit).toString('latin1')))
    }
    return out
  }

  /**
   * After a `peek` miss: L2's answer, filled into L1 unless a write raced the read.
   * Concurrent misses of one key in this thread share one L2 read: a caller joins
   * the read in flight only if the key's guard (epochOf) and the trust epoch are the
   * ones that read started with. Any write, delete, invalidation or trust change
   * since moves one of them, and the caller starts a read of its own (the answer in
   * flight may predate that change): a caller that awaited its own set() never gets
   * an answer read before it. An error reaches every caller that joined.
   */
  override async get(key: string, fresh?: boolean): Promise<Buffer | null> {
    if (fresh) return this.inner.get(key, true)
    const trust = this.table.trustEpoch()
    // The key is encoded and hashed once more here (the peek that missed was the first time), for the guard and the fill.
    const ref = this.table.ref(key)
    const epoch = this.table.epochOf(ref)
    const running = this.inflight.get(key)
    if (running !== undefined && running.epoch === epoch && running.trust === trust) {
      const v = await running.promise
      // Each joiner gets bytes of its own: nothing above may rely on another caller not touching them.
      return v === null ? null : Buffer.from(v)
    }
    const now = this.clock.now()
    // One .then, no async frame of its own: this is every L1 miss's path.
    const promise = this.inner.get(key).then((v) => {
      this.fill(ref, v, epoch, now, trust)
      return v
    })
    const read: InFlight = { epoch, trust, promise }
    this.inflight.set(key, read)
    try {
      return await read.promise
    } finally {
      if (this.inflight.get(key) === read) this.inflight.delete(key)
    }
  }

  /**
   * Asks L2 (`read`) for keys L1 missed, and fills L1 from the answers unless a
   * write raced the read (each key's guard is read first). `bytesOf` gives what to
   * store for an answer: bytes, null for a negative entry, undefined for nothing.
   */
  private async readThrough<T>(keys: string[], read: (keys: string[]) => Promise<T[]>, bytesOf: (v: T) => Buffer | null | undefined): Promise<T[]> {
    const now = this.clock.now()
    const trust = this.table.trustEpoch()
    const refs = keys.map((k) => this.table.ref(k))
    const epochs = refs.map((r) => this.table.epochOf(r))
    const values = await read(keys)
    values.forEach((v, j) => {
      const bytes = bytesOf(v)
      if (bytes !== undefined) this.fill(refs[j] as KeyRef, bytes, epochs[j] as number, now, trust)
    })
    return values
  }

  override async mget(keys: string[], fromL1?: boolean[]): Promise<(Buffer | null)[]> {
    const now = this.clock.now()
    const out: (Buffer | null)[] = new Array(keys.length).fill(null)
    const missing: number[] = []
    keys.forEach((k, i) => {
      const hit = this.l1Get(k, now)
      if (fromL1) fromL1[i] = hit !== null
      if (hit === null) missing.push(i)
      else if (hit !== NEGATIVE) out[i] = Buffer.from(hit.buffer, hit.byteOffset, hit.byteLength)
    })
    if (missing.length === 0) return out
    const values = await this.readThrough(
      missing.map((i) => keys[i] as string),
      (ks) => this.inner.mget(ks),
      (v) => v ?? null,
    )
    missing.forEach((i, j) => (out[i] = values[j] ?? null))
    return out
  }

  /** After L2 accepted `w`: store it in L1 unless another write raced it (then drop the L1 copy). Bumps the key's epoch word once. */
  private written(w: TierWrite, ref: KeyRef, epoch: number): void {
    const now = this.clock.now()
    if (w.bytes.length > this.opts.maxEntryBytes || !this.table.trusted) {
      this.table.take(ref, now)
      return
    }
    if (this.table.put(ref, w.bytes, this.deadlineOf(w.bytes, now), now, { epoch, removeOnRace: true, bump: true })) this.meter.add(Field.Sets)
  }

  private forget(keys: string[]): void {
    const now = this.clock.now()
    for (const k of keys) this.table.take(k, now)
  }

  override async set(writes: TierWrite[]): Promise<void> {
    const refs = writes.map((w) => this.table.ref(w.key))
    const epochs = refs.map((r) => this.table.epochOf(r))
    try {
      await this.inner.set(writes)
    } catch (err) {
      this.forget(writes.map((w) => w.key))
      throw err
    }
    // Keys of one batch may share an epoch word: each write bumps its word once, so
    // a later key's guard allows for the bumps of this batch's earlier writes and
    // still refuses another writer's.
    const own = new Map<number, number>()
    writes.forEach((w, i) => {
      const ref = refs[i] as KeyRef
      const slot = this.table.epochSlot(ref)
      const mine = own.get(slot) ?? 0
      this.written(w, ref, ((epochs[i] as number) + mine) | 0)
      own.set(slot, mine + 1)
    })
  }

  override async casSet(w: TierWrite, expectSha1: string | null): Promise<boolean> {
    const ref = this.table.ref(w.key)
    const epoch = this.table.epochOf(ref)
    let ok = false
    try {
      ok = await this.inner.casSet(w, expectSha1)
    } finally {
      if (ok) this.written(w, ref, epoch)
      else this.forget([w.key])
    }
    return ok
  }

  override async take(keys: string[]): Promise<(Buffer | null)[]> {
    try {
      return await this.inner.take(keys)
    } finally {
      this.forget(keys)
    }
  }

  /** Tag epochs are cached in L1 like entries; a bump removes the L1 copies after L2 changed. */
  override async counters(keys: string[], op: CounterOp): Promise<(number | null)[]> {
    if (op === 'bump') {
      try {
        return await this.inner.counters(keys, op)
      } finally {
        this.forget(keys)
      }
    }
    const now = this.clock.now()
    const out: (number | null)[] = new Array(keys.length).fill(null)
    const missing: number[] = []
    keys.forEach((k, i) => {
      const hit = this.table.lookup(k, now)
      if (hit === null || hit === NEGATIVE) missing.push(i)
      else out[i] = Number(Buffer.from(hit).toString('latin1'))
    })
    if (missing.length === 0) return out
    const values = await this.readThrough(
      missing.map((i) => keys[i] as string),
      (ks) => this.inner.counters(ks, op),
      // A missing counter is not remembered as missing: 'init' may create it at any time.
      (v) => (v === null ? undefined : Buffer.from(String(v))),
    )
    missing.forEach((i, j) => (out[i] = values[j] ?? null))
    return out
  }

  override async deletePrefixes(prefixes: string[]): Promise<number> {
    try {
      return await this.inner.deletePrefixes(prefixes)
    } finally {
      // O(1) whatever the table's size: the whole root namespace's L1 copies go.
      this.table.invalidateRoots(prefixes)
    }
  }
}
