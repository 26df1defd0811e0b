import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { afterEach, describe, expect, inject, it } from 'vitest'
import { createCache } from '../../src/index.js'
import { uniqueNamespace } from '../helpers/backends.js'
import { ProcessCache } from '../helpers/process_client.js'

/** Write-behind through the public API: acknowledged on the local log, flushed later, replayed after a crash. */
describe('createCache({ writeBehind })', () => {
  const cleanup: (() => Promise<unknown>)[] = []
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f()
  })
  const tempDir = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nc-wb-'))
    cleanup.push(() => rm(dir, { recursive: true, force: true }))
    return dir
  }

  it('acknowledges from the log, reads its own queued writes, and drains on close', async () => {
    const dir = await tempDir()
    const namespace = uniqueNamespace('wb')
    const raw = new Redis(inject('redisUrl'))
    cleanup.push(async () => raw.disconnect())
    const cache = await createCache({ redis: inject('redisUrl'), namespace, writeBehind: { dir, flushInterval: '10s', batchSize: 10_000 } })
    await cache.setMany(Array.from({ length: 200 }, (_, i) => ({ key: `k${i}`, value: { i } })))
    expect(await raw.exists(`${namespace}:k0`)).toBe(0) // not flushed yet
    // The queue depth gauge (stats and the metrics text).
    expect(cache.stats().process.writeBehindDepth).toBe(200)
    expect(cache.metrics()).toContain('nearcache_write_behind_queue_depth 200\n')
    expect(await cache.get('k7')).toEqual({ i: 7 })
    // A delete waits for the queue, so the queued write cannot bring the key back.
    expect(await cache.delete('k3')).toBe(true)
    expect(await raw.exists(`${namespace}:k1`)).toBe(1)
    expect(cache.stats().process.writeBehindDepth).toBe(0) // the delete drained it
    await cache.set('late', 'queued')
    await cache.close()
    expect(await raw.exists(`${namespace}:k3`)).toBe(0)
    expect(await raw.exists(`${namespace}:late`)).toBe(1)
    const again = await createCache({ redis: inject('redisUrl'), namespace })
    expect(await again.getMany(['k0', 'k199', 'late'])).toEqual([{ i: 0 }, { i: 199 }, 'queued'])
    await again.clear()
    await again.close()
  })

  it('forgets a queued write once it is flushed: a deleted key does not come back from the queue', async () => {
    const dir = await tempDir()
    const namespace = uniqueNamespace('wbdel')
    const cache = await createCache({ redis: inject('redisUrl'), namespace, l1: false, writeBehind: { dir } })
    cleanup.push(() => cache.close())
    await cache.set('k', 'v')
    expect(await cache.delete('k')).toBe(true) // drains, then deletes in Redis
    expect(await cache.get('k')).toBeUndefined()
  })

  it('writes a killed process acknowledged reach Redis when the log is replayed', { timeout: 60_000 }, async () => {
    const dir = await tempDir()
    const namespace = uniqueNamespace('wbcrash')
    const options = { redis: inject('redisUrl'), namespace, writeBehind: { dir, flushInterval: '1h', batchSize: 100_000 } }
    const child = await ProcessCache.start(options)
    for (let i = 0; i < 20; i++) await child.call('setMany', Array.from({ length: 50 }, (_, j) => ({ key: `c${i * 50 + j}`, value: i * 50 + j })))
    const raw = new Redis(inject('redisUrl'))
    cleanup.push(async () => raw.disconnect())
    expect(await raw.exists(`${namespace}:c0`)).toBe(0)
    child.child.kill('SIGKILL')
    await new Promise((r) => child.child.once('exit', r))
    const cache = await createCache(options) // replays the log before it resolves
    const values = await cache.getMany(Array.from({ length: 1000 }, (_, i) => `c${i}`))
    expect(values).toEqual(Array.from({ length: 1000 }, (_, i) => i))
    expect(await raw.exists(`${namespace}:c999`)).toBe(1)
    await cache.clear()
    await cache.close()
  })
})
