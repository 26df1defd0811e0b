import { createHash } from 'node:crypto'
import { randomCounterStart } from '../l2/scripts.js'
import type { Tier, TierWrite } from '../tier.js'

interface Slot {
  bytes: Buffer
  /** Real-time deadline (Date.now based, like Redis PX), Infinity = none. */
  deadline: number
}

/**
 * A process-local tier with a byte budget and least-recently-used eviction: the
 * embedded default when there is no Redis (`redis: false`). It behaves like the
 * Redis tier byte for byte, so the cache facade cannot tell them apart. (The
 * SharedArrayBuffer L1 shared by every thread replaces it in a later version.)
 */
export class MemoryTier implements Tier {
  readonly kind = 'l1' as const
  private readonly map = new Map<string, Slot>()
  /** Tag epochs live outside the byte budget: evicting one would resurrect entries. */
  private readonly counters = new Map<string, number>()
  private bytesUsed = 0
  evictions = 0

  constructor(private readonly maxBytes: number) {}

  get size(): number {
    return this.map.size
  }

  get usedBytes(): number {
    return this.bytesUsed
  }

  private live(key: string): Slot | undefined {
    const s = this.map.get(key)
    if (!s) return undefined
    if (s.deadline <= Date.now()) {
      this.remove(key, s)
      return undefined
    }
    return s
  }

  private remove(key: string, s: Slot): void {
    this.map.delete(key)
    this.bytesUsed -= s.bytes.length + key.length
  }

  private put(w: TierWrite): void {
    const old = this.map.get(w.key)
    if (old) this.remove(w.key, old)
    const cost = w.bytes.length + w.key.length
    if (cost > this.maxBytes) return
    while (this.bytesUsed + cost > this.maxBytes) {
      const [k, s] = this.map.entries().next().value as [string, Slot]
      this.remove(k, s)
      this.evictions++
    }
    this.map.set(w.key, { bytes: w.bytes, deadline: w.px === undefined ? Infinity : Date.now() + w.px })
    this.bytesUsed += cost
  }

  async get(key: string): Promise<Buffer | null> {
    const s = this.live(key)
    if (!s) return null
    this.map.delete(key)
    this.map.set(key, s)
    return s.bytes
  }

  async mget(keys: string[]): Promise<(Buffer | null)[]> {
    return Promise.all(keys.map((k) => this.get(k)))
  }

  async set(writes: TierWrite[]): Promise<void> {
    for (const w of writes) this.put(w)
  }

  async casSet(w: TierWrite, expectSha1: string | null): Promise<boolean> {
    const cur = this.live(w.key)
    if (expectSha1 === null ? cur !== undefined : !cur || sha1(cur.bytes) !== expectSha1) return false
    this.put(w)
    return true
  }

  async take(keys: string[]): Promise<(Buffer | null)[]> {
    return keys.map((k) => {
      const s = this.live(k)
      if (!s) return null
      this.remove(k, s)
      return s.bytes
    })
  }

  async readCounters(keys: string[], init: boolean): Promise<(number | null)[]> {
    return keys.map((k) => {
      let v = this.counters.get(k)
      if (v === undefined && init) this.counters.set(k, (v = randomCounterStart()))
      return v ?? null
    })
  }

  async bumpCounters(keys: string[]): Promise<void> {
    for (const k of keys) this.counters.set(k, (this.counters.get(k) ?? 0) + 1)
  }

  async deletePrefixes(prefixes: string[]): Promise<number> {
    let n = 0
    for (const k of [...this.counters.keys()]) if (prefixes.some((p) => k.startsWith(p))) this.counters.delete(k)
    for (const [k, s] of [...this.map]) {
      if (prefixes.some((p) => k.startsWith(p))) {
        this.remove(k, s)
        if (s.deadline > Date.now()) n++
      }
    }
    return n
  }

  async close(): Promise<void> {
    this.map.clear()
    this.counters.clear()
    this.bytesUsed = 0
  }
}

export function sha1(bytes: Uint8Array): string {
  return createHash('sha1').update(bytes).digest('hex')
}
