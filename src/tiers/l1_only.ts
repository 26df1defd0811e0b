import { ValueTooLargeError } from '../errors.js'
import { randomCounterStart } from '../l2/scripts.js'
import type { Clock } from '../options/options.js'
import { Field } from '../observability/stats.js'
import type { Meter } from '../observability/stats.js'
import { UNCHANGED } from './tier.js'
import type { CounterOp, KnownRecord, Tier, TierWrite } from './tier.js'
import { sha1 } from '../util/sha1.js'
import { NEGATIVE, SAME } from '../l1/shared_table.js'
import type { KeyRef, RecordStamp, SharedTable } from '../l1/shared_table.js'

const asBuffer = (b: Uint8Array | null): Buffer | null => (b === null || b === NEGATIVE ? null : Buffer.from(b.buffer, b.byteOffset, b.byteLength))
const SAMPLE = 15

/**
 * The shared L1 table as the only tier (`redis: false`): the embedded cache. Every
 * thread attached to the table sees the same entries; deadlines follow the cache's clock.
 */
export class L1OnlyTier implements Tier {
  private ops = 0

  constructor(
    readonly table: SharedTable,
    private readonly clock: Clock,
    private readonly meter: Meter,
  ) {}

  private deadline(w: TierWrite, now: number): number {
    return w.px === undefined ? 0 : now + w.px
  }

  get stamp(): RecordStamp {
    return this.table.stamp
  }

  private l1Get(key: string | KeyRef, known?: RecordStamp): Uint8Array | null {
    const start = (++this.ops & SAMPLE) === 0 ? performance.now() : 0
    const v = this.table.lookup(key, this.clock, known)
    this.meter.add(v === null || v === NEGATIVE ? Field.Misses : Field.Hits)
    if (start) this.meter.time(start)
    return v
  }

  peek(key: string): Buffer | null {
    const v = this.l1Get(key)
    // The table's bytes are a Buffer of their own already (lookup copies into one).
    return v === null || v === NEGATIVE ? null : (v as Buffer)
  }

  peekKnown(key: string, known: KnownRecord | undefined): Buffer | null | typeof UNCHANGED {
    if (known === undefined) return this.peek(key)
    const v = this.l1Get((known.ref ??= this.table.ref(key)), known.stamp)
    if (v === SAME) return UNCHANGED
    return v === null || v === NEGATIVE ? null : (v as Buffer)
  }

  async get(key: string): Promise<Buffer | null> {
    return asBuffer(this.table.lookup(key, this.clock.now()))
  }

  async mget(keys: string[], fromL1?: boolean[]): Promise<(Buffer | null)[]> {
    const now = this.clock.now()
    if (fromL1) for (let i = 0; i < keys.length; i++) fromL1[i] = true
    return keys.map((k) => {
      const v = asBuffer(this.table.lookup(k, now))
      this.meter.add(v === null ? Field.Misses : Field.Hits)
      return v
    })
  }

  async set(writes: TierWrite[]): Promise<void> {
    const now = this.clock.now()
    for (const w of writes) this.fits(w)
    for (const w of writes) this.table.put(w.key, w.bytes, this.deadline(w, now), now)
    this.meter.add(Field.Sets, writes.length)
  }

  private fits(w: TierWrite): void {
    const room = this.table.layout.shardDataBytes - this.table.layout.smallBytes - 64 - Buffer.byteLength(w.key)
    if (w.bytes.length > room) {
      throw new ValueTooLargeError(`The entry is ${w.bytes.length} bytes; the L1 holds entries of at most ${room} bytes. Raise l1.maxBytes or store it in Redis.`)
    }
  }

  async casSet(w: TierWrite, expectSha1: string | null): Promise<boolean> {
    this.fits(w)
    const now = this.clock.now()
    const ok = this.table.update(w.key, now, (cur) => {
      const current = cur === NEGATIVE ? null : cur
      const matches = expectSha1 === null ? current === null : current !== null && sha1(current) === expectSha1
      return matches ? { value: w.bytes, deadline: this.deadline(w, now) } : undefined
    })
    if (ok) this.meter.add(Field.Sets)
    return ok
  }

  async take(keys: string[]): Promise<(Buffer | null)[]> {
    const now = this.clock.now()
    const out = keys.map((k) => asBuffer(this.table.take(k, now)))
    this.meter.add(Field.Deletes, out.filter((v) => v !== null).length)
    return out
  }

  async counters(keys: string[], op: CounterOp): Promise<(number | null)[]> {
    const now = this.clock.now()
    if (op === 'bump') {
      for (const k of keys) {
        this.table.update(k, now, (cur) => {
          // A lost counter comes back at a random value, never at one an old entry may carry.
          const n = cur === null || cur === NEGATIVE ? randomCounterStart() : Number(Buffer.from(cur).toString('latin1')) + 1
          return { value: Buffer.from(String(n)), deadline: 0 }
        })
      }
      return keys.map(() => null)
    }
    return keys.map((k) => {
      let v = this.table.lookup(k, now)
      if ((v === null || v === NEGATIVE) && op === 'init') {
        this.table.update(k, now, (cur) => (cur !== null && cur !== NEGATIVE ? undefined : { value: Buffer.from(String(randomCounterStart())), deadline: 0 }))
        v = this.table.lookup(k, now)
      }
      return v === null || v === NEGATIVE ? null : Number(Buffer.from(v).toString('latin1'))
    })
  }

  /** Tag epochs, synchronously: the L1 is where they live (see Tier.peekCounters). */
  peekCounters(keys: string[]): (number | null)[] {
    const now = this.clock.now()
    return keys.map((k) => {
      const v = this.table.lookup(k, now)
      return v === null || v === NEGATIVE ? null : Number(Buffer.from(v).toString('latin1'))
    })
  }

  /** Without L2 the lock is an L1 entry: it serializes loads across this process's threads. */
  async lock(key: string, token: string, px: number): Promise<boolean> {
    const now = this.clock.now()
    return this.table.update(key, now, (cur) => (cur !== null && cur !== NEGATIVE ? undefined : { value: Buffer.from(token), deadline: now + px }))
  }

  async unlock(key: string, token: string): Promise<void> {
    const now = this.clock.now()
    const cur = this.table.lookup(key, now)
    if (cur !== null && cur !== NEGATIVE && Buffer.from(cur).toString() === token) this.table.take(key, now)
  }

  async deletePrefixes(prefixes: string[]): Promise<number> {
    const n = this.table.deletePrefixes(prefixes)
    this.meter.add(Field.Deletes, n)
    return n
  }

  async close(): Promise<void> {}
}
