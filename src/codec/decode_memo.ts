import type { Envelope } from './envelope.js'

/**
 * Per-thread memo of decoded values, keyed by entry key and checked against the
 * exact stored bytes: a read whose bytes equal the last ones decoded for that key
 * gets a fresh copy of the memoized value through a plain-data clone (~0.3 µs for a
 * 150-byte object) instead of a msgpackr decode (~2.4 µs, bench/l1_hit). Only values
 * made of plain objects, arrays, primitives, Date, Map, Set and Uint8Array/Buffer
 * with no shared or cyclic references qualify: for them this clone is exactly what a
 * decode would produce. Everything else is decoded every time.
 */
export interface Memo {
  bytes: Uint8Array
  env: Envelope
  value: unknown
}

const MAX_ENTRIES = 4096
const MAX_BYTES = 8 * 1024 * 1024
const MAX_NODES = 4096

export class DecodeMemo {
  private readonly map = new Map<string, Memo>()
  private bytes = 0
  /**
   * Keys decoded once recently. A key is memoized only on its second decode, so a
   * cold working set larger than the memo pays one Map write per read, not the
   * plain-data check and clone (bench/goals showed those cost more than they save
   * when nothing is read twice).
   */
  private seen = new Set<string>()

  /** The memo for `key` when `raw` is byte-for-byte what it was made from. */
  find(key: string, raw: Uint8Array): Memo | undefined {
    const m = this.map.get(key)
    if (m === undefined) return undefined
    if (m.bytes.length === raw.length && Buffer.compare(m.bytes, raw) === 0) return m
    return undefined
  }

  /** Remembers `value` (which must then not be handed to anyone) if it is plain data and was decoded before; answers whether it did. */
  remember(key: string, raw: Uint8Array, env: Envelope, value: unknown): boolean {
    if (!this.seen.has(key)) {
      if (this.seen.size >= MAX_ENTRIES * 2) this.seen = new Set()
      this.seen.add(key)
      return false
    }
    if (raw.length > MAX_BYTES / 16 || !isPlainTree(value)) return false
    const old = this.map.get(key)
    if (old) {
      this.bytes -= old.bytes.length
      this.map.delete(key)
    }
    while (this.map.size >= MAX_ENTRIES || this.bytes + raw.length > MAX_BYTES) {
      const [k, m] = this.map.entries().next().value as [string, Memo]
      this.map.delete(k)
      this.bytes -= m.bytes.length
    }
    this.map.set(key, { bytes: raw, env, value })
    this.bytes += raw.length
    return true
  }
}

function isPlainTree(v: unknown): boolean {
  const seen = new Set<object>()
  let nodes = 0
  const walk = (x: unknown): boolean => {
    if (typeof x !== 'object' || x === null) return typeof x !== 'function' && typeof x !== 'symbol'
    if (++nodes > MAX_NODES || seen.has(x)) return false
    seen.add(x)
    if (Array.isArray(x)) return x.every(walk)
    const proto = Object.getPrototypeOf(x)
    if (proto === Object.prototype) {
      if (Object.hasOwn(x, '__proto__')) return false
      for (const k in x) if (!walk((x as Record<string, unknown>)[k])) return false
      return true
    }
    if (x instanceof Date) return proto === Date.prototype
    if (x instanceof Map) return proto === Map.prototype && [...x].every(([k, val]) => walk(k) && walk(val))
    if (x instanceof Set) return proto === Set.prototype && [...x].every(walk)
    return proto === Uint8Array.prototype || proto === Buffer.prototype
  }
  return walk(v)
}

/** A deep copy of a value isPlainTree accepted. */
export function clonePlain(x: unknown): unknown {
  if (typeof x !== 'object' || x === null) return x
  if (Array.isArray(x)) {
    const out = new Array(x.length)
    for (let i = 0; i < x.length; i++) out[i] = clonePlain(x[i])
    return out
  }
  const proto = Object.getPrototypeOf(x)
  if (proto === Object.prototype) {
    const out: Record<string, unknown> = {}
    for (const k in x) out[k] = clonePlain((x as Record<string, unknown>)[k])
    return out
  }
  if (x instanceof Date) return new Date(x.getTime())
  if (x instanceof Map) {
    const out = new Map()
    for (const [k, v] of x) out.set(clonePlain(k), clonePlain(v))
    return out
  }
  if (x instanceof Set) {
    const out = new Set()
    for (const v of x) out.add(clonePlain(v))
    return out
  }
  return Buffer.isBuffer(x) ? Buffer.from(x) : new Uint8Array(x as Uint8Array)
}
