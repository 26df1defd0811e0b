import { afterEach, describe, expect, it } from 'vitest'
import type { Worker } from 'node:worker_threads'
import { createCache, ForbiddenError, RateLimitedError } from '../../src/index.js'
import type { CacheError, CacheOptions, NearCache } from '../../src/index.js'
import { ManualClock } from '../helpers/clock.js'
import { startWorker } from '../helpers/thread_client.js'

const caches: NearCache[] = []
afterEach(async () => {
  await Promise.all(caches.splice(0).map((c) => c.close()))
})

async function make(opts: Partial<CacheOptions> = {}): Promise<NearCache> {
  const c = await createCache({
    redis: false,
    l1: { maxBytes: '1mb' },
    access: {
      principals: {
        reader: { can: ['read'], keys: ['user:*', 'public:*'] },
        writer: { can: ['read', 'write', 'delete'], keys: ['user:*'] },
        admin: { can: ['read', 'write', 'delete', 'admin'], keys: ['*'] },
        userAdmin: { can: ['admin'], keys: ['user:*'] },
        limited: { can: ['read', 'write'], keys: ['*'], rateLimit: { rate: 10, burst: 3 } },
      },
    },
    ...opts,
  })
  caches.push(c)
  return c
}

async function rejection(p: Promise<unknown>): Promise<CacheError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err, 'expected a rejection').toBeInstanceOf(Error)
  return err as CacheError
}

describe('cache.as(name): operations and key patterns', () => {
  it('allows what the principal can do on its keys, and refuses the rest with E_FORBIDDEN before anything is written', async () => {
    const c = await make()
    await c.set('user:1', { name: 'a' })
    expect(await c.as('reader').get('user:1')).toEqual({ name: 'a' })
    expect(await c.as('reader').getMany(['user:1', 'public:x'])).toEqual([{ name: 'a' }, undefined])

    const e1 = await rejection(c.as('reader').set('user:1', 'evil'))
    expect(e1).toBeInstanceOf(ForbiddenError)
    expect(e1.code).toBe('E_FORBIDDEN')
    expect(e1.message).toMatch(/Principal 'reader' may not set key "user:1"/)
    expect(await c.get('user:1')).toEqual({ name: 'a' })

    const e2 = await rejection(c.as('writer').set('admin:1', 'x'))
    expect(e2.code).toBe('E_FORBIDDEN')
    expect((e2 as ForbiddenError).key).toBe('admin:1')
    expect((e2 as ForbiddenError).operation).toBe('set')
    expect((e2 as ForbiddenError).principal).toBe('writer')
    expect(await c.has('admin:1')).toBe(false)

    const e3 = await rejection(c.as('reader').get('secret:1'))
    expect(e3.code).toBe('E_FORBIDDEN')
  })

  it('a batch passes only when every key does: nothing of a refused batch is written', async () => {
    const c = await make()
    const e = await rejection(c.as('writer').setMany([{ key: 'user:1', value: 1 }, { key: 'other:1', value: 2 }]))
    expect(e.code).toBe('E_FORBIDDEN')
    expect((e as ForbiddenError).key).toBe('other:1')
    expect(await c.getMany(['user:1', 'other:1'])).toEqual([undefined, undefined])
    await c.as('writer').setMany([{ key: 'user:1', value: 1 }, { key: 'user:2', value: 2 }])
    expect(await c.getMany(['user:1', 'user:2'])).toEqual([1, 2])
    expect((await rejection(c.as('writer').deleteMany(['user:1', 'x']))).code).toBe('E_FORBIDDEN')
    expect(await c.get('user:1')).toBe(1)
    expect(await c.as('writer').deleteMany(['user:1', 'user:2'])).toBe(2)
  })

  it('getOrSet needs read and write; the loader of a refused call never runs', async () => {
    const c = await make()
    let calls = 0
    const e = await rejection(c.as('reader').getOrSet('user:9', () => ++calls))
    expect(e.code).toBe('E_FORBIDDEN')
    expect(e.message).toMatch(/getOrSet needs 'read' and 'write'/)
    expect(calls).toBe(0)
    expect(await c.as('writer').getOrSet('user:9', () => ++calls)).toBe(1)
    expect(calls).toBe(1)
  })

  it('conditional writes need read and write (their answer tells whether the key exists)', async () => {
    const c = await make({ access: { principals: { blind: { can: ['write'], keys: ['*'] } } } })
    await c.as('blind').set('k', 1)
    expect((await rejection(c.as('blind').set('k', 2, { nx: true }))).code).toBe('E_FORBIDDEN')
    expect((await rejection(c.as('blind').compareAndSet('k', 1, 3))).code).toBe('E_FORBIDDEN')
    expect(await c.get('k')).toBe(1)
  })

  it('invalidateTags, invalidatePrefix and clear need admin; prefixes and clear need patterns that cover them', async () => {
    const c = await make()
    await c.setMany([{ key: 'user:1', value: 1, tags: ['t'] }, { key: 'other:1', value: 2 }])
    expect((await rejection(c.as('writer').invalidateTags(['t']))).code).toBe('E_FORBIDDEN')
    expect((await rejection(c.as('writer').clear())).code).toBe('E_FORBIDDEN')
    expect((await rejection(c.as('userAdmin').invalidatePrefix('oth'))).code).toBe('E_FORBIDDEN')
    expect((await rejection(c.as('userAdmin').invalidatePrefix(''))).code).toBe('E_FORBIDDEN')
    expect((await rejection(c.as('userAdmin').clear())).code).toBe('E_FORBIDDEN')
    expect(await c.getMany(['user:1', 'other:1'])).toEqual([1, 2])
    expect(await c.as('userAdmin').invalidatePrefix('user:')).toBe(1)
    expect(await c.getMany(['user:1', 'other:1'])).toEqual([undefined, 2])
    await c.as('admin').clear()
    expect(await c.get('other:1')).toBeUndefined()
  })

  it('an undeclared principal, or none declared, is E_INVALID_OPTION; the plain cache stays unrestricted', async () => {
    const c = await make()
    expect(() => c.as('nobody')).toThrow(expect.objectContaining({ code: 'E_INVALID_OPTION' }))
    const plain = await createCache({ redis: false, l1: { maxBytes: '1mb' } })
    caches.push(plain)
    expect(() => plain.as('reader')).toThrow(expect.objectContaining({ code: 'E_INVALID_OPTION' }))
    await c.set('secret:1', 1)
    await c.clear()
  })

  it('bad access options are E_INVALID_OPTION naming the field', async () => {
    const bad: [unknown, RegExp][] = [
      [{ principals: {} }, /1 to 4096 principals/],
      [{ principals: { a: { can: ['fly'], keys: ['*'] } } }, /unknown permission "fly"/],
      [{ principals: { a: { can: ['read'], keys: [] } } }, /keys must be a list of 1 to/],
      [{ principals: { a: { can: ['read'], keys: [''] } } }, /keys: each pattern/],
      [{ principals: { 'a b': { can: ['read'], keys: ['*'] } } }, /Principal names/],
      [{ principals: { a: { can: ['read'], keys: ['*'], rateLimit: { rate: 0, burst: 1 } } } }, /rate is tokens per second/],
      [{ principals: { a: { can: ['read'], keys: ['*'], rateLimit: { rate: 1, burst: 1.5 } } } }, /burst is the bucket size/],
      [{ principals: { a: { can: ['read'], keys: ['*'], rateLimit: { rate: 1, burst: 1, distributed: true } } } }, /needs the redis option/],
      [{ principals: { a: { can: ['read'], keys: ['*'], extra: 1 } } }, /Unknown option 'extra'/],
      [{ roles: {} }, /Unknown access option 'roles'/],
    ]
    for (const [access, msg] of bad) {
      const e = await rejection(createCache({ redis: false, access } as CacheOptions))
      expect(e.code, String(msg)).toBe('E_INVALID_OPTION')
      expect(e.message).toMatch(msg)
    }
  })
})

describe('rate limits (local buckets)', () => {
  it('burst passes, the next call is E_RATE_LIMITED with an honest retryAfterMs, a batch costs one token per key', async () => {
    const clock = new ManualClock(1_000_000)
    const c = await make({ clock })
    const v = c.as('limited')
    for (let i = 0; i < 3; i++) await v.get(`k${i}`)
    const e = (await rejection(v.get('k'))) as RateLimitedError
    expect(e).toBeInstanceOf(RateLimitedError)
    expect(e.code).toBe('E_RATE_LIMITED')
    expect(e.retryAfterMs).toBe(100)
    clock.advance(e.retryAfterMs - 1)
    expect((await rejection(v.get('k'))).code).toBe('E_RATE_LIMITED')
    clock.advance(1)
    await v.get('k')
    // Empty, then 300 ms refill 3 tokens: a batch of 3 passes, one more key does not.
    clock.advance(300)
    await v.getMany(['a', 'b', 'c'])
    const e2 = (await rejection(v.getMany(['d', 'e']))) as RateLimitedError
    expect(e2.retryAfterMs).toBe(200)
    clock.advance(200)
    await v.getMany(['d', 'e'])
  })

  it('a batch larger than the burst can never pass (retryAfterMs Infinity); denied calls spend no tokens', async () => {
    const clock = new ManualClock(5000)
    const c = await make({
      clock,
      access: { principals: { p: { can: ['read'], keys: ['ok:*'], rateLimit: { rate: 1, burst: 2 } } } },
    })
    const e = (await rejection(c.as('p').getMany(['ok:1', 'ok:2', 'ok:3']))) as RateLimitedError
    expect(e.retryAfterMs).toBe(Infinity)
    for (let i = 0; i < 5; i++) expect((await rejection(c.as('p').get('no:1'))).code).toBe('E_FORBIDDEN')
    await c.as('p').getMany(['ok:1', 'ok:2'])
    expect((await rejection(c.as('p').get('ok:1'))).code).toBe('E_RATE_LIMITED')
  })

  it('every thread of the process spends one budget (a worker attached with cache.handle)', async () => {
    const time = new SharedArrayBuffer(8)
    const t = new Float64Array(time)
    t[0] = 50_000
    const clock = { now: () => t[0] as number }
    const c = await make({ clock, access: { principals: { p: { can: ['read'], keys: ['*'], rateLimit: { rate: 2, burst: 4 } } } } })
    let worker: Worker | undefined
    try {
      worker = await startWorker('access_worker.ts', { handle: c.handle, clock: time })
      const w = worker
      let id = 0
      const call = (op: string, ...args: unknown[]) =>
        new Promise<{ ok: boolean; code?: string; retryAfterMs?: number }>((resolve) => {
          const my = ++id
          const on = (m: { id: number; ok: boolean; code?: string; retryAfterMs?: number }) => {
            if (m.id !== my) return
            w.off('message', on)
            resolve(m)
          }
          w.on('message', on)
          w.postMessage({ id: my, principal: 'p', op, args })
        })
      // 3 tokens in the worker, 1 here: the bucket of 4 is empty for both threads.
      expect((await call('getMany', ['a', 'b', 'c'])).ok).toBe(true)
      await c.as('p').get('d')
      const there = await call('get', 'e')
      expect(there).toMatchObject({ ok: false, code: 'E_RATE_LIMITED', retryAfterMs: 500 })
      expect((await rejection(c.as('p').get('e'))).code).toBe('E_RATE_LIMITED')
      t[0] = 50_500
      expect((await call('get', 'e')).ok).toBe(true)
      expect((await rejection(c.as('p').get('f'))).code).toBe('E_RATE_LIMITED')
      await call('close')
    } finally {
      await worker?.terminate()
    }
  })
})
