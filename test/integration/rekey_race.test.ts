import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import { createCache } from '../../src/index.js'
import type { NearCache } from '../../src/index.js'
import { MAX_TRIES, newCounts, rekeyOne } from '../../src/cli/commands/rekey.js'
import { EntryCipher } from '../../src/security/entry_cipher.js'
import { Keyring } from '../../src/security/keyring.js'
import { initHash } from '../../wasm/hash.js'
import { uniqueNamespace } from '../helpers/backends.js'

/**
 * The rekey's write-back against a write landing exactly between its read and its
 * write (made deterministic: the racing write runs when the rekey's GET answers).
 * The racing write must win, whatever the rekey read.
 */
const K1 = { id: 1, key: randomBytes(32) }
const K2 = { id: 2, key: randomBytes(32) }
const cleanups: (() => Promise<unknown>)[] = []
beforeAll(async () => {
  await initHash()
})
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function cache(ns: string, keys: (typeof K1)[]): Promise<NearCache> {
  const c = await createCache({ redis: inject('redisUrl'), namespace: ns, l1: false, encryption: { keys } })
  cleanups.push(() => c.close())
  return c
}

/** A client whose GETs of `key` run `beforeAnswer` after Redis answered and before the caller sees it, `times` times. */
function racingClient(r: Redis, times: number, beforeAnswer: (n: number) => Promise<unknown>): Redis {
  let n = 0
  return new Proxy(r, {
    get(target, prop, receiver) {
      if (prop === 'getBuffer') {
        return async (key: string) => {
          const got = await target.getBuffer(key)
          if (n < times) await beforeAnswer(n++)
          return got
        }
      }
      const v = Reflect.get(target, prop, receiver) as unknown
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
  })
}

describe('rekey write-back races', () => {
  it('a write between the read and the write-back wins; the entry is then found current', async () => {
    const ns = uniqueNamespace('race')
    const old = await cache(ns, [K1])
    const writer = await cache(ns, [K2, K1])
    await old.set('k', 'original', { ttl: 600_000 })
    const r = new Redis(inject('redisUrl'))
    cleanups.push(() => r.quit())
    const client = racingClient(r, 1, () => writer.set('k', 'raced'))
    const c = newCounts()
    const problems: string[] = []
    await rekeyOne(client, new EntryCipher(Keyring.from([K2, K1]), false), K2.id, `${ns}:k`, c, (why) => problems.push(why))
    expect(c).toMatchObject({ raced: 1, current: 1, rekeyed: 0, skipped: 0 })
    expect(problems).toEqual([])
    expect(await (await cache(ns, [K2])).get('k')).toBe('raced')
  })

  it('a racing writer still on the old key: the rekey retries and seals the raced value', async () => {
    const ns = uniqueNamespace('race-old')
    const old = await cache(ns, [K1])
    await old.set('k', 'original')
    const r = new Redis(inject('redisUrl'))
    cleanups.push(() => r.quit())
    const client = racingClient(r, 2, (n) => old.set('k', `raced-${n}`))
    const c = newCounts()
    await rekeyOne(client, new EntryCipher(Keyring.from([K2, K1]), false), K2.id, `${ns}:k`, c, () => {})
    expect(c).toMatchObject({ raced: 1, rekeyed: 1, skipped: 0 })
    expect(EntryCipher.keyIdOf((await r.getBuffer(`${ns}:k`)) as Buffer)).toBe(K2.id)
    expect(await (await cache(ns, [K2])).get('k')).toBe('raced-1')
  })

  it(`writes racing every try: left as it is after ${MAX_TRIES} tries, reported`, async () => {
    const ns = uniqueNamespace('race-many')
    const old = await cache(ns, [K1])
    await old.set('k', 'original')
    const r = new Redis(inject('redisUrl'))
    cleanups.push(() => r.quit())
    const client = racingClient(r, MAX_TRIES, (n) => old.set('k', `raced-${n}`))
    const c = newCounts()
    const problems: string[] = []
    await rekeyOne(client, new EntryCipher(Keyring.from([K2, K1]), false), K2.id, `${ns}:k`, c, (why) => problems.push(why))
    expect(c).toMatchObject({ raced: 1, rekeyed: 0, skipped: 1 })
    expect(problems[0]).toMatch(/written by others 5 times/)
    expect(await (await cache(ns, [K1])).get('k')).toBe(`raced-${MAX_TRIES - 1}`)
  })
})
