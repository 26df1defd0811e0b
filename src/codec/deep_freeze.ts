// Shared values (l1.shareValues): one deep-frozen value per thread and key.
//
// Only JSON-like data can be shared safely: plain objects, arrays and primitives.
// Object.freeze cannot make a Date (setTime), a Map or Set (set, add, delete) or a
// typed array (its elements; freezing one with elements throws) read-only, so a
// caller could change what every later caller is handed. Values holding any of
// those are not shared: each caller gets its own copy, as without shareValues.

/** Whether a plain tree (isPlainTree) holds only plain objects, arrays and primitives. */
export function isJsonLike(x: unknown): boolean {
  if (typeof x !== 'object' || x === null) return true
  if (Array.isArray(x)) {
    if (Object.getPrototypeOf(x) !== Array.prototype) return false
    for (let i = 0; i < x.length; i++) if (!isJsonLike(x[i])) return false
    return true
  }
  if (Object.getPrototypeOf(x) !== Object.prototype) return false
  for (const k in x) if (!isJsonLike((x as Record<string, unknown>)[k])) return false
  return true
}

/** Freezes a JSON-like tree, every level; answers it. */
export function deepFreeze<T>(x: T): T {
  if (typeof x !== 'object' || x === null) return x
  if (Array.isArray(x)) for (let i = 0; i < x.length; i++) deepFreeze(x[i])
  else for (const k in x) deepFreeze((x as Record<string, unknown>)[k])
  return Object.freeze(x)
}
