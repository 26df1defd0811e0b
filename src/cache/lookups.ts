import type { Memo } from '../codec/decode_memo.js'
import { dataKey, validateKey } from '../keys.js'
import { UNCHANGED } from '../tiers/tier.js'
import type { Scope } from './context.js'
import { l2, MISS } from './l2_outcome.js'
import type { ReadPath } from './read_path.js'

/**
 * get, has and getMany: ask the tier (a synchronous L1 answer first, then L2), hand
 * the bytes to the read path, and count each lookup by the tier that answered.
 */
export class Lookups {
  /** This thread's memos of this namespace, by the caller's key. */
  private readonly memos: ReadonlyMap<string, Memo>

  constructor(
    private readonly sc: Scope,
    private readonly read: ReadPath,
  ) {
    this.memos = sc.s.memo.index(sc.ns)
  }

  /**
   * The caller's copy of the value at `key` of this namespace, or undefined. The
   * key is validated here, unless this thread's memo holds it: memo entries are
   * made only for keys that passed validation, and it depends on nothing but the
   * string (and the cache's maxKeyBytes).
   */
  get(key: string): Promise<unknown> {
    const { s, m, ns } = this.sc
    const start = m.sampleStart()
    const tier = s.tier
    let value: unknown
    let k: string
    try {
      // With an L1, the memo of the key tells the table which record this thread decoded last:
      // while that record is live, nothing is copied out of the table (UNCHANGED). The full
      // key is built once, and only when there is no memo (which holds it).
      const memo = tier.peekKnown !== undefined ? this.memos.get(key) : undefined
      k = memo !== undefined ? memo.key : dataKey(ns, validateKey(key, s.opts.maxKeyBytes))
      const peeked = tier.peekKnown !== undefined ? tier.peekKnown(k, memo) : tier.peek(k)
      if (peeked === undefined) return this.fromL2(k)
      value = peeked === UNCHANGED ? this.read.known(memo as Memo) : this.read.value(k, peeked, tier.stamp)
    } catch (err) {
      return Promise.reject(err)
    }
    // The hit path is synchronous: no async frame, one resolved promise.
    if (value instanceof Promise) return value.then((v: unknown) => this.counted(s.hasL1, v, start))
    return Promise.resolve(this.counted(s.hasL1, value, start))
  }

  private counted(fromL1: boolean, value: unknown, start: number): unknown {
    this.sc.m.lookup(fromL1, value !== undefined, start)
    return value
  }

  /** get after peek could not tell: L2 (through l2_outcome, counted, maybe absorbed). */
  private async fromL2(k: string): Promise<unknown> {
    const start = performance.now()
    let value = this.read.value(k, await l2(this.sc, this.sc.s.tier.get(k), MISS))
    if (value instanceof Promise) value = await value
    return this.counted(false, value, start)
  }

  /**
   * getSync: the value at `key` of this namespace when L1 holds it, else undefined;
   * never asks L2 (the key is validated as in get). Answers undefined too when it cannot tell without waiting: an entry with
   * tags whose current epochs L1 does not hold.
   */
  getSync(key: string): unknown {
    const { s, m, ns } = this.sc
    const tier = s.tier
    const memo = this.memos.get(key)
    const k = memo !== undefined ? memo.key : dataKey(ns, validateKey(key, s.opts.maxKeyBytes))
    if (!s.hasL1 || tier.peekKnown === undefined) return undefined
    const start = m.sampleStart()
    const peeked = tier.peekKnown(k, memo)
    let value: unknown
    if (peeked === UNCHANGED) value = this.read.knownSync(memo as Memo)
    else if (peeked !== undefined && peeked !== null) value = this.read.valueSync(k, peeked, tier.stamp)
    m.lookup(true, value !== undefined, start)
    return value
  }

  /** Whether full key `k` holds a live entry (its value is not decoded). */
  async has(k: string): Promise<boolean> {
    const { s, m } = this.sc
    const peeked = s.tier.peek(k)
    const raw = peeked !== undefined ? peeked : await l2(this.sc, s.tier.get(k), MISS)
    const [live] = await this.read.live([k], [raw])
    m.lookup(peeked !== undefined && s.hasL1, live !== undefined, 0)
    return live !== undefined
  }

  /** The values of full keys `ks`, in order (undefined where missing). */
  async getMany(ks: string[]): Promise<unknown[]> {
    const { s, m } = this.sc
    const fromL1: boolean[] = []
    const raws = await l2(this.sc, s.tier.mget(ks, fromL1), () => ks.map(() => null))
    const live = await this.read.live(ks, raws)
    let pending = false
    const decoded = live.map((e, i) => {
      if (e === undefined) return undefined
      const v = this.read.decode(ks[i] as string, raws[i] as Buffer, e.env, e.memo)
      if (v instanceof Promise) pending = true
      return v
    })
    const values = pending ? await Promise.all(decoded) : decoded
    values.forEach((v, i) => m.lookup(s.hasL1 && fromL1[i] === true, v !== undefined, 0))
    return values
  }
}
