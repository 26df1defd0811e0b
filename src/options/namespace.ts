import { INTERNAL_PREFIX, reservedSegment } from '../keys.js'
import { InvalidOptionError } from '../errors.js'
import { describe } from '../util/units.js'

// The namespace rule, in one place: createCache's `namespace`, `cache.namespace(name)`
// and the CLI's `--namespace` all go through validateNamespace.

/** Longest namespace path, in characters (ASCII only, so bytes too). */
export const MAX_NAMESPACE_CHARS = 256

const NAMESPACE_SEGMENT = /^[A-Za-z0-9_.-]+$/

/** Why `ns` is not a safe namespace, or undefined when it is. */
function namespaceProblem(ns: unknown): string | undefined {
  if (typeof ns !== 'string') return 'it is not a string'
  if (ns.length === 0) return 'it is empty'
  if (ns.length > MAX_NAMESPACE_CHARS) return `it is ${ns.length} characters long`
  for (const segment of ns.split(':')) {
    if (segment === '') return "it has an empty segment (a leading, trailing or doubled ':')"
    if (!NAMESPACE_SEGMENT.test(segment)) {
      const bad = [...segment].find((c) => !NAMESPACE_SEGMENT.test(c)) as string
      const cp = bad.codePointAt(0) as number
      const shown = cp > 0x20 && cp < 0x7f ? `'${bad}'` : `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`
      return `${shown} is not allowed`
    }
    if (reservedSegment(segment)) return `segments starting with '${INTERNAL_PREFIX}' are reserved for nearcache's own keys`
  }
  return undefined
}

/**
 * A namespace, or a path of them: segments of ASCII letters, digits, '_', '.' and
 * '-', separated by ':', at most 256 characters, no segment starting with '__nc'.
 * Nothing that is special to Redis: no glob characters (SCAN MATCH), no '{}'
 * (Cluster hash tags), no '|' (nearcache's own keys and channels), no whitespace
 * or control characters.
 */
export function validateNamespace(ns: unknown, name = 'namespace'): string {
  const problem = namespaceProblem(ns)
  if (problem !== undefined) {
    throw new InvalidOptionError(
      `${name} must be segments of letters, digits, '_', '.' and '-' separated by ':', at most ${MAX_NAMESPACE_CHARS} characters (got ${describe(ns)}: ${problem}).`,
    )
  }
  return ns as string
}
