// Plain trees: the decoded values the decode memo may keep and hand out copies of.

/** Nodes (objects, arrays, entries) a memoized value may have. */
export const MAX_NODES = 4096

/**
 * Whether `v` is made only of plain objects, arrays, primitives, Date, Map, Set and
 * Uint8Array/Buffer, with no shared or cyclic references and at most MAX_NODES
 * nodes: for such a value clonePlain is exactly what a decode would produce.
 */
export function isPlainTree(v: unknown): boolean {
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
