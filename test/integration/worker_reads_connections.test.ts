import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createCache } from '../../src/index.js'
import type { CacheOptions, NearCache } from '../../src/index.js'
import { uniqueNamespace } from '../helpers/backends.js'
import { startStandalone } from '../helpers/redis_servers.js'
import type { RedisServerHandle } from '../helpers/redis_servers.js'
import { ThreadCache } from '../helpers/thread_client.js'
import { until } from '../helpers/wait.js'

/**
 * Connections of attached threads, counted with CLIENT LIST on a private server:
 * with workerConnections 'own' a worker opens its own and closes it with its
 * cache; in the cases where reads must stay with the owner it opens none.
 */
describe('worker connections on a private server', () => {
  let server: RedisServerHandle
  let probe: Redis
  const cleanup: (() => Promise<unknown>)[] = []
  beforeAll(async () => {
    server = await startStandalone()
    probe = new Redis(server.url)
  })
  afterAll(async () => {
    probe.disconnect()
    await server.stop()
  })
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f().catch(() => {})
  })

  /** Client connections the server has, the probe's own included. */
  const clients = async (): Promise<number> => ((await probe.client('LIST')) as string).trim().split('\n').length
  const owner = async (options: CacheOptions = {}): Promise<NearCache> => {
    const c = await createCache({ redis: server.url, namespace: uniqueNamespace('wc'), ...options })
    cleanup.push(() => c.close())
    return c
  }

  it("'own': attaching opens one connection, reads use it, and closing the worker's cache closes it", async () => {
    const main = await owner()
    await main.set('k', 'v')
    const before = await clients()
    const worker = await ThreadCache.start(main.handle)
    cleanup.push(() => worker.worker.terminate())
    expect(await clients()).toBe(before + 1)
    await main.delete('k') // gone from L1 as well: the worker must read Redis
    await main.set('k2', 'v2')
    expect(await worker.call('getMany', ['k', 'k2', 'k3'])).toEqual([undefined, 'v2', undefined])
    expect(await clients()).toBe(before + 1)
    await worker.call('close')
    await until('the worker connection is closed', async () => (await clients()) === before)
  })

  const fallbacks: [string, () => Promise<{ options: CacheOptions; done?: () => Promise<void> }>][] = [
    ["workerConnections: 'owner'", async () => ({ options: { workerConnections: 'owner' } })],
    ['encryption', async () => ({ options: { encryption: { keys: [{ id: 1, key: randomBytes(32) }] } } })],
    [
      'writeBehind',
      async () => {
        const dir = await mkdtemp(path.join(os.tmpdir(), 'nc-wc-'))
        return { options: { writeBehind: { dir, flushInterval: '1h', batchSize: 10_000 } }, done: () => rm(dir, { recursive: true, force: true }) }
      },
    ],
    [
      'an ioredis client object',
      async () => {
        const client = new Redis(server.url)
        return { options: { redis: client }, done: async () => void client.disconnect() }
      },
    ],
    ['a redis option holding a function', async () => ({ options: { redis: { host: server.host, port: server.port, retryStrategy: () => 50 } } })],
  ]

  it.each(fallbacks)('%s: reads go through the owner, and the worker opens no connection', async (_name, make) => {
    const { options, done } = await make()
    if (done) cleanup.push(done)
    // l1: false, so every read of the worker is an L2 read.
    const main = await owner({ l1: false, ...options })
    expect(main.handle.reads.via).toBe('owner')
    await main.set('k', { written: 'by the owner' })
    const before = await clients()
    const worker = await ThreadCache.start(main.handle)
    cleanup.push(() => worker.stop())
    // With writeBehind the value is only in the owner's queue; with encryption only the owner can open it.
    expect(await worker.call('get', 'k')).toEqual({ written: 'by the owner' })
    expect(await worker.call('getMany', ['k', 'nope'])).toEqual([{ written: 'by the owner' }, undefined])
    expect(await clients()).toBe(before)
  })

  it('an encrypted cache puts no key material in its handle', async () => {
    const key = randomBytes(32)
    const main = await owner({ encryption: { keys: [{ id: 7, key }] } })
    const text = JSON.stringify(main.handle, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v))
    expect(text).not.toContain(key.toString('hex'))
    expect(main.handle.options.encryption).toBe(false)
  })

  it('a worker that never closes its cache still exits, after its read is answered', async () => {
    // l1: false, so the worker's get is a read on its own connection.
    const main = await owner({ l1: false })
    await main.set('exit-key', 'answered')
    const url = new URL('../fixtures/worker_reads_exit.ts', import.meta.url).href
    const boot = `import('tsx/esm/api').then((m) => m.register()).then(() => import(${JSON.stringify(url)}))`
    const worker = new Worker(boot, { eval: true, workerData: { nearcache: main.handle } })
    const messages: unknown[] = []
    worker.on('message', (m) => messages.push(m))
    let exited: number | undefined
    worker.on('exit', (code) => (exited = code))
    cleanup.push(() => worker.terminate())
    await until('the worker exits by itself', () => exited !== undefined, 30_000)
    expect(exited).toBe(0)
    expect(messages).toEqual([{ ready: true, value: 'answered', reads: 'own' }])
  })
})
