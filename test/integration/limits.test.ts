import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { CacheError, createCache } from '../../src/index.js'
import type { NearCache } from '../../src/index.js'
import { uniqueNamespace } from '../helpers/backends.js'
import { nearcache, show } from '../helpers/cli_runner.js'
import { startStandalone } from '../helpers/redis_servers.js'
import type { RedisServerHandle } from '../helpers/redis_servers.js'

/** The documented longest TTL: 2^47 ms (about 4,460 years). */
const MAX_TTL_MS = 2 ** 47

/** Raw terminal controls: C0 (but newline), DEL, C1, bidi embeddings/overrides/isolates. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/

describe('TTL limits against a real Redis', () => {
  const url = inject('redisUrl')
  let raw: Redis
  let cache: NearCache
  let ns: string
  beforeAll(async () => {
    raw = new Redis(url)
    ns = uniqueNamespace('ttlcap')
    cache = await createCache({ redis: url, namespace: ns, l1: false })
  })
  afterAll(async () => {
    await cache?.close()
    raw?.disconnect()
  })

  it('the largest accepted TTL (and ttl + grace) is stored by Redis as given (PTTL); one millisecond more is refused by nearcache', async () => {
    await cache.set('max', 1, { ttl: MAX_TTL_MS })
    const pttl = await raw.pttl(`${ns}:max`)
    expect(pttl).toBeGreaterThan(MAX_TTL_MS - 60_000)
    expect(pttl).toBeLessThanOrEqual(MAX_TTL_MS)
    await cache.getOrSet('both', () => 2, { ttl: MAX_TTL_MS, grace: MAX_TTL_MS, softTtl: MAX_TTL_MS })
    const both = await raw.pttl(`${ns}:both`)
    expect(both).toBeGreaterThan(2 * MAX_TTL_MS - 60_000)
    expect(both).toBeLessThanOrEqual(2 * MAX_TTL_MS)
    expect(await cache.get('both')).toBe(2)
    await cache.compareAndSet('max', 1, 3, { ttl: MAX_TTL_MS })
    expect(await raw.pttl(`${ns}:max`)).toBeGreaterThan(MAX_TTL_MS - 60_000)

    // One millisecond more, or 1e20 (which Redis refuses), is E_INVALID_OPTION from nearcache, and nothing reaches Redis.
    for (const ttl of [MAX_TTL_MS + 1, 1e20, '99999999999999d']) {
      const attempts = [
        () => cache.set('over', 1, { ttl }),
        () => cache.setMany([{ key: 'over', value: 1, ttl }]),
        () => cache.getOrSet('over', () => 1, { ttl }),
        () => cache.getOrSet('over', () => 1, { ttl: '1h', grace: ttl }),
        () => cache.getOrSet('over', () => 1, { ttl: '1h', softTtl: ttl }),
        () => cache.compareAndSet('over', undefined, 1, { ttl }),
      ]
      for (const attempt of attempts) {
        const err = await (attempt() as Promise<unknown>).then(() => undefined, (e: unknown) => e)
        expect(err, String(ttl)).toBeInstanceOf(CacheError)
        expect((err as CacheError).code).toBe('E_INVALID_OPTION')
        expect((err as Error).message).toMatch(/must be at most 140737488355328 ms/)
      }
    }
    expect(await raw.exists(`${ns}:over`)).toBe(0)
    await expect(createCache({ redis: url, namespace: ns, ttl: 1e20 })).rejects.toMatchObject({ code: 'E_INVALID_OPTION' })
  })
})

describe('the CLI escapes names from Redis before printing them', () => {
  let server: RedisServerHandle
  let raw: Redis
  // An OSC sequence that retitles the terminal, a bell, and a right-to-left override; a C1 CSI.
  const evilNs = '\u001b]0;pwned\u0007evil\u202e'
  const c1Ns = '\u009b31mred'
  beforeAll(async () => {
    server = await startStandalone()
    raw = new Redis(server.url)
    await raw.set(`${evilNs}:k`, 'x')
    await raw.set(`${c1Ns}:k`, 'x')
    await raw.set('plain:k', 'x')
  })
  afterAll(async () => {
    raw?.disconnect()
    await server?.stop()
  })

  it('status: namespaces with control and bidi characters are printed escaped', async () => {
    const r = await nearcache(['status', '--redis', server.url])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout).not.toMatch(RAW_CONTROL)
    expect(r.stdout).toContain('\\x1b]0;pwned\\x07evil\\u{202e}')
    expect(r.stdout).toContain('\\x9b31mred')
    expect(r.stdout).toMatch(/^\s+plain\s+1\s+0$/m)
  })

  it('status --json: the same names, exact after parsing, with nothing raw in the text', async () => {
    const r = await nearcache(['status', '--redis', server.url, '--json'])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout).not.toMatch(RAW_CONTROL)
    const names = (JSON.parse(r.stdout) as { namespaces: { items: { namespace: string }[] } }).namespaces.items.map((i) => i.namespace)
    expect(names.sort()).toEqual([evilNs, c1Ns, 'plain'].sort())
  })

  it('--namespace outside the safe alphabet is a usage error, printed escaped', async () => {
    const r = await nearcache(['status', '--redis', server.url, '--namespace', 'a\u001b[2Jb\u202e'])
    expect(r.code, show(r)).toBe(2)
    expect(r.stderr).toMatch(/--namespace must be segments of letters, digits, '_', '.' and '-' separated by ':'/)
    expect(r.stderr).not.toMatch(RAW_CONTROL)
    const others = await Promise.all(['shop*', '__nc', 'a{b}'].map((bad) => nearcache(['status', '--redis', server.url, '--namespace', bad])))
    for (const b of others) {
      expect(b.code, show(b)).toBe(2)
      expect(b.stderr).toMatch(/--namespace must be/)
    }
  })

  it('invalidate: prefixes and tags are echoed escaped', async () => {
    const r = await nearcache(['invalidate', '--redis', server.url, '--namespace', 'plain', '--prefix', '\u001b[2J\u0085', '--tag', 't\u202e\u009b'])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout).not.toMatch(RAW_CONTROL)
    expect(r.stdout).toContain('prefix "\\u001b[2J\\u0085": removed 0 keys')
    expect(r.stdout).toContain('"t\\u202e\\u009b"')
  })
})
