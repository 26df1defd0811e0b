import type { Redis } from 'ioredis'

/** Keys asked of one SCAN step (a hint to Redis, not a limit). */
const SCAN_COUNT = 1000

/** Escapes a literal prefix for a SCAN MATCH glob. */
export function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&')
}

/** The MATCH glob of every key that starts with literal `prefix`. */
export function prefixGlob(prefix: string): string {
  return `${globEscape(prefix)}*`
}

/**
 * SCANs one node (a standalone server or one Cluster master), yielding the
 * non-empty batches of keys (those matching glob `match` when given). The one SCAN
 * loop of nearcache: prefix deletes, backup and status use it. `step` wraps each
 * SCAN command (the library runs it through its L2 failure policy).
 */
export async function* scanNode(
  node: Redis,
  match?: string,
  step: <T>(fn: () => Promise<T>) => Promise<T> = (fn) => fn(),
): AsyncGenerator<string[]> {
  let cursor = '0'
  do {
    const [next, keys] = await step(() =>
      match === undefined ? node.scan(cursor, 'COUNT', SCAN_COUNT) : node.scan(cursor, 'MATCH', match, 'COUNT', SCAN_COUNT),
    )
    cursor = next
    if (keys.length > 0) yield keys
  } while (cursor !== '0')
}
