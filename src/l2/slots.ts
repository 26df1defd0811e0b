import calculateSlot from 'cluster-key-slot'

/**
 * Multi-key commands, split so that none fails with CROSSSLOT or grows too large:
 * the one home of group-by-slot-and-scatter, for the library and the CLI.
 */

/**
 * Key indexes in batches for one command each: one hash slot per batch on a
 * Cluster (standalone: any keys together), at most `max` keys per batch.
 */
export function slotBatches(keys: readonly string[], cluster: boolean, max: number): number[][] {
  if (!cluster) return keys.length <= max ? [keys.map((_, i) => i)] : chunk(keys.map((_, i) => i), max)
  const groups = new Map<number, number[]>()
  for (let i = 0; i < keys.length; i++) {
    const slot = calculateSlot(keys[i] as string)
    const g = groups.get(slot)
    if (g) g.push(i)
    else groups.set(slot, [i])
  }
  const out: number[][] = []
  for (const g of groups.values()) {
    if (g.length <= max) out.push(g)
    else out.push(...chunk(g, max))
  }
  return out
}

/**
 * Runs `command` on every batch of `keys` (see slotBatches) at once; `command`
 * answers one result per key of its batch, and the answer is every result in key
 * order (`missing` where a reply was short).
 */
export async function scatterBySlot<R>(
  keys: readonly string[],
  cluster: boolean,
  max: number,
  missing: R,
  command: (batch: string[]) => Promise<readonly (R | undefined)[]>,
): Promise<R[]> {
  const out: R[] = new Array<R>(keys.length).fill(missing)
  await Promise.all(
    slotBatches(keys, cluster, max).map(async (batch) => {
      const values = await command(batch.map((i) => keys[i] as string))
      for (let j = 0; j < batch.length; j++) out[batch[j] as number] = values[j] ?? missing
    }),
  )
  return out
}

/** Splits a list into chunks of at most `size`. */
function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}
