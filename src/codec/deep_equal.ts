/**
 * Structural equality for cached values, used by compareAndSet: the same types
 * with the same contents. Object key order does not matter; NaN equals NaN;
 * Map/Set compare by entries in order of insertion-independent lookup for
 * primitive keys; cycles are handled.
 */
export function deepEqual(a: unknown, b: unknown, seen: Map<object, object> = new Map()): boolean {
  if (a === b) return true
  if (typeof a !== typeof b) return false
  if (typeof a === 'number') return Number.isNaN(a) && Number.isNaN(b as number)
  if (typeof a !== 'object' || a === null || b === null) return false
  const bo = b as object
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(bo)) return false
  const prior = seen.get(a)
  if (prior !== undefined) return prior === bo
  seen.set(a, bo)
  if (a instanceof Date) return a.getTime() === (bo as Date).getTime() || (Number.isNaN(a.getTime()) && Number.isNaN((bo as Date).getTime()))
  if (a instanceof RegExp) return String(a) === String(bo)
  if (ArrayBuffer.isView(a)) {
    const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength)
    const v = bo as ArrayBufferView
    const y = new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
    return x.length === y.length && x.every((byte, i) => byte === y[i])
  }
  if (a instanceof Map) {
    const m = bo as Map<unknown, unknown>
    if (a.size !== m.size) return false
    for (const [k, v] of a) {
      if (!m.has(k)) return matchUnordered([...a], [...m], seen)
      if (!deepEqual(v, m.get(k), seen)) return false
    }
    return true
  }
  if (a instanceof Set) {
    const s = bo as Set<unknown>
    if (a.size !== s.size) return false
    for (const v of a) if (!s.has(v)) return matchUnordered([...a], [...s], seen)
    return true
  }
  if (a instanceof Error) {
    const e = bo as Error
    if (a.message !== e.message || a.name !== e.name) return false
  }
  const ka = Object.keys(a)
  const kb = Object.keys(bo)
  if (ka.length !== kb.length) return false
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(bo, k)) return false
    if (!deepEqual((a as Record<string, unknown>)[k], (bo as Record<string, unknown>)[k], seen)) return false
  }
  return true
}

/** Map/Set members that are objects compare structurally, in any order. */
function matchUnordered(xs: unknown[], ys: unknown[], seen: Map<object, object>): boolean {
  const left = [...ys]
  for (const x of xs) {
    const i = left.findIndex((y) => deepEqual(x, y, new Map(seen)))
    if (i < 0) return false
    left.splice(i, 1)
  }
  return true
}
