import { isDeepStrictEqual } from 'node:util'

/**
 * A plain in-memory reference for the cache contract. It keeps what Redis keeps
 * physically (entries stay until deleted, overwritten or cleared; Redis' own TTL is
 * far longer than any test) and answers reads logically (clock expiry, tag epochs).
 */
interface Entry {
  value: unknown
  expiresAt: number
  tags: Map<string, number>
}

export class ReferenceModel {
  private readonly entries = new Map<string, Entry>()
  private readonly epochs = new Map<string, number>()
  now = 0

  private live(key: string): Entry | undefined {
    const e = this.entries.get(key)
    if (!e) return undefined
    if (e.expiresAt !== 0 && e.expiresAt <= this.now) return undefined
    for (const [t, epoch] of e.tags) if ((this.epochs.get(t) ?? 0) !== epoch) return undefined
    return e
  }

  private write(key: string, value: unknown, ttl: number | undefined, tags: string[] = []): void {
    this.entries.set(key, {
      value: structuredClone(value),
      expiresAt: ttl === undefined ? 0 : this.now + ttl,
      tags: new Map(tags.map((t) => [t, this.epochs.get(t) ?? 0])),
    })
  }

  get(key: string): unknown {
    return structuredClone(this.live(key)?.value)
  }

  has(key: string): boolean {
    return this.live(key) !== undefined
  }

  getMany(keys: string[]): unknown[] {
    return keys.map((k) => this.get(k))
  }

  set(key: string, value: unknown, o: { ttl?: number; tags?: string[]; nx?: boolean; xx?: boolean } = {}): boolean {
    const exists = this.has(key)
    if ((o.nx && exists) || (o.xx && !exists)) return false
    this.write(key, value, o.ttl, o.tags)
    return true
  }

  setMany(entries: { key: string; value: unknown; ttl?: number; tags?: string[] }[]): void {
    for (const e of entries) this.write(e.key, e.value, e.ttl, e.tags)
  }

  deleteMany(keys: string[]): number {
    let n = 0
    for (const k of new Set(keys)) {
      if (this.has(k)) n++
      this.entries.delete(k)
    }
    return n
  }

  getOrSet(key: string, value: unknown, o: { ttl?: number; tags?: string[] } = {}): unknown {
    const e = this.live(key)
    if (e) return structuredClone(e.value)
    if (value !== undefined) this.write(key, value, o.ttl, o.tags)
    return structuredClone(value)
  }

  compareAndSet(key: string, expected: unknown, next: unknown, ttl?: number): boolean {
    const e = this.live(key)
    const ok = expected === undefined ? e === undefined : e !== undefined && isDeepStrictEqual(e.value, expected)
    if (ok) this.write(key, next, ttl)
    return ok
  }

  invalidateTags(tags: string[]): void {
    for (const t of new Set(tags)) this.epochs.set(t, (this.epochs.get(t) ?? 0) + 1)
  }

  /** Counts what is stored, as Redis does: entries expired or invalidated but not yet removed count too. */
  invalidatePrefix(prefix: string): number {
    let n = 0
    for (const k of [...this.entries.keys()]) {
      if (k.startsWith(prefix)) {
        this.entries.delete(k)
        n++
      }
    }
    return n
  }

  clear(): void {
    this.entries.clear()
  }
}
