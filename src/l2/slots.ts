import calculateSlot from 'cluster-key-slot'

/**
 * Groups key indexes by Redis Cluster hash slot, so that every multi-key command
 * touches one slot and no CROSSSLOT error can happen. Standalone: one group.
 */
export function groupBySlot(keys: readonly string[], cluster: boolean): number[][] {
  if (!cluster) return [keys.map((_, i) => i)]
  const groups = new Map<number, number[]>()
  for (let i = 0; i < keys.length; i++) {
    const slot = calculateSlot(keys[i] as string)
    const g = groups.get(slot)
    if (g) g.push(i)
    else groups.set(slot, [i])
  }
  return [...groups.values()]
}

/** Splits a list into chunks of at most `size`. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

/** Escapes a literal prefix for a SCAN MATCH glob. */
export function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&')
}
