import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import type { Worker } from 'node:worker_threads'
import { Redis } from 'ioredis'
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest'
import { createCache } from '../../src/index.js'
import type { CacheError, CacheOptions, NearCache, RateLimitedError } from '../../src/index.js'
import { rateLimitKey } from '../../src/keys.js'
import { startStandalone } from '../helpers/redis_servers.js'
import type { RedisServerHandle } from '../helpers/redis_servers.js'
import { startWorker } from '../helpers/thread_client.js'

/** Distributed rate limits on real Redis: one budget across caches, processes and threads. */

interface Answer {
  ok: boolean
  value?: unknown
  code?: string
  retryAfterMs?: number
}

/** A peer (worker thread or child process) acting through a principal's view. */
function driver(send: (m: unknown) => void, on: (f: (m: Answer & { id?: number }) => void) => void): (principal: string, op: string, ...args: unknown[]) => Promise<Answer> {
  let next = 0
  const waiting = new Map<number, (a: Answer) => void>()
  on((m) => {
    if (m.id === undefined) return
    waiting.get(m.id)?.(m)
    waiting.delete(m.id)
  })
  return (principal, op, ...args) =>
    new Promise((resolve) => {
      const id = ++next
      waiting.set(id, resolve)
      send({ id, principal, op, args })
    })
}

async function startProcess(options: CacheOptions): Promise<{ child: ChildProcess; call: ReturnType<typeof driver> }> {
  const file = new URL('../fixtures/access_process.ts', import.meta.url)
  const child = fork(file, [JSON.stringify(options)], { execArgv: ['--import', 'tsx'], serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  await new Promise<void>((resolve, reject) => {
    child.on('message', (m: { ready?: boolean }) => m?.ready && resolve())
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`process exited with ${code} before it was ready`)))
  })
  const call = driver(
    (m) => child.send(m as object),
    (f) => child.on('message', f),
  )
  return { child, call }
}

async function refusal(p: Promise<unknown>): Promise<CacheError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err, 'expected a rejection').toBeInstanceOf(Error)
  return err as CacheError
}

const cleanup: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => {})
})

/** A slow budget (one token per 100 s): nothing refills during a test, however slow the machine. */
const SLOW = { rate: 0.01, burst: 4, distributed: true }

function options(redis: CacheOptions['redis'], namespace: string, rateLimit: Record<string, unknown>): CacheOptions {
  return { redis, namespace, access: { principals: { p: { can: ['read', 'write'], keys: ['*'], rateLimit: rateLimit as never } } } }
}

async function cache(o: CacheOptions): Promise<NearCache> {
  const c = await createCache(o)
  cleanup.push(() => c.close())
  return c
}

describe.each([
  { name: 'standalone', redis: () => inject('redisUrl') as CacheOptions['redis'] },
  { name: 'cluster', redis: () => ({ cluster: inject('clusterNodes') }) as CacheOptions['redis'] },
])('distributed rate limits on $name', ({ redis }) => {
  it('two caches (own process-local buckets) spend one budget in Redis', async () => {
    const ns = `rl${randomUUID().slice(0, 8)}`
    const a = await cache(options(redis(), ns, SLOW))
    const b = await cache(options(redis(), ns, SLOW))
    await a.as('p').getMany(['k1', 'k2', 'k3'])
    await b.as('p').get('k4')
    const ea = (await refusal(a.as('p').get('k5'))) as RateLimitedError
    const eb = (await refusal(b.as('p').get('k5'))) as RateLimitedError
    expect(ea.code).toBe('E_RATE_LIMITED')
    expect(eb.code).toBe('E_RATE_LIMITED')
    expect(eb.retryAfterMs).toBeGreaterThan(0)
    expect(eb.retryAfterMs).toBeLessThanOrEqual(100_000)
    // Another namespace is another budget.
    const other = await cache(options(redis(), `${ns}x`, SLOW))
    await other.as('p').get('k')
  })
})

describe('distributed rate limits across processes and threads (standalone)', () => {
  it('a child process and this one spend one budget', async () => {
    const ns = `rl${randomUUID().slice(0, 8)}`
    const o = options(inject('redisUrl'), ns, SLOW)
    const here = await cache(o)
    const { child, call } = await startProcess(o)
    cleanup.push(async () => {
      await call('p', 'close')
      child.kill('SIGKILL')
    })
    expect((await call('p', 'getMany', ['a', 'b'])).ok).toBe(true)
    await here.as('p').getMany(['c', 'd'])
    const there = await call('p', 'get', 'e')
    expect(there).toMatchObject({ ok: false, code: 'E_RATE_LIMITED' })
    expect(there.retryAfterMs).toBeGreaterThan(0)
    expect((await refusal(here.as('p').get('e'))).code).toBe('E_RATE_LIMITED')
  })

  it('a worker thread attached with cache.handle spends the same budget (through the owner thread)', async () => {
    const ns = `rl${randomUUID().slice(0, 8)}`
    const o = options(inject('redisUrl'), ns, SLOW)
    const owner = await cache(o)
    const other = await cache(o)
    const w: Worker = await startWorker('access_worker.ts', { handle: owner.handle })
    cleanup.push(() => w.terminate())
    const call = driver(
      (m) => w.postMessage(m),
      (f) => w.on('message', f),
    )
    expect((await call('p', 'getMany', ['a', 'b', 'c'])).ok).toBe(true)
    await other.as('p').get('d')
    expect(await call('p', 'get', 'e')).toMatchObject({ ok: false, code: 'E_RATE_LIMITED' })
    expect((await refusal(owner.as('p').get('e'))).code).toBe('E_RATE_LIMITED')
    await call(null as never, 'close')
  })

  it('retryAfterMs is honest: refused before, passing after waiting it', async () => {
    const ns = `rl${randomUUID().slice(0, 8)}`
    // One token per 5 s: the second call is refused unless 5 s pass between two awaits.
    const c = await cache(options(inject('redisUrl'), ns, { rate: 0.2, burst: 1, distributed: true }))
    await c.as('p').get('a')
    const e = (await refusal(c.as('p').get('b'))) as RateLimitedError
    expect(e.code).toBe('E_RATE_LIMITED')
    expect(e.retryAfterMs).toBeGreaterThan(0)
    expect(e.retryAfterMs).toBeLessThanOrEqual(5000)
    await new Promise((r) => setTimeout(r, e.retryAfterMs))
    await c.as('p').get('b')
  })

  it('the budget key expires once the bucket is full again, and a foreign value in it is ignored', async () => {
    const ns = `rl${randomUUID().slice(0, 8)}`
    const c = await cache(options(inject('redisUrl'), ns, { rate: 0.01, burst: 2, distributed: true }))
    const r = new Redis(inject('redisUrl'))
    cleanup.push(() => r.quit())
    const key = rateLimitKey(ns, 'p')
    await c.as('p').get('a')
    const pttl = await r.pttl(key)
    expect(pttl).toBeGreaterThan(0)
    expect(pttl).toBeLessThanOrEqual(100_000)
    await c.as('p').get('b')
    expect((await refusal(c.as('p').get('c'))).code).toBe('E_RATE_LIMITED')
    await r.set(key, 'not a number')
    await c.as('p').get('c')
    await r.set(key, '9'.repeat(30))
    await c.as('p').get('d')
  })
})

describe('distributed rate limits when Redis fails (onL2Error)', () => {
  let server: RedisServerHandle | undefined
  afterAll(async () => {
    await server?.stop()
  })

  it("'deny' rejects with the Redis error, 'local' falls back to this process's bucket, 'allow' passes", async () => {
    server = await startStandalone()
    const limit = (onL2Error: string) => ({ can: ['read'], keys: ['*'], rateLimit: { rate: 0.01, burst: 2, distributed: true, onL2Error } })
    const c = await cache({
      redis: server.url,
      namespace: 'rlfail',
      commandTimeout: '1s',
      circuitBreaker: false,
      suppressL2Errors: true,
      access: { principals: { deny: limit('deny'), local: limit('local'), allow: limit('allow') } as never },
    })
    await c.as('local').get('warm')
    const errors: CacheError[] = []
    c.on('error', (err) => errors.push(err as CacheError))
    await server.stop()
    const e = await refusal(c.as('deny').get('a'))
    expect(e.code).toBe('E_L2_UNAVAILABLE')
    // The local bucket is full (the distributed one took the first token): 2 pass, the third is refused.
    await c.as('local').get('a')
    await c.as('local').get('b')
    expect((await refusal(c.as('local').get('c'))).code).toBe('E_RATE_LIMITED')
    for (let i = 0; i < 4; i++) await c.as('allow').get(`x${i}`)
    // Going on without the shared budget is never silent: the limiter's failure is an 'error' event (at most one a second).
    expect(errors.filter((err) => err.code === 'E_L2_UNAVAILABLE' && /during a rate limit/.test(err.message)).length).toBeGreaterThanOrEqual(1)
  })
})
