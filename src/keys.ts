import { InvalidKeyError, InvalidOptionError } from './errors.js'
import { describe } from './util/units.js'

/** Redis key of a user key in namespace `ns`. */
export function dataKey(ns: string, key: string): string {
  return `${ns}:${key}`
}

/**
 * Redis key of a tag epoch. It lives outside every `<namespace>:` prefix ('|' is
 * not allowed in namespaces), so no user key can ever collide with it.
 */
export function tagKey(ns: string, tag: string): string {
  return `__nc|t|${ns}|${tag}`
}

/** The prefixes that hold everything a namespace (and its child namespaces) owns. */
export function namespacePrefixes(ns: string): string[] {
  return [`${ns}:`, `__nc|t|${ns}|`, `__nc|t|${ns}:`]
}

/** Whether full internal key `key` belongs to namespace `ns` (or a child): a data key or a tag epoch. */
export function inNamespace(key: string, ns: string): boolean {
  return namespacePrefixes(ns).some((p) => key.startsWith(p))
}

/** String.prototype.isWellFormed (Node 20, ES2024; the project's TypeScript lib is ES2023). */
interface WellFormed {
  isWellFormed(): boolean
}

/** Index and code unit of the first lone surrogate in `s` (the caller knows there is one). */
function loneSurrogate(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) i++
    else if (c >= 0xd800 && c <= 0xdfff) return `U+${c.toString(16).toUpperCase()} at index ${i}`
  }
  return 'none'
}

/**
 * The reason a string cannot be a Redis key name: a lone UTF-16 surrogate has no
 * UTF-8 form and would be stored as U+FFFD, so '\ud800' and '\ufffd' would be
 * one key. Cheap on the hot path: isWellFormed is a native scan that one-byte
 * strings skip.
 */
function malformed(s: string, what: string): string | undefined {
  if ((s as unknown as WellFormed).isWellFormed()) return undefined
  return `${what} contains a lone UTF-16 surrogate (${loneSurrogate(s)}), which has no UTF-8 form: it would be stored as U+FFFD and collide with other names. Use well-formed strings.`
}

export function validateKey(key: unknown, maxKeyBytes: number): string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new InvalidKeyError(`Keys must be non-empty strings (got ${describe(key)}).`)
  }
  const bad = malformed(key, 'The key')
  if (bad !== undefined) throw new InvalidKeyError(bad)
  if (key.length * 3 > maxKeyBytes && Buffer.byteLength(key) > maxKeyBytes) {
    throw new InvalidKeyError(
      `The key is ${Buffer.byteLength(key)} bytes long, over maxKeyBytes (${maxKeyBytes}). Hash long keys, or raise maxKeyBytes.`,
    )
  }
  return key
}

export function validateKeys(keys: unknown, maxKeyBytes: number): string[] {
  if (!Array.isArray(keys)) throw new InvalidKeyError(`Expected an array of keys (got ${describe(keys)}).`)
  for (const k of keys) validateKey(k, maxKeyBytes)
  return keys as string[]
}

/** Tags: an array of non-empty strings; duplicates are dropped. */
export function validateTags(tags: unknown, maxKeyBytes: number): string[] {
  if (!Array.isArray(tags)) throw new InvalidOptionError(`tags must be an array of non-empty strings (got ${describe(tags)}).`)
  for (const t of tags) {
    if (typeof t !== 'string' || t.length === 0 || Buffer.byteLength(t) > maxKeyBytes) {
      throw new InvalidOptionError(`Each tag must be a non-empty string of at most ${maxKeyBytes} bytes (got ${describe(t)}).`)
    }
    // A tag is a Redis key name (its epoch counter): the same rule as keys.
    const bad = malformed(t, 'A tag')
    if (bad !== undefined) throw new InvalidKeyError(bad)
  }
  const unique = [...new Set(tags as string[])]
  if (unique.length > 1024) throw new InvalidOptionError(`An entry can carry at most 1024 tags (got ${unique.length}).`)
  return unique
}
