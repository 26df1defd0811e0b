/** Runs tasks with at most `limit` in flight: `add` waits for a free place, `drain` for all. */
export function bounded(limit: number): { add(task: () => Promise<void>): Promise<void>; drain(): Promise<unknown> } {
  const inflight = new Set<Promise<void>>()
  return {
    async add(task) {
      while (inflight.size >= limit) await Promise.race(inflight)
      const p: Promise<void> = task().finally(() => inflight.delete(p))
      inflight.add(p)
    },
    drain: () => Promise.all(inflight),
  }
}
