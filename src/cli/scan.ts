import type { Redis } from 'ioredis'

const SCAN_COUNT = 1000

/** Escapes a literal prefix for a SCAN MATCH glob. */
export function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&')
}

/** SCANs one node, yielding batches of keys (optionally those matching a glob). */
export async function* scanNode(node: Redis, match?: string): AsyncGenerator<string[]> {
  let cursor = '0'
  do {
    const [next, keys] = match === undefined
      ? await node.scan(cursor, 'COUNT', SCAN_COUNT)
      : await node.scan(cursor, 'MATCH', match, 'COUNT', SCAN_COUNT)
    cursor = next
    if (keys.length > 0) yield keys
  } while (cursor !== '0')
}
