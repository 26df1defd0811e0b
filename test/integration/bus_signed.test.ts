import { randomBytes, randomUUID } from 'node:crypto'
import { inspect } from 'node:util'
import { Redis } from 'ioredis'
import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import { createCache } from '../../src/index.js'
import type { CacheError, CacheOptions, NearCache } from '../../src/index.js'
import { channelFor } from '../../src/keys.js'
import { kMinBytes } from '../../src/l1/layout.js'
import { SharedTable } from '../../src/l1/shared_table.js'
import { BusSigner } from '../../src/l2/bus_signer.js'
import { InvalidationBus } from '../../src/l2/invalidation_bus.js'
import type { InvalidationNotice } from '../../src/l2/invalidation_bus.js'
import { Keyring } from '../../src/security/keyring.js'
import { initHash } from '../../wasm/hash.js'
import { uniqueNamespace } from '../helpers/backends.js'
import { inL1, until } from '../helpers/wait.js'
import { publishAndSettle } from '../helpers/bus_settle.js'

/**
 * Signed invalidation messages on the real Redis: with `encryption` keys, only
 * messages signed by a listed key, for this channel, drop L1 copies; everything
 * else is refused, counted and reported.
 */
const K1 = { id: 1, key: randomBytes(32).toString('base64') }
const K2 = { id: 2, key: randomBytes(32) }
const K3 = { id: 3, key: randomBytes(32) }
const cleanups: (() => Promise<unknown>)[] = []
beforeAll(async () => {
  await initHash()
})
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function raw(): Redis {
  const r = new Redis(inject('redisUrl'))
  cleanups.push(() => r.quit())
  return r
}

async function cache(namespace: string, extra: CacheOptions = {}): Promise<NearCache> {
  const c = await createCache({ redis: inject('redisUrl'), namespace, l1: { ttl: Infinity }, ...extra })
  cleanups.push(() => c.close())
  return c
}

/** A well-formed message text naming `keys` of the channel's root (unsigned). */
function text(keys: string[], publisher = `pub-${randomUUID().slice(0, 8)}`): string {
  return JSON.stringify({ v: 1, o: publisher, s: 0, k: keys })
}


describe('signed invalidation messages', () => {
  it('a forged unsigned message is refused and counted; a signed one from another cache with the same keys drops the copy', async () => {
    const ns = uniqueNamespace('sig')
    const a = await cache(ns, { encryption: { keys: [K1] } })
    const b = await cache(ns, { encryption: { keys: [K1] } })
    const errors: CacheError[] = []
    a.on('error', (e) => errors.push(e as CacheError))
    await a.set('k', 'v1')
    expect(await inL1(a, 'k')).toBe(true)

    // Valid in every way but the signature: a process without keys would apply it.
    const forged = text([`${ns}:k`])
    await publishAndSettle(a, raw(), [forged], new BusSigner(Keyring.from([K1])))
    expect(a.stats().process.invalidationsRejected).toBe(1)
    expect(await inL1(a, 'k')).toBe(true)
    expect(errors.map((e) => e.code)).toEqual(['E_BAD_MESSAGE'])
    expect(errors[0]?.message).toContain('not signed')
    expect(errors[0]?.message).not.toContain(K1.key)

    // The same change made by another cache with the keys: signed, applied.
    await b.set('k', 'v2')
    await until("a's L1 copy to go", async () => !(await inL1(a, 'k')))
    expect(await a.get('k')).toBe('v2')
    expect(a.stats().process.invalidationsRejected).toBe(1)
    expect(a.stats().process.invalidationsReceived).toBeGreaterThan(0)
  })

  it('a process accepts messages signed by any key it lists, and refuses the others', async () => {
    const ns = uniqueNamespace('rot')
    const old = await cache(ns, { encryption: { keys: [K1] } })
    const next = await cache(ns, { encryption: { keys: [K2, K1] } })
    await old.set('x', 1)
    await next.set('y', 1)
    expect(await inL1(old, 'x')).toBe(true)
    expect(await inL1(next, 'y')).toBe(true)
    // next signs with K2, which old does not list: old refuses both of next's announcements (y, then x).
    await next.set('x', 2)
    await until("old's refusals", () => old.stats().process.invalidationsRejected >= 2)
    await publishAndSettle(old, raw(), [], new BusSigner(Keyring.from([K1])))
    expect(await inL1(old, 'x')).toBe(true)
    expect(old.stats().process.invalidationsRejected).toBe(2)
    // old signs with K1, which next lists: applied.
    await old.set('y', 2)
    await until("next's L1 copy to go", async () => !(await inL1(next, 'y')))
    expect(next.stats().process.invalidationsRejected).toBe(0)

    // Signed with a key this process does not list (K3): refused, copy kept.
    const errors: CacheError[] = []
    next.on('error', (e) => errors.push(e as CacheError))
    await next.get('y')
    expect(await inL1(next, 'y')).toBe(true)
    const ch = channelFor(ns)
    await publishAndSettle(next, raw(), [new BusSigner(Keyring.from([K3])).sign(ch, text([`${ns}:y`]))], new BusSigner(Keyring.from([K2])))
    expect(await inL1(next, 'y')).toBe(true)
    expect(next.stats().process.invalidationsRejected).toBe(1)
    expect(errors[0]?.message).toContain('key id 3, which this process does not list')
  })

  it('a signed message copied to another root\'s channel, or altered, is refused', async () => {
    const ns = uniqueNamespace('src')
    const target = uniqueNamespace('dst')
    const t = await cache(target, { encryption: { keys: [K1] } })
    await t.set('k', 1)
    const signer = new BusSigner(Keyring.from([K1]))
    const r = raw()
    // A genuine message of root `ns`, captured from its channel, whose content names `target`'s key
    // (so that only the channel binding can refuse it on `target`'s channel).
    const captured = signer.sign(channelFor(ns), text([`${target}:k`]))
    const body = captured.slice(0, captured.lastIndexOf(',"a":')) + '}'
    const altered = [
      captured,
      // The body changed after signing (another key named), the signature kept.
      captured.replace(`${target}:k`, `${target}:j`),
      // The signature moved to the front of the object (same fields, same values).
      JSON.stringify({ a: JSON.parse(captured).a, ...JSON.parse(body) }),
      // A signed text that carries its own `a` inside the covered body.
      signer.sign(channelFor(target), JSON.stringify({ ...JSON.parse(body), a: 'x' })),
      // Truncated mac, bad base64url, too long a key id.
      captured.replace(/"a":"1\.[A-Za-z0-9_-]/, '"a":"1.'),
      captured.replace(/"a":"1\./, '"a":"1.*'),
      captured.replace(/"a":"1\./, '"a":"123456.'),
    ]
    const errors: CacheError[] = []
    t.on('error', (e) => errors.push(e as CacheError))
    await publishAndSettle(t, r, altered, signer)
    expect(t.stats().process.invalidationsRejected).toBe(altered.length)
    expect(await inL1(t, 'k')).toBe(true)
    expect(errors[0]?.message).toContain('does not match its content and channel')
    // Signed for the right channel, the same content is applied.
    await r.publish(channelFor(target), signer.sign(channelFor(target), text([`${target}:k`])))
    await until('the copy to go', async () => !(await inL1(t, 'k')))
  })

  it('a process without keys reads signed messages (it ignores the signature)', async () => {
    const ns = uniqueNamespace('nokey')
    const table = SharedTable.create(kMinBytes)
    const client = raw()
    const bus = await InvalidationBus.start(client, ns, table, { legacyChannel: false, onError: () => {} })
    cleanups.push(() => bus.close())
    const received: string[][] = []
    bus.onAnnounce = (n) => {
      if (n.direction === 'received') received.push(n.keys)
    }
    const signer = await cache(ns, { encryption: { keys: [K1] } })
    await signer.set('k', 1)
    await until('the signed message', () => received.length > 0)
    expect(received[0]).toEqual([`${ns}:k`])
    expect(bus.rejected).toBe(0)
  })

  it('legacyChannel with encryption is refused (E_INVALID_OPTION); the signer never shows key bytes', async () => {
    await expect(createCache({ redis: false, encryption: { keys: [K1] }, invalidation: { legacyChannel: true } })).rejects.toMatchObject({ code: 'E_INVALID_OPTION' })
    await expect(
      InvalidationBus.start(raw(), 'x', SharedTable.create(kMinBytes), { legacyChannel: true, onError: () => {}, keyring: Keyring.from([K1]) }),
    ).rejects.toMatchObject({ code: 'E_INVALID_OPTION' })
    const s = new BusSigner(Keyring.from([K2, K1]))
    const shown = `${inspect(s, { showHidden: true, depth: 5 })} ${JSON.stringify(s)}`
    for (const k of [K1.key, K2.key.toString('base64'), K2.key.toString('hex')]) expect(shown).not.toContain(k)
    expect(JSON.parse(JSON.stringify(s))).toEqual({ signs: 2, verifies: [2, 1] })
  })
})
