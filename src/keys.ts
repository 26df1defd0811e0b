import { InvalidKeyError, InvalidOptionError } from './errors.js'
import { describe } from './util/units.js'

/*
 * Every Redis key shape, internal key and channel name of nearcache, in one place;
 * the library and the CLI build and recognise them only through these exports.
 *
 *   <namespace>:<key>            a data key (namespaces: [A-Za-z0-9_.-] segments joined by ':')
 *   __nc|t|<namespace>|<tag>     a tag epoch (an integer counter)
 *   __nc|l|<namespace>:<key>     the stampede lock of a data key (getOrSet)
 *   __nc|ping|<namespace>        read (never written) by the health check
 *   __nc|rl|<namespace>|<name>   a principal's distributed rate limit (GCRA: its TAT)
 *   __nc|inv|<root>              the invalidation channel of a root namespace
 *   __nc|inv                     the invalidation channel before protocol 1 (legacy)
 *
 * Everything internal starts with INTERNAL_PREFIX and a '|', which namespaces
 * cannot contain: no user key can collide with an internal one.
 */

/** The start of every internal name; namespace segments may not start with it (any case). */
export const INTERNAL_PREFIX = '__nc'
/** The start of every tag epoch key. */
export const TAG_EPOCH_PREFIX = `${INTERNAL_PREFIX}|t|`
/** The start of every stampede lock key. */
export const LOCK_PREFIX = `${INTERNAL_PREFIX}|l|`
/** The start of the health check's ping keys. */
export const PING_PREFIX = `${INTERNAL_PREFIX}|ping|`
/** The start of every distributed rate-limit key. */
export const RATE_LIMIT_PREFIX = `${INTERNAL_PREFIX}|rl|`
/** The one global invalidation channel of nearcache before protocol version 1. */
export const LEGACY_CHANNEL = `${INTERNAL_PREFIX}|inv`

/** Whether a namespace segment is reserved for nearcache's own names. */
export function reservedSegment(segment: string): boolean {
  return segment.slice(0, INTERNAL_PREFIX.length).toLowerCase() === INTERNAL_PREFIX
}

/** Redis key of a user key in namespace `ns`. */
export function dataKey(ns: string, key: string): string {
  return `${ns}:${key}`
}

/**
 * Redis key of a tag epoch. It lives outside every `<namespace>:` prefix ('|' is
 * not allowed in namespaces), so no user key can ever collide with it.
 */
export function tagKey(ns: string, tag: string): string {
  return `${TAG_EPOCH_PREFIX}${ns}|${tag}`
}

/** Redis key of the stampede lock of full key `fullKey` (`<namespace>:<key>`). */
export function lockKey(fullKey: string): string {
  return `${LOCK_PREFIX}${fullKey}`
}

/** The key the health check of namespace `ns` reads (a round trip; nothing is stored there). */
export function pingKey(ns: string): string {
  return `${PING_PREFIX}${ns}`
}

/**
 * Redis key of principal `principal`'s distributed rate limit in namespace `ns`
 * (one budget for every process of the fleet). The ACL rule of a namespace that
 * uses distributed limits needs `~__nc|rl|<namespace>|*`.
 */
export function rateLimitKey(ns: string, principal: string): string {
  return `${RATE_LIMIT_PREFIX}${ns}|${principal}`
}

/** The prefixes that hold everything a namespace (and its child namespaces) owns. */
export function namespacePrefixes(ns: string): string[] {
  return [`${ns}:`, `${TAG_EPOCH_PREFIX}${ns}|`, `${TAG_EPOCH_PREFIX}${ns}:`]
}

/** Whether full internal key `key` belongs to namespace `ns` (or a child): a data key or a tag epoch. */
export function inNamespace(key: string, ns: string): boolean {
  return namespacePrefixes(ns).some((p) => key.startsWith(p))
}

/** The first segment of a namespace path (`shop` for `shop` and `shop:users`). */
export function rootNamespace(namespace: string): string {
  const i = namespace.indexOf(':')
  return i < 0 ? namespace : namespace.slice(0, i)
}

/** The invalidation channel of a namespace (of its root): `__nc|inv|<root>`. */
export function channelFor(namespace: string): string {
  return `${LEGACY_CHANNEL}|${rootNamespace(namespace)}`
}

/** Whether a full internal key or prefix lies inside root namespace `root` (a data key or a tag epoch of it). */
export function insideRoot(s: string, root: string): boolean {
  if (s.startsWith(TAG_EPOCH_PREFIX)) {
    const at = TAG_EPOCH_PREFIX.length
    if (s.length - at <= root.length || !s.startsWith(root, at)) return false
    const sep = s.charCodeAt(at + root.length)
    return sep === 0x3a || sep === 0x7c // ':' or '|'
  }
  return s.length > root.length && s.startsWith(root) && s.charCodeAt(root.length) === 0x3a
}

/** The ACL patterns named in permission errors: the cache's keys, and the invalidation channels. */
export const ACL_KEY_PATTERNS = `~<namespace>:*, ~${TAG_EPOCH_PREFIX}*, ~${LOCK_PREFIX}* and ~${PING_PREFIX}*`
export const ACL_CHANNEL_PATTERN = `&${LEGACY_CHANNEL}*`

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
