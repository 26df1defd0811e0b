import type { NearCache } from '../../src/index.js'

/**
 * Polls `cond` until it holds, or fails naming `what` after `ms` (generous: tests
 * share 2 cores with other work and must never depend on the machine's speed).
 */
export async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** Whether `key` is answered from this process's L1 (no Redis read needed): one get, judged by the namespace's L1 hit count. */
export async function inL1(c: NearCache, key: string): Promise<boolean> {
  const before = c.stats().namespaces[c.prefix]?.hits.l1 ?? 0
  await c.get(key)
  return (c.stats().namespaces[c.prefix]?.hits.l1 ?? 0) > before
}
