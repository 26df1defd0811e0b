// What the TLS tests prove works over a TLS connection: set, get, getMany,
// invalidation between two caches (pub/sub over TLS), and clear (SCAN + UNLINK
// on every master), through the public API.
import { expect } from 'vitest'
import { createCache } from '../../src/index.js'
import type { CacheOptions, InvalidationNotice, NearCache } from '../../src/index.js'
import { failure } from './failure.js'
export { failure }

type Redis = NonNullable<CacheOptions['redis']>

/** Polls `fn` until it answers true (generous deadline; no timing assertion). */
export async function until(fn: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}


/** Two caches on `redis` in `namespace`, each with its own L1: the whole round trip over TLS. */
export async function exerciseOverTls(redis: Redis, namespace: string): Promise<void> {
  const options = { redis, namespace, l1: { ttl: Infinity }, connectTimeout: 10_000, commandTimeout: 10_000 }
  const caches: NearCache[] = []
  try {
    const a = await createCache(options)
    caches.push(a)
    const b = await createCache(options)
    caches.push(b)
    await a.set('user:1', { name: 'Ada', n: 1 })
    await a.set('user:2', 'two')
    expect(await b.get('user:1')).toEqual({ name: 'Ada', n: 1 })
    expect(await b.getMany(['user:1', 'user:2', 'user:none'])).toEqual([{ name: 'Ada', n: 1 }, 'two', undefined])

    // b holds user:1 in its L1 for ever: only a's announcement over TLS pub/sub can drop it.
    const received: InvalidationNotice[] = []
    b.on('invalidation', (n: InvalidationNotice) => {
      if (n.direction === 'received') received.push(n)
    })
    await a.set('user:1', { name: 'Ada', n: 2 })
    await until(() => received.some((n) => n.keys.some((k) => k.endsWith('user:1'))), "b's notice of a's write")
    expect(await b.get('user:1')).toEqual({ name: 'Ada', n: 2 })

    // Enough keys to land on every master of a Cluster: clear must reach them all.
    const many = Array.from({ length: 30 }, (_, i) => `item:${i}`)
    for (const k of many) await a.set(k, k)
    expect(await b.getMany(many)).toEqual(many)

    await b.clear()
    await until(async () => (await a.get('user:2')) === undefined && (await a.get('user:1')) === undefined, "a's view of b's clear")
    expect(await b.getMany(['user:1', 'user:2', ...many])).toEqual(new Array(2 + many.length).fill(undefined))
  } finally {
    await Promise.all(caches.map((c) => c.close()))
  }
}
